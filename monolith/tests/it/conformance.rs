//! The public API conformance suite against the monolith, in both notification modes, and
//! in async mode again with the Redis session cache on.

use crate::common;

mod async_mode {
    async fn setup() -> super::common::TestApp {
        super::common::spawn().await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod sync_mode {
    async fn setup() -> super::common::TestApp {
        super::common::spawn_with(super::common::Options { sync_mode: true, ..Default::default() }).await
    }
    archlab_conformance::conformance_tests!(setup);
}

/// Every case again with session checks going through Redis: logout must still be final,
/// and nothing else may read differently.
mod async_mode_redis {
    use super::common::{Options, TestApp};

    async fn setup() -> TestApp {
        let redis_url = Some(archlab_testkit::redis_url().await);
        let app = super::common::spawn_with(Options { redis_url, ..Default::default() }).await;
        assert_session_checks_use_the_cache(&app).await;
        app
    }

    /// Without Redis the monolith starts anyway, without a cache (by design); the suite
    /// would then pass without testing what it is here for. A check that succeeds after
    /// its session row is gone can only have been answered from the cache.
    async fn assert_session_checks_use_the_cache(app: &TestApp) {
        let api = archlab_conformance::Api::new(app);
        let probe = api.new_user().await;
        api.get_me(&probe.token).await.expect_json(200, "the check that fills the cache");
        sqlx::query("DELETE FROM auth.sessions WHERE user_id::text = $1")
            .bind(&probe.user_id)
            .execute(&app.handle.pool)
            .await
            .expect("delete the probe's session row");
        api.get_me(&probe.token).await.expect_json(200, "the session cache is not on: the database answered");
    }

    archlab_conformance::conformance_tests!(setup);
}
