//! The public API conformance suite against the microservices gateway: both internal
//! transports, both notification modes. The very suite the monolith passes.

use archlab_kernel::NotificationMode;
use archlab_remote::Transport;
use archlab_system_tests::{Options, Stack};

mod grpc_async {
    async fn setup() -> super::Stack {
        super::Stack::start(super::Options {
            transport: super::Transport::Grpc,
            mode: super::NotificationMode::Async,
            limits_off: false,
        })
        .await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod http_async {
    async fn setup() -> super::Stack {
        super::Stack::start(super::Options {
            transport: super::Transport::Http,
            mode: super::NotificationMode::Async,
            limits_off: false,
        })
        .await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod grpc_sync {
    async fn setup() -> super::Stack {
        super::Stack::start(super::Options {
            transport: super::Transport::Grpc,
            mode: super::NotificationMode::Sync,
            limits_off: false,
        })
        .await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod http_sync {
    async fn setup() -> super::Stack {
        super::Stack::start(super::Options {
            transport: super::Transport::Http,
            mode: super::NotificationMode::Sync,
            limits_off: false,
        })
        .await
    }
    archlab_conformance::conformance_tests!(setup);
}
