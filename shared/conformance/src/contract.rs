//! The machine-readable contract, checked against a running deployment: it serves
//! docs/openapi.json byte for byte.

use crate::{Api, Target};

/// The committed copy of the document.
const DOCS_OPENAPI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

/// How to bring docs/openapi.json up to date.
pub const REGENERATE: &str = "cargo run -q -p archlab-openapi > docs/openapi.json";

/// Panics unless `GET /openapi.json` answers docs/openapi.json, byte for byte, as JSON.
pub async fn serves_docs_openapi(target: &impl Target, who: &str) {
    let resp = Api::new(target).get("/openapi.json", None).await;
    resp.assert_status(200, "the OpenAPI document");
    assert_eq!(resp.content_type.as_deref(), Some("application/json"), "{who}: GET /openapi.json's content type");
    assert_is_docs_openapi(&resp.text(), who);
}

/// Panics, saying how to regenerate the copy, unless `served` is docs/openapi.json.
#[track_caller]
pub fn assert_is_docs_openapi(served: &str, who: &str) {
    let docs = std::fs::read_to_string(DOCS_OPENAPI).unwrap_or_default();
    if served == docs {
        return;
    }
    let line = served.lines().zip(docs.lines()).position(|(a, b)| a != b).map_or_else(
        || format!("one is a prefix of the other ({} vs {} lines)", served.lines().count(), docs.lines().count()),
        |i| format!("first difference at line {}", i + 1),
    );
    panic!("docs/openapi.json is not the document {who} serves ({line}); regenerate it with:\n    {REGENERATE}");
}
