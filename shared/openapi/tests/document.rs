//! The generated document: its committed copy, and its agreement with docs/api.md.
//!
//! Which codes each operation lists, against the crates' `codes` modules and the statuses in
//! docs/api.md, is checked in `shared/conformance/tests/error_codes.rs`.

use serde_json::Value;
use std::collections::BTreeSet;

fn document() -> Value {
    serde_json::from_str(&archlab_openapi::json()).expect("the document is JSON")
}

/// `(METHOD, path, bearer)` of every operation.
fn operations(doc: &Value) -> BTreeSet<(String, String, bool)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let bearer = op["security"].as_array().is_some_and(|s| !s.is_empty());
            ops.insert((method.to_uppercase(), path.clone(), bearer));
        }
    }
    ops
}

#[test]
fn docs_openapi_json_is_the_generated_document() {
    archlab_conformance::contract::assert_is_docs_openapi(&archlab_openapi::json(), "archlab-openapi generates");
}

#[test]
fn it_is_openapi_3_1_with_one_id_per_operation() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("a path item").values())
        .map(|op| op["operationId"].as_str().expect("every operation has an id"))
        .collect();
    let unique: BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat: {ids:?}");
}

#[test]
fn its_operations_are_the_endpoints_of_docs_api_md() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).expect("docs/api.md");
    let documented: BTreeSet<(String, String, bool)> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("### `"))
        .map(|rest| {
            let (endpoint, tail) = rest.split_once('`').expect("closing backtick");
            let (method, path) = endpoint.split_once(' ').expect("METHOD path");
            (method.to_owned(), path.to_owned(), tail.contains("(bearer)"))
        })
        .collect();
    assert_eq!(operations(&document()), documented, "(method, path, needs a bearer token) differ");
}

#[test]
fn every_security_requirement_names_the_bearer_scheme() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    assert_eq!(schemes.keys().collect::<Vec<_>>(), [archlab_kernel::openapi::BEARER_SCHEME]);
    assert_eq!(schemes[archlab_kernel::openapi::BEARER_SCHEME]["scheme"], "bearer");
    for item in doc["paths"].as_object().expect("paths").values() {
        for op in item.as_object().expect("a path item").values() {
            for requirement in op["security"].as_array().into_iter().flatten() {
                let names: Vec<_> = requirement.as_object().expect("a requirement").keys().collect();
                assert_eq!(names, [archlab_kernel::openapi::BEARER_SCHEME], "{}", op["operationId"]);
            }
        }
    }
}

#[test]
fn the_value_rules_are_the_domain_constants() {
    // The schemas are built from the constants the parsers use; docs/api.md states the same.
    let doc = document();
    let signup = &doc["components"]["schemas"]["SignupRequest"]["properties"];
    assert_eq!(signup["password"]["minLength"], archlab_auth::Password::MIN_CHARS);
    assert_eq!(signup["password"]["maxLength"], archlab_auth::Password::MAX_CHARS);
    assert_eq!(signup["name"]["pattern"], archlab_users::DisplayName::PATTERN, "the name's length counts trimmed");
    assert_eq!(signup["email"]["maxLength"], archlab_kernel::Email::MAX_CHARS);
    let purchase = &doc["components"]["schemas"]["PurchaseRequest"];
    assert_eq!(purchase["properties"]["amount_cents"]["maximum"], archlab_kernel::Money::MAX_CENTS);
    assert_eq!(purchase["properties"]["currency"]["enum"], serde_json::json!(["USD", "EUR", "GBP"]));
    assert_eq!(purchase["additionalProperties"], false, "unknown fields are refused");
}
