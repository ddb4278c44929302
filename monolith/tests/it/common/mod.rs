//! Starting a real monolith for a test: port 0, a fresh database, its own extsim.

#![allow(dead_code)] // each test file uses a different part of this

use archlab_conformance::in_doubt;
use archlab_kernel::NotificationMode;
use archlab_kernel::config::{AbuseArgs, BehaviourArgs, DatabaseArgs, ExternalArgs, ReconcileArgs, SessionArgs};
use archlab_kernel::server::{self, Running};
use archlab_monolith::{App, Config, Handle};
use archlab_testkit::Extsim;

/// A running monolith and the extsim it calls.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The fault admin endpoint, `http://127.0.0.1:<another port>`.
    pub admin_url: String,
    /// Its third parties.
    pub extsim: Extsim,
    /// Inside access: pool, faults, outbox workers.
    pub handle: Handle,
    /// Stops the monolith when dropped.
    _server: Running<Handle>,
}

/// Options for [`spawn_with`].
#[derive(Default)]
pub struct Options {
    /// `sync` unless `async_mode`.
    pub sync_mode: bool,
    /// Use the session cache at this Redis.
    pub redis_url: Option<String>,
    /// Signup and login limits (the defaults unless a test says otherwise).
    pub limits: AbuseArgs,
    /// The provider timeout and the reconciler settings of `archlab_conformance::in_doubt`
    /// (short enough to wait out), instead of the defaults.
    pub quick_reconcile: bool,
}

/// A monolith in `async` notification mode.
pub async fn spawn() -> TestApp {
    spawn_with(Options::default()).await
}

/// A monolith with options.
pub async fn spawn_with(options: Options) -> TestApp {
    let extsim = archlab_testkit::extsim().await;
    let (external_timeout_ms, reconcile) = match options.quick_reconcile {
        true => (
            in_doubt::EXTERNAL_TIMEOUT_MS,
            ReconcileArgs {
                reconcile_interval_ms: in_doubt::RECONCILE_INTERVAL_MS,
                reconcile_after_ms: in_doubt::RECONCILE_AFTER_MS,
            },
        ),
        false => (5_000, ReconcileArgs::default()),
    };
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: Some("127.0.0.1:0".parse().unwrap()),
        database: archlab_testkit::fresh_database_name("mono"),
        db: DatabaseArgs { database_url: archlab_testkit::database_url().await, db_max_connections: 5 },
        external: ExternalArgs { extsim_url: extsim.url.clone(), external_timeout_ms },
        sessions: SessionArgs { redis_url: options.redis_url, session_ttl_secs: 3_600 },
        behaviour: BehaviourArgs {
            notification_mode: if options.sync_mode { NotificationMode::Sync } else { NotificationMode::Async },
            outbox_poll_ms: 1_000,
            faults: String::new(),
        },
        limits: options.limits,
        reconcile,
    };
    let server = server::spawn::<App>(config).await.expect("build the monolith");
    let admin_url = server.addrs.admin_url().expect("an admin endpoint was asked for");
    TestApp { base_url: server.addrs.http_url(), admin_url, extsim, handle: server.handle.clone(), _server: server }
}

impl archlab_conformance::Target for TestApp {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn extsim_url(&self) -> &str {
        &self.extsim.url
    }
    async fn settle(&self) {
        self.handle.process_pending().await.expect("deliver pending events");
    }
}

/// How many rows `sql` (a `SELECT count(*) ...`) counts in the app's database.
pub async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.handle.pool).await.expect(sql)
}
