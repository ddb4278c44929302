//! The machine-readable contract against the monolith: it serves docs/openapi.json, and
//! schemathesis, fuzzing every operation of it, finds no 5xx and no answer the document
//! does not describe (see `shared/conformance/src/contract.rs`).

use crate::common;

use archlab_kernel::config::AbuseArgs;

#[tokio::test]
async fn it_serves_docs_openapi_json() {
    let app = common::spawn().await;
    archlab_conformance::contract::serves_docs_openapi(&app, "the monolith").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    // Schemathesis signs up and logs in hundreds of times a minute from one address: the
    // signup and login limits are switched off for it (they have their own tests, limits.rs).
    let app = common::spawn_with(common::Options { limits: AbuseArgs::OFF, ..Default::default() }).await;
    archlab_conformance::contract::schemathesis(&app).await;
}
