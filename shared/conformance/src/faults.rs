//! The fault points' admin endpoint (docs/operations.md, "Fault points"), checked the same
//! way against either build.
//!
//! Not conformance cases: the admin endpoint is not the public API, and these set faults
//! that would break any other case sharing the deployment. Each build's tests start one
//! with an admin endpoint and pass its URL, plus, for the cases that watch the public API
//! fail or wait, the endpoint of the process that reaches `users.create_profile` (the
//! monolith itself; users-service behind the gateway), which every signup passes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Target;
use crate::api::{Api, Method, unique_email};
use crate::raw::send_raw;

/// The point every signup passes, in both builds.
pub const SIGNUP_POINT: &str = "users.create_profile";

/// A fault admin endpoint as a [`Target`], so [`Api`] can speak to it.
pub struct Admin {
    url: String,
}

impl Admin {
    /// The admin endpoint at `url` (`http://127.0.0.1:<port>`).
    pub fn new(url: &str) -> Self {
        Self { url: url.trim_end_matches('/').to_owned() }
    }

    fn api(&self) -> Api {
        Api::new(self)
    }

    /// `PUT /admin/faults/{point}` with `fault`; the answer's JSON, panicking unless 200.
    pub async fn set(&self, point: &str, fault: Value) -> Value {
        let path = format!("/admin/faults/{point}");
        self.api().json_call(Method::PUT, &path, None, &fault).await.expect_json(200, "setting a fault")
    }

    /// `DELETE /admin/faults`, panicking unless 204.
    pub async fn clear_all(&self) {
        self.api().request(Method::DELETE, "/admin/faults", None, None, None).await.assert_status(204, "clear all");
    }

    /// `GET /admin/faults`.
    pub async fn listing(&self) -> Value {
        self.api().get("/admin/faults", None).await.expect_json(200, "listing the fault points")
    }

    /// The setting `GET /admin/faults/{point}` shows (`null` when none).
    pub async fn fault_of(&self, point: &str) -> Value {
        let shown = self.api().get(&format!("/admin/faults/{point}"), None).await.expect_json(200, "one point");
        shown["fault"].clone()
    }
}

impl Target for Admin {
    fn base_url(&self) -> &str {
        &self.url
    }
    fn extsim_url(&self) -> &str {
        ""
    }
    async fn settle(&self) {}
}

/// An error answer's code and message; panics unless the status is `status` and the body
/// is the lab's error shape (a `trace_id` may ride along when the process exports traces).
#[track_caller]
fn error_of(resp: &crate::Resp, status: u16, context: &str) -> (String, String) {
    let body = resp.expect_json(status, context);
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("{context}: no error code in {body}"));
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{context}: an empty message in {body}");
    (code.to_owned(), message.to_owned())
}

/// `GET /admin/faults` lists exactly `known`, in order, and which of them are `here`; a
/// name outside them is refused by every method with 404 `unknown_fault_point`, and the
/// refusal names every known point; a known point this process does not reach (if any) is
/// refused with 422 `fault_point_not_here`.
pub async fn unknown_points_are_refused_with_the_known_ones(admin: &Admin, known: &[&str], here: &[&str]) {
    let listing = admin.listing().await;
    let points = listing["points"].as_array().unwrap_or_else(|| panic!("no points in {listing}"));
    let names: Vec<&str> = points.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, known, "GET /admin/faults lists the registry: {listing}");
    let listed_here: Vec<&str> =
        points.iter().filter(|p| p["here"] == true).filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(listed_here, here, "the points this process reaches: {listing}");
    assert!(points.iter().all(|p| p["fault"].is_null()), "a fresh process has a fault set: {listing}");

    let api = admin.api();
    for name in ["users.create_profil", "nope", "users.create_profile.x", "USERS.CREATE_PROFILE"] {
        let path = format!("/admin/faults/{name}");
        let refused = [
            api.json_call(Method::PUT, &path, None, &json!({"fail_share": 1.0})).await,
            api.get(&path, None).await,
            api.request(Method::DELETE, &path, None, None, None).await,
        ];
        for resp in refused {
            let (code, message) = error_of(&resp, 404, "an unknown fault point");
            assert_eq!(code, "unknown_fault_point");
            for k in known {
                assert!(message.contains(k), "{}: the refusal does not list {k}: {message}", resp.what);
            }
        }
    }
    if let Some(elsewhere) = known.iter().find(|k| !here.contains(k)) {
        let path = format!("/admin/faults/{elsewhere}");
        let resp = api.json_call(Method::PUT, &path, None, &json!({"fail_share": 1.0})).await;
        let (code, message) = error_of(&resp, 422, "a point of another process");
        assert_eq!(code, "fault_point_not_here");
        for h in here {
            assert!(message.contains(h), "the refusal does not list {h}, a point here: {message}");
        }
    }
    assert!(admin.listing().await["points"].as_array().into_iter().flatten().all(|p| p["fault"].is_null()));
}

/// Raw request headers, as [`Api::send`] takes them.
type Headers = &'static [(&'static str, &'static [u8])];

/// Every malformed request to `point` (reached here) gets a 4xx with its code — never a
/// 5xx, never a hung connection — and none of them sets anything.
pub async fn malformed_requests_are_refused(admin: &Admin, point: &str) {
    let api = admin.api();
    let path = format!("/admin/faults/{point}");
    const JSON: Headers = &[("content-type", b"application/json")];
    const NO_TYPE: Headers = &[];
    const TEXT: Headers = &[("content-type", b"text/plain")];
    let too_big = [b"{\"x\":\"".as_slice(), vec![b'a'; 70_000].as_slice(), b"\"}".as_slice()].concat();
    let cases: Vec<(&str, Headers, Vec<u8>, u16, &str)> = vec![
        ("not JSON", JSON, b"fail_share=1".to_vec(), 400, "malformed_json"),
        ("truncated JSON", JSON, br#"{"fail_share": 1"#.to_vec(), 400, "malformed_json"),
        ("NaN is not JSON", JSON, br#"{"fail_share": NaN}"#.to_vec(), 400, "malformed_json"),
        ("a number past f64", JSON, br#"{"fail_share": 1e400}"#.to_vec(), 400, "malformed_json"),
        ("a share over 1", JSON, br#"{"fail_share": 1.5}"#.to_vec(), 422, "invalid_fault"),
        ("a negative share", JSON, br#"{"fail_share": -0.01}"#.to_vec(), 422, "invalid_fault"),
        ("a share as text", JSON, br#"{"fail_share": "half"}"#.to_vec(), 422, "validation_failed"),
        ("an hour of latency", JSON, br#"{"latency_ms": 3600000}"#.to_vec(), 422, "invalid_fault"),
        ("latency plus jitter", JSON, br#"{"latency_ms": 60000, "jitter_ms": 1}"#.to_vec(), 422, "invalid_fault"),
        ("a negative latency", JSON, br#"{"latency_ms": -5}"#.to_vec(), 422, "validation_failed"),
        ("latency past u64", JSON, br#"{"latency_ms": 18446744073709551616}"#.to_vec(), 422, "validation_failed"),
        ("a minute of CPU", JSON, br#"{"cpu_ms": 60000}"#.to_vec(), 422, "invalid_fault"),
        ("a gigabyte leak", JSON, br#"{"leak_bytes": 1073741824}"#.to_vec(), 422, "invalid_fault"),
        ("abort as a string", JSON, br#"{"abort": "yes"}"#.to_vec(), 422, "validation_failed"),
        ("an unknown field", JSON, br#"{"fail_share": 1, "fail_rate": 1}"#.to_vec(), 422, "validation_failed"),
        ("an array", JSON, br#"[1.0]"#.to_vec(), 422, "validation_failed"),
        ("a bare number", JSON, b"1".to_vec(), 422, "validation_failed"),
        ("nothing set", JSON, b"{}".to_vec(), 422, "invalid_fault"),
        ("no content type", NO_TYPE, br#"{"fail_share": 1}"#.to_vec(), 415, "unsupported_media_type"),
        ("text/plain", TEXT, br#"{"fail_share": 1}"#.to_vec(), 415, "unsupported_media_type"),
        ("over the body limit", JSON, too_big, 413, "payload_too_large"),
    ];
    for (what, headers, body, status, code) in cases {
        let resp = api.send(Method::PUT, &path, headers, Some(body)).await;
        let (got, _) = error_of(&resp, status, what);
        assert_eq!(got, code, "{what}: {}", resp.text());
    }
    let other = [
        (api.request(Method::POST, "/admin/faults", None, None, None).await, 405, "method_not_allowed"),
        (api.request(Method::PATCH, &path, None, None, None).await, 405, "method_not_allowed"),
        (api.get("/admin/nothing", None).await, 404, "not_found"),
        (api.get("/api/users/me", None).await, 404, "not_found"),
        (send_raw(&admin.url, "GET", b"/admin//faults", None).await, 400, "invalid_path"),
        (send_raw(&admin.url, "GET", b"/admin/faults/%2e%2e/faults", None).await, 400, "invalid_path"),
    ];
    for (resp, status, code) in other {
        let (got, _) = error_of(&resp, status, &resp.what);
        assert_eq!(got, code, "{}: {}", resp.what, resp.text());
    }

    // Bytes that are not HTTP at all, and a head that lies about its body: hyper refuses
    // both with 400 and closes; the endpoint goes on serving.
    let garbage: [&[u8]; 2] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"PUT /admin/faults/x HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
    ];
    for garbage in garbage {
        let answer = raw_exchange(&admin.url, garbage).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 400"),
            "{:?} answered {:?}",
            garbage.escape_ascii(),
            answer.escape_ascii()
        );
    }
    assert!(admin.fault_of(point).await.is_null(), "a refused request set {point}");
}

/// Write `bytes` to the endpoint and read until it closes (at most 5 s).
async fn raw_exchange(url: &str, bytes: &[u8]) -> Vec<u8> {
    let host = url.strip_prefix("http://").expect("a plain http:// URL");
    let exchange = async {
        let mut stream = TcpStream::connect(host).await?;
        stream.write_all(bytes).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(answer)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("the endpoint closes a malformed connection")
        .expect("the exchange")
}

/// With [`SIGNUP_POINT`] failing a share of 1.0 of calls, every signup answers 503
/// `dependency_unavailable`; at a share of 0, signups succeed though the point is set;
/// `DELETE /admin/faults/{point}` clears it. `admin` is the endpoint of the process that
/// reaches the point.
pub async fn a_share_of_one_fails_the_endpoint_and_zero_does_not<T: Target>(t: &T, admin: &Admin) {
    let api = Api::new(t);
    let shown = admin.set(SIGNUP_POINT, json!({"fail_share": 1.0})).await;
    assert_eq!(shown["fault"], json!({"fail_share": 1.0}), "PUT answers the setting it stored");
    for _ in 0..3 {
        api.signup(&unique_email(), "correct horse", "Ada").await.expect_error(
            503,
            "dependency_unavailable",
            "share 1",
        );
    }

    admin.set(SIGNUP_POINT, json!({"fail_share": 0.0})).await;
    assert_eq!(admin.fault_of(SIGNUP_POINT).await, json!({"fail_share": 0.0}));
    for _ in 0..3 {
        api.signup(&unique_email(), "correct horse", "Ada").await.expect_json(201, "share 0");
    }

    admin.set(SIGNUP_POINT, json!({"fail_share": 1.0})).await;
    let cleared = admin.api().request(Method::DELETE, &format!("/admin/faults/{SIGNUP_POINT}"), None, None, None).await;
    cleared.assert_status(204, "clearing the point");
    assert!(admin.fault_of(SIGNUP_POINT).await.is_null());
    api.signup(&unique_email(), "correct horse", "Ada").await.expect_json(201, "after DELETE");
}

/// With `latency_ms` set at [`SIGNUP_POINT`], a signup answers no sooner than that (a lower
/// bound only: how much later depends on the machine), and still succeeds; after
/// `DELETE /admin/faults` nothing is set.
pub async fn latency_holds_the_answer_at_least_that_long<T: Target>(t: &T, admin: &Admin) {
    const LATENCY: Duration = Duration::from_millis(400);
    let api = Api::new(t);
    admin.set(SIGNUP_POINT, json!({"latency_ms": LATENCY.as_millis() as u64, "jitter_ms": 50})).await;
    for _ in 0..2 {
        let start = Instant::now();
        api.signup(&unique_email(), "correct horse", "Ada").await.expect_json(201, "a slow signup succeeds");
        let took = start.elapsed();
        assert!(took >= LATENCY, "a signup through a point holding {LATENCY:?} answered in {took:?}");
    }
    admin.clear_all().await;
    let listing = admin.listing().await;
    assert!(listing["points"].as_array().into_iter().flatten().all(|p| p["fault"].is_null()), "{listing}");
}

/// A real process that reaches [`SIGNUP_POINT`], with its fault admin endpoint: the
/// monolith, or users-service. The fault kinds only a process shows (abort, CPU burn, leak)
/// are checked on it by [`abort_ends_the_process_with_sigabrt`],
/// [`a_cpu_burn_raises_the_process_cpu_time`] and [`a_leak_raises_the_process_resident_memory`],
/// the same way for both builds.
pub trait FaultyProcess: Send + Sync {
    /// Its fault admin endpoint.
    fn admin(&self) -> &Admin;
    /// One call that passes [`SIGNUP_POINT`] (a signup, or auth-service's call to create a
    /// profile); `Err` with what went wrong when it did not succeed.
    fn call(&self) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Its CPU time so far (user + system, from `/proc`).
    fn cpu_time(&self) -> Duration;
    /// Its resident memory now, in bytes.
    fn rss_bytes(&self) -> u64;
    /// Wait up to `within` for it to exit; the signal that ended it, if one did.
    fn wait_signal(&mut self, within: Duration) -> impl std::future::Future<Output = Option<i32>> + Send;
    /// What it wrote to stderr so far.
    fn stderr(&self) -> String;
}

/// `n` calls through the point, each one succeeding.
async fn calls(p: &impl FaultyProcess, n: u64) {
    for i in 0..n {
        if let Err(why) = p.call().await {
            panic!("call {} of {n} through {SIGNUP_POINT} failed: {why}", i + 1);
        }
    }
}

/// SIGABRT's number on Linux.
const SIGABRT: i32 = 6;

/// `abort` at the point ends the process with SIGABRT, mid-call.
pub async fn abort_ends_the_process_with_sigabrt(p: &mut impl FaultyProcess) {
    calls(p, 1).await;
    p.admin().set(SIGNUP_POINT, json!({"abort": true})).await;
    let answer = p.call().await;
    assert!(answer.is_err(), "a process that aborts mid-call answered {answer:?}");
    let signal = p.wait_signal(Duration::from_secs(20)).await;
    assert_eq!(signal, Some(SIGABRT), "ended by signal {signal:?}; stderr:\n{}", p.stderr());
}

/// `cpu_ms` at the point raises the process's CPU time by at least that much per call.
pub async fn a_cpu_burn_raises_the_process_cpu_time(p: &impl FaultyProcess, burn_ms: u64) {
    const CALLS: u32 = 2;
    calls(p, 1).await;
    p.admin().set(SIGNUP_POINT, json!({ "cpu_ms": burn_ms })).await;
    let before = p.cpu_time();
    calls(p, u64::from(CALLS)).await;
    let used = p.cpu_time() - before;
    // Each call burns `burn_ms` on its thread's own CPU clock; /proc counts in 10 ms ticks.
    let burned = Duration::from_millis(burn_ms) * CALLS - Duration::from_millis(20);
    assert!(used >= burned, "{CALLS} calls burning {burn_ms} ms each used {used:?} of CPU");
}

/// `leak_bytes` at the point raises the process's resident memory by that much per call, and
/// the admin endpoint counts what it keeps.
pub async fn a_leak_raises_the_process_resident_memory(p: &impl FaultyProcess) {
    const LEAK: u64 = 64 * 1024 * 1024;
    const CALLS: u64 = 2;
    // One call first, so buffers a call allocates once (a password hash's) are in the baseline.
    calls(p, 1).await;
    p.admin().set(SIGNUP_POINT, json!({ "leak_bytes": LEAK })).await;
    let before = p.rss_bytes();
    calls(p, CALLS).await;
    let grew = p.rss_bytes().saturating_sub(before);
    // Allocator bookkeeping and freed buffers may move a few MiB either way; without the leak
    // a signup grows it by about one password hash's 19 MiB at most.
    let expected = LEAK * CALLS - 16 * 1024 * 1024;
    assert!(grew >= expected, "{CALLS} calls leaking {LEAK} bytes each grew the resident memory by {grew}");
    assert_eq!(p.admin().listing().await["leaked_bytes"], json!(LEAK * CALLS));
}
