//! The machine-readable contract against the monolith: it serves docs/openapi.json, and
//! schemathesis, fuzzing every operation of it, finds no 5xx and no answer the document
//! does not describe (see `shared/conformance/src/contract.rs`).

mod common;

#[tokio::test]
async fn it_serves_docs_openapi_json() {
    let app = common::spawn().await;
    archlab_conformance::contract::serves_docs_openapi(&app, "the monolith").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let app = common::spawn().await;
    archlab_conformance::contract::schemathesis(&app).await;
}
