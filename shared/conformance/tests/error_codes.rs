//! docs/api.md's error-code table, the code's error-code constants and the OpenAPI document
//! (docs/openapi.json) name the same codes, each with the same status.
//!
//! Every code an answer can carry is a constant in the crate that answers it; these tests
//! fail when a constant is added without its row in the table, a row outlives its code, or
//! no operation of the document lists a code (or lists it under another status).

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const API_DOC: &str = include_str!("../../../docs/api.md");

/// Every code the public API can answer, from the crates that answer them.
fn declared() -> Vec<&'static str> {
    [archlab_kernel::codes::ALL, archlab_auth::codes::ALL, archlab_users::codes::ALL, archlab_payments::codes::ALL]
        .concat()
}

/// `(status, code)` of each row of the table under `## Error codes`.
fn table() -> Vec<(u16, String)> {
    let section = API_DOC.split("\n## Error codes\n").nth(1).expect("docs/api.md has an `## Error codes` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix('|'))
        .filter_map(|row| {
            let mut cells = row.split('|').map(str::trim);
            let status = cells.next()?.parse().ok()?;
            let code = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((status, code.to_owned()))
        })
        .collect()
}

/// The codes in the table: the second cell of each row.
fn documented() -> Vec<String> {
    table().into_iter().map(|(_, code)| code).collect()
}

/// `(status, code, operation)` for every code an error response of the OpenAPI document lists.
fn in_openapi() -> Vec<(u16, String, String)> {
    let doc: Value = serde_json::from_str(&archlab_openapi::json()).expect("the document is JSON");
    let mut found = Vec::new();
    // The edge's answers that belong to no operation (405) are reusable responses.
    for (name, response) in doc["components"]["responses"].as_object().into_iter().flatten() {
        let status = match name.as_str() {
            "MethodNotAllowed" => 405,
            other => panic!("a reusable response this test does not know: {other}"),
        };
        let schema = &response["content"]["application/json"]["schema"];
        let codes = schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"].as_array();
        for code in codes.expect("an error response lists its codes") {
            found.push((
                status,
                code.as_str().expect("a code is a string").to_owned(),
                format!("components.responses.{name}"),
            ));
        }
    }
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            for (status, response) in op["responses"].as_object().expect("responses") {
                let schema = &response["content"]["application/json"]["schema"];
                let Some(parts) = schema["allOf"].as_array() else { continue };
                assert_eq!(parts[0]["$ref"], "#/components/schemas/ErrorBody", "{method} {path} {status}");
                let codes = parts[1]["properties"]["error"]["properties"]["code"]["enum"].as_array();
                for code in codes.expect("an error response lists its codes") {
                    let code = code.as_str().expect("a code is a string").to_owned();
                    found.push((
                        status.parse().expect("a numeric status"),
                        code,
                        format!("{} {path}", method.to_uppercase()),
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_code_is_declared_once() {
    let codes = declared();
    let unique: BTreeSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len(), "a code is declared in two places: {codes:?}");
}

#[test]
fn every_code_is_documented_and_every_documented_code_exists() {
    let declared: BTreeSet<String> = declared().into_iter().map(str::to_owned).collect();
    let documented: BTreeSet<String> = documented().into_iter().collect();
    assert!(!documented.is_empty(), "no codes found in the table of docs/api.md");

    let undocumented: Vec<_> = declared.difference(&documented).collect();
    assert!(undocumented.is_empty(), "codes missing from docs/api.md: {undocumented:?}");
    let stale: Vec<_> = documented.difference(&declared).collect();
    assert!(stale.is_empty(), "docs/api.md lists codes no crate declares: {stale:?}");
}

#[test]
fn every_code_is_in_the_openapi_document_under_its_documented_status() {
    let status_of: BTreeMap<String, u16> = table().into_iter().map(|(status, code)| (code, status)).collect();
    let listed = in_openapi();
    for (status, code, operation) in &listed {
        assert_eq!(
            status_of.get(code),
            Some(status),
            "{operation} lists `{code}` under {status}; docs/api.md's table says {:?}",
            status_of.get(code)
        );
    }
    let listed: BTreeSet<&str> = listed.iter().map(|(_, code, _)| code.as_str()).collect();
    let unlisted: Vec<_> = declared().into_iter().filter(|code| !listed.contains(code)).collect();
    assert!(
        unlisted.is_empty(),
        "no operation of the OpenAPI document lists {unlisted:?}: add it to the `error_responses!` of the \
         handlers that answer it, then regenerate docs/openapi.json"
    );
}

#[test]
fn every_error_response_of_the_openapi_document_is_the_error_body() {
    let doc: Value = serde_json::from_str(&archlab_openapi::json()).expect("the document is JSON");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            for (status, response) in op["responses"].as_object().expect("responses") {
                // `/ready` answers 503 with its readiness body, the one documented exception.
                if status.as_str() < "400" || (path == "/ready" && status == "503") {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(schema["allOf"][0]["$ref"], "#/components/schemas/ErrorBody", "{method} {path} {status}");
            }
        }
    }
}
