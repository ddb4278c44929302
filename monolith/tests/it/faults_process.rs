//! The fault kinds only a real process shows, on the real `monolith` binary (build it first:
//! `cargo build --workspace --bins`): abort ends it with SIGABRT, a CPU burn raises its CPU
//! time, a leak its resident memory (both read from `/proc`), and a misspelt point in
//! `ARCHLAB_FAULTS` stops it at start-up with the list of known points.
//!
//! Every signup passes `users.create_profile`, so signups drive the point.

use archlab_conformance::faults::{Admin, SIGNUP_POINT};
use archlab_conformance::{Api, Target, unique_email};
use archlab_kernel::faults::points;
use archlab_kernel::processes::MONOLITH;
use archlab_testkit::Extsim;
use archlab_testkit::process::{Child, free_addrs};
use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

/// SIGABRT's number on Linux.
const SIGABRT: i32 = 6;

/// A cold start creates and migrates a database.
const START_WITHIN: Duration = Duration::from_secs(60);

/// The real monolith on free ports, with its admin endpoint, a fresh database and an extsim.
struct Monolith {
    child: Child,
    base_url: String,
    admin: Admin,
    extsim: Extsim,
}

impl Target for Monolith {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn extsim_url(&self) -> &str {
        &self.extsim.url
    }
    async fn settle(&self) {}
}

fn env(extra: &[(&'static str, String)], database_url: String, extsim: &Extsim) -> Vec<(&'static str, String)> {
    let (database_var, _) = MONOLITH.database.expect("the monolith has a database");
    let mut env = vec![
        (database_var, archlab_testkit::fresh_database_name("mono_proc")),
        ("DATABASE_URL", database_url),
        ("DB_MAX_CONNECTIONS", "5".to_owned()),
        (archlab_kernel::processes::EXTSIM.http.url_var, extsim.url.clone()),
        ("ARCHLAB_FAULTS", String::new()),
    ];
    env.extend_from_slice(extra);
    env
}

async fn start() -> Monolith {
    let extsim = archlab_testkit::extsim().await;
    let [http, admin] = free_addrs::<2>();
    let admin_var = MONOLITH.admin_addr_var.expect("the monolith has fault points");
    let listeners = [(MONOLITH.http.addr_var, http.to_string()), (admin_var, admin.to_string())];
    let mut child = Child::spawn(MONOLITH.name, &env(&listeners, archlab_testkit::database_url().await, &extsim));
    child.wait_listening(http, START_WITHIN).await;
    child.wait_listening(admin, START_WITHIN).await;
    Monolith { child, base_url: format!("http://{http}"), admin: Admin::new(&format!("http://{admin}")), extsim }
}

async fn signups(m: &Monolith, n: usize) {
    let api = Api::new(m);
    for _ in 0..n {
        api.signup(&unique_email(), "correct horse", "Ada").await.expect_json(201, "signup");
    }
}

#[tokio::test]
async fn abort_ends_the_process_with_sigabrt() {
    let mut m = start().await;
    signups(&m, 1).await;
    m.admin.set(SIGNUP_POINT, json!({"abort": true})).await;
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
    let body = json!({"email": unique_email(), "password": "correct horse", "name": "Ada"});
    let answer = client.post(format!("{}/api/auth/signup", m.base_url)).json(&body).send().await;
    assert!(answer.is_err(), "a process that aborts mid-request answered {answer:?}");
    let status = m.child.wait_exit(Duration::from_secs(20)).await.expect("the monolith exits after the abort");
    assert_eq!(status.signal(), Some(SIGABRT), "{status}; stderr:\n{}", m.child.stderr());
}

#[tokio::test]
async fn a_cpu_burn_raises_the_process_cpu_time() {
    const BURN_MS: u64 = 400;
    const CALLS: u32 = 2;
    let m = start().await;
    signups(&m, 1).await;
    m.admin.set(SIGNUP_POINT, json!({"cpu_ms": BURN_MS})).await;
    let before = m.child.cpu_time();
    signups(&m, CALLS as usize).await;
    let used = m.child.cpu_time() - before;
    // Each call burns BURN_MS on its thread's own CPU clock; /proc counts in 10 ms ticks.
    let burned = Duration::from_millis(BURN_MS) * CALLS - Duration::from_millis(20);
    assert!(used >= burned, "{CALLS} signups burning {BURN_MS} ms each used {used:?} of CPU");
}

#[tokio::test]
async fn a_leak_raises_the_process_resident_memory() {
    const LEAK: u64 = 64 * 1024 * 1024;
    const CALLS: u64 = 2;
    let m = start().await;
    // One signup first, so the password hash's own buffers are in the baseline.
    signups(&m, 1).await;
    m.admin.set(SIGNUP_POINT, json!({"leak_bytes": LEAK})).await;
    let before = m.child.rss_bytes();
    signups(&m, CALLS as usize).await;
    let grew = m.child.rss_bytes().saturating_sub(before);
    // Allocator bookkeeping and freed buffers may move a few MiB either way; without the
    // leak it grows by about one password hash's 19 MiB at most.
    let expected = LEAK * CALLS - 16 * 1024 * 1024;
    assert!(grew >= expected, "{CALLS} signups leaking {LEAK} bytes each grew the resident memory by {grew}");
    assert_eq!(m.admin.listing().await["leaked_bytes"], json!(LEAK * CALLS));
}

#[tokio::test]
async fn an_unknown_point_in_archlab_faults_stops_the_start_with_the_known_ones() {
    let extsim = archlab_testkit::extsim().await;
    let [http] = free_addrs::<1>();
    let faulty =
        [(MONOLITH.http.addr_var, http.to_string()), ("ARCHLAB_FAULTS", "users.create_profile,nope".to_owned())];
    let mut child = Child::spawn(MONOLITH.name, &env(&faulty, archlab_testkit::database_url().await, &extsim));
    let status = child.wait_exit(Duration::from_secs(20)).await.expect("a misconfigured monolith exits");
    let stderr = child.stderr();
    assert_eq!(status.code(), Some(2), "a configuration error exits 2; stderr:\n{stderr}");
    assert!(stderr.contains("ARCHLAB_FAULTS") || stderr.contains("--faults"), "{stderr}");
    assert!(stderr.contains("`nope`"), "{stderr}");
    for p in points::ALL {
        assert!(stderr.contains(p.name), "the refusal does not list {}: {stderr}", p.name);
    }
}
