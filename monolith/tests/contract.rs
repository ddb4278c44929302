//! The machine-readable contract against the monolith: it serves docs/openapi.json.

mod common;

#[tokio::test]
async fn it_serves_docs_openapi_json() {
    let app = common::spawn().await;
    archlab_conformance::contract::serves_docs_openapi(&app, "the monolith").await;
}
