//! The public API conformance suite against the monolith, in both notification modes.

mod common;

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
