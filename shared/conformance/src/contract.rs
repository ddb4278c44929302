//! The machine-readable contract, checked against a running deployment: it serves
//! docs/openapi.json byte for byte, and schemathesis, fuzzing every operation of that
//! document, finds nothing wrong.
//!
//! [`schemathesis`] runs the `schemathesis` CLI (PyPI, pinned in
//! deploy/local/requirements-test.txt, installed by `make test` through
//! deploy/local/ensure-tools.sh) with `--checks all` and the settings in
//! `shared/conformance/schemathesis.toml`: a bounded number of examples per operation, the
//! stateful phase following the document's links (a purchase's `payment_id` into
//! `GET /api/payments/{id}`, and those schemathesis infers), and a bearer token from logging
//! in as an account this function signs up, renewed whenever an answer is 401. Any 5xx, any
//! answer the document does not describe (status, content type, body schema — so any error
//! not shaped `{error: {code, message}}` with a code the operation lists), a valid request
//! refused or an invalid one accepted fails the test with schemathesis's report. A missing
//! or wrong version of schemathesis fails it too, saying how to install the right one: the
//! check is never skipped.

use crate::{Api, Target};
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// The committed copy of the document.
const DOCS_OPENAPI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

/// How to bring docs/openapi.json up to date.
pub const REGENERATE: &str = "cargo run -q -p archlab-openapi > docs/openapi.json";

/// The pinned tools, one `name==version` a line.
const REQUIREMENTS: &str = include_str!("../../../deploy/local/requirements-test.txt");

/// The schemathesis settings both builds are fuzzed with.
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");

/// Test cases per operation, in each of schemathesis's generating phases.
pub const MAX_EXAMPLES: u32 = 25;

/// The whole run's deadline; a run takes 20 to 40 s on the lab's machine (docs/api.md).
const DEADLINE: Duration = Duration::from_secs(300);

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

/// The schemathesis version deploy/local/requirements-test.txt pins.
pub fn pinned_version() -> &'static str {
    REQUIREMENTS
        .lines()
        .find_map(|line| line.trim().strip_prefix("schemathesis=="))
        .expect("deploy/local/requirements-test.txt pins schemathesis==<version>")
}

/// Where schemathesis is run from: `python3 -m schemathesis.cli`, the interpreter
/// deploy/local/ensure-tools.sh installed it with, so no scripts folder needs to be on PATH.
fn command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("python3");
    cmd.args(["-m", "schemathesis.cli"])
        // Requests to loopback never go through a proxy the environment may name.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Panics unless the pinned schemathesis runs, naming how to install it.
async fn check_installed() {
    let pin = pinned_version();
    let install = format!(
        "install it with `make tools` (deploy/local/ensure-tools.sh: python3 -m pip install schemathesis=={pin})"
    );
    let out = command().arg("--version").output().await.unwrap_or_else(|e| {
        panic!("cannot run python3 ({e}); the contract tests need Python 3 with schemathesis {pin}: {install}")
    });
    let said = text(&out);
    assert!(out.status.success(), "schemathesis {pin} is not installed for python3: {install}\n{said}");
    assert!(
        said.trim_end().ends_with(&format!("version {pin}")),
        "found `{}`, the project pins schemathesis {pin}: {install}",
        said.trim()
    );
}

/// The operations of the served document that schemathesis tests: all but `/openapi.json`,
/// which it leaves out as the document itself.
async fn fuzzable_operations(target: &impl Target) -> usize {
    let doc: Value = Api::new(target).get("/openapi.json", None).await.expect_json(200, "the OpenAPI document");
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .filter(|(path, _)| path.as_str() != "/openapi.json")
        .map(|(_, item)| item.as_object().map_or(0, |ops| ops.len()))
        .sum()
}

/// Fuzz `target` with schemathesis against the document it serves; panics with
/// schemathesis's report if it finds anything, or if it did not test every operation.
pub async fn schemathesis(target: &impl Target) {
    check_installed().await;
    let operations = fuzzable_operations(target).await;
    let account = Api::new(target).new_user().await;

    // Schemathesis writes reports and caches into its working folder: give it a fresh one.
    let dir = std::env::temp_dir().join(format!("archlab-schemathesis-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let schema = format!("{}/openapi.json", target.base_url());
    let max_examples = MAX_EXAMPLES.to_string();
    let run = command()
        .args(["--config-file", CONFIG, "run", &schema, "--checks", "all", "--max-examples", &max_examples])
        .args(["--request-timeout", "30", "--generation-database", "none"])
        .env("LOGIN_EMAIL", &account.email)
        .env("LOGIN_PASSWORD", &account.password)
        .current_dir(&dir)
        .output();
    let out = tokio::time::timeout(DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {DEADLINE:?} against {schema}"))
        .expect("run schemathesis");
    let report = text(&out);
    let _ = std::fs::remove_dir_all(Path::new(&dir));
    println!("{report}");

    assert!(out.status.success(), "schemathesis found problems with {schema}:\n{report}");
    assert!(
        report.contains(&format!("Tested: {operations}\n")),
        "schemathesis did not test all {operations} operations of {schema}:\n{report}"
    );
}
