//! The public API conformance suite against the microservices gateway: both internal
//! transports, both notification modes, and gRPC in async mode again with the Redis session
//! cache on. The very suite the monolith passes.

use archlab_kernel::NotificationMode;
use archlab_remote::Transport;
use archlab_system_tests::{Options, Stack};

/// A stack with `transport` and `mode`, and no session cache.
async fn start(transport: Transport, mode: NotificationMode) -> Stack {
    Stack::start(Options { transport, mode, ..Options::default() }).await
}

mod grpc_async {
    async fn setup() -> super::Stack {
        super::start(super::Transport::Grpc, super::NotificationMode::Async).await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod http_async {
    async fn setup() -> super::Stack {
        super::start(super::Transport::Http, super::NotificationMode::Async).await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod grpc_sync {
    async fn setup() -> super::Stack {
        super::start(super::Transport::Grpc, super::NotificationMode::Sync).await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod http_sync {
    async fn setup() -> super::Stack {
        super::start(super::Transport::Http, super::NotificationMode::Sync).await
    }
    archlab_conformance::conformance_tests!(setup);
}

/// Every case again with auth-service's session checks going through Redis: logout must
/// still be final through the gateway, and nothing else may read differently.
mod grpc_async_redis {
    use super::{Options, Stack};

    async fn setup() -> Stack {
        let redis_url = Some(archlab_testkit::redis_url().await);
        let stack = Stack::start(Options { redis_url, ..Options::default() }).await;
        assert_session_checks_use_the_cache(&stack).await;
        stack
    }

    /// Without Redis auth-service starts anyway, without a cache (by design); the suite
    /// would then pass without testing what it is here for. A check that succeeds after
    /// its session row is gone can only have been answered from the cache.
    async fn assert_session_checks_use_the_cache(stack: &Stack) {
        let api = archlab_conformance::Api::new(stack);
        let probe = api.new_user().await;
        api.get_me(&probe.token).await.expect_json(200, "the check that fills the cache");
        sqlx::query("DELETE FROM auth.sessions WHERE user_id::text = $1")
            .bind(&probe.user_id)
            .execute(&stack.auth_db)
            .await
            .expect("delete the probe's session row");
        api.get_me(&probe.token).await.expect_json(200, "the session cache is not on: the database answered");
    }

    archlab_conformance::conformance_tests!(setup);
}

/// Every case again with two payments-service replicas over one database, balanced by the
/// gateway: a purchase, a replay of it and the reads that follow may each land on either.
mod grpc_async_two_payments {
    use super::{Options, Stack};

    async fn setup() -> Stack {
        Stack::start(Options { payments_replicas: 2, ..Options::default() }).await
    }

    archlab_conformance::conformance_tests!(setup);
}
