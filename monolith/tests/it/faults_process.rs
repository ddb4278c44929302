//! The fault kinds only a real process shows, on the real `monolith` binary (build it first:
//! `cargo build --workspace --bins`): abort ends it with SIGABRT, a CPU burn raises its CPU
//! time, a leak its resident memory (the shared cases of `archlab_conformance::faults`, which
//! users-service passes too), and a misspelt point in `ARCHLAB_FAULTS` stops it at start-up
//! with the list of known points.
//!
//! Every signup passes `users.create_profile`, so signups drive the point.

use archlab_conformance::faults::{self, Admin, FaultyProcess};
use archlab_conformance::unique_email;
use archlab_kernel::faults::points;
use archlab_kernel::processes::MONOLITH;
use archlab_testkit::Extsim;
use archlab_testkit::process::{Child, free_addrs};
use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

/// A cold start creates and migrates a database.
const START_WITHIN: Duration = Duration::from_secs(60);

/// The real monolith on free ports, with its admin endpoint, a fresh database and an extsim.
struct Monolith {
    child: Child,
    base_url: String,
    admin: Admin,
    /// Kept alive for the monolith's charges and emails.
    _extsim: Extsim,
    /// Signups for [`FaultyProcess::call`]; its timeout only bounds a call the process never
    /// answers (the abort case ends it first).
    client: reqwest::Client,
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
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("a client");
    Monolith {
        child,
        base_url: format!("http://{http}"),
        admin: Admin::new(&format!("http://{admin}")),
        _extsim: extsim,
        client,
    }
}

impl FaultyProcess for Monolith {
    fn admin(&self) -> &Admin {
        &self.admin
    }
    async fn call(&self) -> Result<(), String> {
        let body = json!({"email": unique_email(), "password": "correct horse", "name": "Ada"});
        let answer = self.client.post(format!("{}/api/auth/signup", self.base_url)).json(&body).send().await;
        match answer {
            Ok(r) if r.status() == reqwest::StatusCode::CREATED => Ok(()),
            Ok(r) => Err(format!("signup answered {}", r.status())),
            Err(e) => Err(format!("signup: {e}")),
        }
    }
    fn cpu_time(&self) -> Duration {
        self.child.cpu_time()
    }
    fn rss_bytes(&self) -> u64 {
        self.child.rss_bytes()
    }
    async fn wait_signal(&mut self, within: Duration) -> Option<i32> {
        self.child.wait_exit(within).await.and_then(|status| status.signal())
    }
    fn stderr(&self) -> String {
        self.child.stderr()
    }
}

#[tokio::test]
async fn abort_ends_the_process_with_sigabrt() {
    faults::abort_ends_the_process_with_sigabrt(&mut start().await).await;
}

#[tokio::test]
async fn a_cpu_burn_raises_the_process_cpu_time() {
    faults::a_cpu_burn_raises_the_process_cpu_time(&start().await, 400).await;
}

#[tokio::test]
async fn a_leak_raises_the_process_resident_memory() {
    faults::a_leak_raises_the_process_resident_memory(&start().await).await;
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
