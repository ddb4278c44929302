//! `archlab audit` against each real build: `archlab up` runs the build's binaries on free
//! ports, fresh databases (and, for the microservices, a broker exchange and queue of their
//! own); a few signups and purchases go through the public API; the audit finds nothing;
//! then the data is corrupted by hand — a receipt row deleted, a second charge made at
//! extsim for an existing payment, a profile deleted — and the audit reports exactly those
//! three violations, with their ids, and exits 1.
//!
//! The audit runs with the same environment as `archlab up`, so it also shows that its
//! database names and extsim URL default as the topology's do. Needs the binaries (`cargo
//! build --workspace --bins`; missing ones are built here) and PostgreSQL (both builds) and
//! RabbitMQ (the microservices) on their usual addresses.

use crate::common;

use archlab_harness::audit::Report;
use archlab_harness::audit::check::ViolationKind;
use archlab_kernel::processes::{self, ProcessSpec};
use common::{Collected, Lines};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First start creates and migrates the databases; a cold machine may be slow.
const READY_WITHIN: Duration = Duration::from_secs(120);
/// Async notifications arrive within moments; this only bounds a broken build.
const DELIVERED_WITHIN: Duration = Duration::from_secs(30);

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The processes `archlab up <kind>` starts.
fn specs(kind: &str) -> Vec<ProcessSpec> {
    match kind {
        "monolith" => vec![processes::EXTSIM, processes::MONOLITH],
        _ => [processes::EXTSIM, processes::GATEWAY].into_iter().chain(processes::SERVICES).collect(),
    }
}

/// One build under `archlab up`, on its own ports, databases and broker names; stopped
/// when dropped.
struct Build {
    kind: &'static str,
    child: Option<Child>,
    lines: Lines,
    stderr: Option<Collected>,
    /// What `archlab up` was given; the audit gets the same.
    env: Vec<(String, String)>,
    public_url: String,
    extsim_url: String,
    /// Database variable → name.
    databases: Vec<(&'static str, String)>,
}

impl Build {
    async fn start(kind: &'static str) -> Self {
        let specs = specs(kind);
        let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        let bin_dir = common::bin_dir(&names);
        let tag = format!("{:012x}", rand::random::<u64>() >> 16);
        let addrs = common::free_addrs::<10>();
        let mut free = addrs.iter();
        let mut env = Vec::new();
        let mut databases = Vec::new();
        for spec in &specs {
            for listener in std::iter::once(spec.http).chain(spec.grpc) {
                let addr = free.next().expect("ten addresses are enough for six processes' listeners");
                env.push((listener.addr_var.to_owned(), addr.to_string()));
                env.push((listener.url_var.to_owned(), format!("http://{addr}")));
            }
            if let Some((var, default)) = spec.database {
                let name = format!("archlab_test_audit_{}_{tag}", default.trim_start_matches("archlab_"));
                env.push((var.to_owned(), name.clone()));
                databases.push((var, name));
            }
        }
        let url = |var: &str| env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone()).expect("set above");
        let public_url =
            url(if kind == "monolith" { processes::MONOLITH.http.url_var } else { processes::GATEWAY.http.url_var });
        let extsim_url = url(processes::EXTSIM.http.url_var);
        let broker = format!("archlab.test.audit.{tag}");
        env.extend(
            [
                ("DATABASE_URL", database_url()),
                ("AMQP_EXCHANGE", format!("{broker}.events")),
                ("AMQP_QUEUE", format!("{broker}.notifications")),
                ("AMQP_QUEUE_EXPIRES_MS", "60000".to_owned()),
                ("NOTIFICATION_MODE", "async".to_owned()),
                ("INTERNAL_TRANSPORT", "grpc".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );

        let mut child = Command::new(common::archlab())
            .args(["up", kind, "--bin-dir"])
            .arg(&bin_dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting archlab up");
        let lines = Lines::read(child.stdout.take().expect("piped stdout"));
        let stderr = Collected::read(child.stderr.take().expect("piped stderr"));
        let mut build =
            Self { kind, child: Some(child), lines, stderr: Some(stderr), env, public_url, extsim_url, databases };
        build.wait_ready().await;
        build
    }

    /// Poll the public door's `/ready` (the gateway's asks every service) and extsim's
    /// `/health` until both answer 200; fail at once if `archlab up` exits.
    async fn wait_ready(&mut self) {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("a client");
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let ok = |url: String| {
                let client = client.clone();
                async move { client.get(url).send().await.is_ok_and(|r| r.status().is_success()) }
            };
            if ok(format!("{}/ready", self.public_url)).await && ok(format!("{}/health", self.extsim_url)).await {
                return;
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.lines.rest(Duration::from_secs(2));
                let stderr = self.stderr.take().map(|s| s.wait(Duration::from_secs(5))).unwrap_or_default();
                panic!(
                    "archlab up {} not ready ({exited:?}); stdout:\n{}\nstderr:\n{stderr}",
                    self.kind,
                    self.lines.dump()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn database(&self, var: &str) -> &str {
        &self.databases.iter().find(|(v, _)| *v == var).expect("a database of this build").1
    }

    /// A connection to the database that holds `spec`'s tables in this build.
    async fn connect(&self, spec: ProcessSpec) -> PgConnection {
        let var = match self.kind {
            "monolith" => processes::MONOLITH.database,
            _ => spec.database,
        }
        .expect("a process with a database")
        .0;
        let url = format!("{}/{}", database_url(), self.database(var));
        PgConnection::connect(&url).await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
    }

    /// `archlab audit <kind> --settle-s 0` with the build's environment: exit code, stdout.
    fn audit(&self, json: bool) -> (Option<i32>, String) {
        let mut command = Command::new(common::archlab());
        command.args(["audit", self.kind, "--settle-s", "0"]).envs(self.env.iter().map(|(k, v)| (k, v)));
        if json {
            command.arg("--json");
        }
        let out = command.output().expect("running archlab audit");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 1),
            "archlab audit ended with {}; stdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), stdout)
    }

    fn audit_json(&self) -> (Option<i32>, Report) {
        let (code, stdout) = self.audit(true);
        let report =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("--json printed no report ({e}):\n{stdout}"));
        (code, report)
    }

    /// Stop everything, then drop the databases.
    async fn finish(mut self) {
        self.stop();
        let admin = format!("{}/postgres", database_url());
        let mut conn = PgConnection::connect(&admin).await.expect("connecting as admin");
        for (_, name) in &self.databases {
            // The names are ours: a fixed prefix and hex digits.
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
                .execute(&mut conn)
                .await
                .expect("dropping a test database");
        }
    }

    /// SIGTERM to `archlab up` (which stops its children), SIGKILL if it lingers; never panics,
    /// since it also runs while a failed test unwinds.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A signed-up user.
struct User {
    id: String,
    token: String,
}

async fn signup(client: &reqwest::Client, base: &str, email: &str) -> User {
    let answer = client
        .post(format!("{base}/api/auth/signup"))
        .json(&json!({"email": email, "password": "correct horse battery", "name": "Audit"}))
        .send()
        .await
        .expect("POST /api/auth/signup");
    assert_eq!(answer.status(), 201, "signup of {email}: {:?}", answer.text().await);
    let body: Value = answer.json().await.expect("a JSON signup answer");
    User {
        id: body["user_id"].as_str().expect("user_id").to_owned(),
        token: body["token"].as_str().expect("token").to_owned(),
    }
}

async fn buy(client: &reqwest::Client, base: &str, user: &User, key: &str, amount_cents: i64) -> String {
    let answer = client
        .post(format!("{base}/api/payments"))
        .bearer_auth(&user.token)
        .header("idempotency-key", key)
        .json(&json!({"amount_cents": amount_cents, "currency": "EUR"}))
        .send()
        .await
        .expect("POST /api/payments");
    assert_eq!(answer.status(), 201, "purchase {key}: {:?}", answer.text().await);
    let body: Value = answer.json().await.expect("a JSON payment");
    assert_eq!(body["status"], "succeeded", "{body}");
    body["payment_id"].as_str().expect("payment_id").to_owned()
}

/// Wait until `user` sees one welcome and `receipts` receipts.
async fn wait_delivered(client: &reqwest::Client, base: &str, user: &User, receipts: usize) {
    let deadline = Instant::now() + DELIVERED_WITHIN;
    loop {
        let body: Value = client
            .get(format!("{base}/api/notifications"))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("GET /api/notifications")
            .json()
            .await
            .expect("a JSON notification list");
        let list = body["notifications"].as_array().cloned().unwrap_or_default();
        let count = |kind: &str| list.iter().filter(|n| n["kind"] == kind).count();
        if count("welcome") == 1 && count("receipt") == receipts {
            return;
        }
        assert!(Instant::now() < deadline, "notifications of {} not delivered: {body}", user.id);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kinds_and_ids(report: &Report) -> Vec<(ViolationKind, String, Vec<String>)> {
    report.violations.iter().map(|v| (v.kind, v.id.clone(), v.related.clone())).collect()
}

async fn audit_finds_exactly_what_was_corrupted(kind: &'static str) {
    let build = Build::start(kind).await;
    let base = build.public_url.clone();
    let client = reqwest::Client::new();
    let tag = rand::random::<u32>();
    let ada = signup(&client, &base, &format!("ada-{tag}@example.com")).await;
    let bob = signup(&client, &base, &format!("bob-{tag}@example.com")).await;
    let ada_first = buy(&client, &base, &ada, "order-1", 1000).await;
    buy(&client, &base, &ada, "order-2", 1100).await;
    buy(&client, &base, &bob, "order-1", 1200).await;
    let bob_second = buy(&client, &base, &bob, "order-2", 1300).await;
    // A retried purchase answers the same payment and charges nothing more.
    assert_eq!(buy(&client, &base, &bob, "order-2", 1300).await, bob_second);
    wait_delivered(&client, &base, &ada, 2).await;
    wait_delivered(&client, &base, &bob, 2).await;

    let (code, clean) = build.audit_json();
    assert_eq!(kinds_and_ids(&clean), [], "a build left alone is clean");
    assert_eq!(code, Some(0), "clean exits 0");
    let read = clean.read;
    // Both welcomes and all four receipts were emailed (receipts are on by default).
    assert_eq!(
        (read.credentials, read.profiles, read.payments, read.notifications, read.charges, read.emails),
        (2, 2, 4, 6, 4, 6),
        "the audit read the build's own data: {read:?}"
    );
    assert!(clean.counts.values().all(|n| *n == 0) && clean.counts.len() == ViolationKind::ALL.len());

    // 1. A receipt row goes.
    let mut notifications = build.connect(processes::NOTIFICATIONS_SERVICE).await;
    let deleted =
        sqlx::query("DELETE FROM notifications.notifications WHERE kind = 'receipt' AND payment_id = $1::uuid")
            .bind(&ada_first)
            .execute(&mut notifications)
            .await
            .expect("deleting a receipt")
            .rows_affected();
    assert_eq!(deleted, 1, "exactly one receipt for {ada_first}");

    // 2. A second charge for an existing payment. extsim refuses a second charge under the
    // payment's own key (it replays the first), so it goes under another key with the
    // payment as its reference, as a retry that lost its key would make.
    let extsim = archlab_extsim::Client::new(build.extsim_url.clone());
    let first = extsim.charges_with_key(&bob_second).await.expect("GET /v1/charges?idempotency_key=");
    assert_eq!(first.len(), 1, "one charge under the payment's key");
    let charge = |key: &str| {
        client
            .post(format!("{}/v1/charges", build.extsim_url))
            .header("idempotency-key", key)
            .json(&json!({"amount_cents": 1300, "currency": "EUR", "reference": bob_second}))
            .send()
    };
    let replayed: Value = charge(&bob_second).await.expect("POST /v1/charges").json().await.expect("a charge");
    assert_eq!(
        (replayed["replayed"].as_bool(), replayed["charge_id"].as_str()),
        (Some(true), Some(first[0].charge_id.as_str()))
    );
    let second = charge(&format!("another-key-{tag}")).await.expect("POST /v1/charges");
    assert_eq!(second.status(), 201);
    let second: Value = second.json().await.expect("a charge");
    let second_id = second["charge_id"].as_str().expect("charge_id").to_owned();

    // 3. A profile goes.
    let mut users = build.connect(processes::USERS_SERVICE).await;
    let deleted = sqlx::query("DELETE FROM users.profiles WHERE user_id = $1::uuid")
        .bind(&bob.id)
        .execute(&mut users)
        .await
        .expect("deleting a profile")
        .rows_affected();
    assert_eq!(deleted, 1);

    let (code, corrupted) = build.audit_json();
    assert_eq!(
        kinds_and_ids(&corrupted),
        [
            (ViolationKind::DoubleCharge, bob_second.clone(), vec![first[0].charge_id.clone(), second_id.clone()]),
            (ViolationKind::OrphanCredentials, bob.id.clone(), vec![]),
            (ViolationKind::MissingReceipt, ada_first.clone(), vec![]),
        ],
        "exactly the three corruptions: {:#?}",
        corrupted.violations
    );
    assert_eq!(code, Some(1), "violations exit 1");
    let counted: Vec<(ViolationKind, usize)> =
        corrupted.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (*k, *n)).collect();
    assert_eq!(
        counted,
        [(ViolationKind::DoubleCharge, 1), (ViolationKind::OrphanCredentials, 1), (ViolationKind::MissingReceipt, 1)]
    );

    // The text report names the same violations and ids.
    let (code, text) = build.audit(false);
    assert_eq!(code, Some(1));
    for line in [
        format!("double_charge        payment {bob_second} [{}, {second_id}]", first[0].charge_id),
        format!("orphan_credentials   user {}", bob.id),
        format!("missing_receipt      payment {ada_first}"),
        "3 violation(s)".to_owned(),
    ] {
        assert!(text.contains(&line), "{line:?} is not in:\n{text}");
    }
    build.finish().await;
}

#[tokio::test]
async fn audit_of_the_monolith_is_clean_then_finds_each_corruption() {
    audit_finds_exactly_what_was_corrupted("monolith").await;
}

#[tokio::test]
async fn audit_of_the_microservices_is_clean_then_finds_each_corruption() {
    audit_finds_exactly_what_was_corrupted("micro").await;
}
