//! Compile-time check that `conformance_tests!` expands in a foreign crate with nothing but
//! the macro in scope. The generated tests are ignored: nothing listens on these addresses.

struct Nowhere;

impl archlab_conformance::Target for Nowhere {
    fn base_url(&self) -> &str {
        "http://127.0.0.1:9"
    }

    fn extsim_url(&self) -> &str {
        "http://127.0.0.1:9"
    }

    async fn settle(&self) {}
}

async fn setup() -> Nowhere {
    Nowhere
}

archlab_conformance::conformance_tests!(setup, #[ignore = "expansion check only; no deployment"]);
