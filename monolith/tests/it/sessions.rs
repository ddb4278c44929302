//! Sessions through the public API: expiry, and revocation with the Redis cache switched on.

use crate::common;

use archlab_conformance::Api;
use common::{Options, spawn, spawn_with};

#[tokio::test]
async fn an_expired_session_is_refused() {
    let app = spawn().await;
    let api = Api::new(&app);
    let user = api.new_user().await;
    api.get_me(&user.token).await.expect_json(200, "fresh token");

    sqlx::query("UPDATE auth.sessions SET expires_at = now() - interval '1 second'")
        .execute(&app.handle.pool)
        .await
        .unwrap();
    api.get_me(&user.token).await.expect_error(401, "unauthorized", "expired token");
}

#[tokio::test]
async fn with_the_redis_cache_logout_still_revokes_at_once() {
    let app = spawn_with(Options { redis_url: Some(archlab_testkit::redis_url().await), ..Default::default() }).await;
    let api = Api::new(&app);
    let user = api.new_user().await;
    // Twice: the second check is answered from the cache.
    api.get_me(&user.token).await.expect_json(200, "first check fills the cache");
    api.get_me(&user.token).await.expect_json(200, "second check");

    let r = api.logout(&user.token).await;
    assert_eq!(r.status, 204, "{r:?}");
    api.get_me(&user.token).await.expect_error(401, "unauthorized", "a revoked token must not live on in the cache");
}

#[tokio::test]
async fn with_the_redis_cache_a_session_check_is_answered_without_the_database() {
    let app = spawn_with(Options { redis_url: Some(archlab_testkit::redis_url().await), ..Default::default() }).await;
    let api = Api::new(&app);
    let user = api.new_user().await;
    api.get_me(&user.token).await.expect_json(200, "fills the cache");
    // The row is gone behind the cache's back (logout would have deleted the entry too):
    // the next check can only succeed if it was answered from Redis. This is the
    // cache-aside window the lab shows: at most 60 s, bounded by the session's expiry.
    sqlx::query("DELETE FROM auth.sessions").execute(&app.handle.pool).await.unwrap();
    api.get_me(&user.token).await.expect_json(200, "answered from the cache");

    let without_cache = spawn().await;
    let api = Api::new(&without_cache);
    let user = api.new_user().await;
    sqlx::query("DELETE FROM auth.sessions").execute(&without_cache.handle.pool).await.unwrap();
    api.get_me(&user.token).await.expect_error(401, "unauthorized", "no cache: the database decides");
}
