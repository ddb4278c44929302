//! The supervisor's restart policy on the real microservices: SIGKILL notifications-service
//! and the gateway and the other services go on answering; under `off` it stays down, under
//! `on-failure` it comes back with a new pid.
//!
//! The topology is started in-process through [`Supervisor`], the API a chaos experiment
//! uses, on free loopback ports, fresh databases and broker names. Needs the micro binaries
//! (`cargo build --workspace --bins`; built here if missing), PostgreSQL and RabbitMQ. The
//! databases are left behind, as every test's are, for `make clean-dbs` (dropping four takes
//! longer than the test).

use crate::common;

use archlab_harness::supervisor::{self, BACKOFF_FIRST, Restart, Supervisor};
use archlab_harness::{Kind, NotificationMode, Options, Topology, Transport};
use archlab_kernel::processes;
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

const NOTIFICATIONS: &str = processes::NOTIFICATIONS_SERVICE.name;
/// The services that do not need notifications-service to be ready.
const OTHERS: [&str; 3] =
    [processes::AUTH_SERVICE.name, processes::USERS_SERVICE.name, processes::PAYMENTS_SERVICE.name];
/// First start creates and migrates four databases; a cold machine may be slow.
const READY_WITHIN: Duration = Duration::from_secs(60);

fn bin_dir() -> PathBuf {
    common::bin_dir(&[
        "extsim",
        "auth-service",
        "users-service",
        "notifications-service",
        "payments-service",
        "gateway",
    ])
}

/// A running microservices build and what the test needs to reach and clean it.
struct Micro {
    children: Supervisor,
    topology: Topology,
    client: reqwest::Client,
}

impl Micro {
    /// The micro topology under `restart`, every process ready.
    async fn start(restart: Restart) -> Self {
        let run = format!("{:012x}", rand::random::<u64>() >> 16);
        let database_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let mut env = Vec::new();
        // Every listener on a port of its own, all bound at once so they differ, then released.
        let listeners: Vec<_> =
            processes::ALL.iter().flat_map(|spec| std::iter::once(spec.http).chain(spec.grpc)).collect();
        let bound: Vec<TcpListener> =
            listeners.iter().map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port")).collect();
        for (listener, bound) in listeners.iter().zip(&bound) {
            let addr = bound.local_addr().expect("a bound address");
            env.push((listener.addr_var.to_owned(), addr.to_string()));
            env.push((listener.url_var.to_owned(), format!("http://{addr}")));
        }
        drop(bound);
        for (var, name) in processes::SERVICES.iter().filter_map(|spec| spec.database) {
            let domain = name.trim_start_matches("archlab_");
            env.push((var.to_owned(), format!("archlab_test_restart_{run}_{domain}")));
        }
        let broker = format!("archlab.test.restart.{run}");
        env.extend([
            ("DATABASE_URL".to_owned(), database_url),
            ("AMQP_EXCHANGE".to_owned(), format!("{broker}.events")),
            ("AMQP_QUEUE".to_owned(), format!("{broker}.notifications")),
            ("AMQP_QUEUE_EXPIRES_MS".to_owned(), "60000".to_owned()),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), String::new()),
        ]);
        let lookup = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        // Async delivery: signup's welcome notification waits in the outbox and the broker.
        let options =
            Options { mode: Some(NotificationMode::Async), transport: Some(Transport::Grpc), ..Options::default() };
        let mut topology = Topology::new(Kind::Micro, options, lookup);
        topology.env.extend(env);

        let mut children = Supervisor::start(&topology, &bin_dir(), false, restart).await.expect("spawning the build");
        tokio::select! {
            ready = supervisor::wait_ready(&topology.processes, READY_WITHIN) => ready.expect("every process ready"),
            exit = children.next_exit() => panic!("{} exited during start-up ({})", exit.name, exit.describe()),
        }
        let client = reqwest::Client::builder().no_proxy().build().expect("an HTTP client");
        Self { children, topology, client }
    }

    /// The base URL of process `name`.
    fn url(&self, name: &str) -> &str {
        let process = self.topology.processes.iter().find(|p| p.name == name).expect("a process of the build");
        &process.http_url
    }

    /// `GET path` on process `name`: status and body.
    async fn get(&self, name: &str, path: &str) -> (StatusCode, String) {
        let url = format!("{}{path}", self.url(name));
        let response = self.client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        (response.status(), response.text().await.unwrap_or_default())
    }

    /// A signup through the gateway: it touches auth-service and users-service, and queues
    /// a welcome notification.
    async fn signup(&self) -> StatusCode {
        let email = format!("restart-{:016x}@example.com", rand::random::<u64>());
        let body = serde_json::json!({"email": email, "password": "correct horse battery", "name": "Restart"});
        let url = format!("{}/api/auth/signup", self.url(processes::GATEWAY.name));
        self.client.post(&url).json(&body).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}")).status()
    }

    /// The next exit of a child, within a few seconds.
    async fn next_exit(&mut self) -> supervisor::Exit {
        tokio::time::timeout(Duration::from_secs(10), self.children.next_exit()).await.expect("an exit was reported")
    }

    /// Stop every process.
    async fn stop(mut self) {
        self.children.stop(supervisor::GRACE, std::future::pending()).await;
    }
}

/// Whether something accepts connections at `url` (`http://host:port`).
fn accepts(url: &str) -> bool {
    let addr = url.trim_start_matches("http://").parse().expect("a socket address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Whether `pid` still names a process.
fn alive(pid: u32) -> bool {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pids fit in i32"));
    nix::sys::signal::kill(pid, None).is_ok()
}

/// Every child's pid but `except`'s.
fn pids_but(children: &Supervisor, except: &str) -> Vec<(&'static str, u32)> {
    children.pids().into_iter().filter(|(name, _)| *name != except).collect()
}

#[tokio::test]
async fn with_restart_off_a_killed_service_stays_down_and_the_rest_keep_serving() {
    let mut micro = Micro::start(Restart::Off).await;
    let others_before = pids_but(&micro.children, NOTIFICATIONS);

    let killed = micro.children.signal(NOTIFICATIONS, Signal::SIGKILL).expect("notifications-service runs");
    let exit = micro.next_exit().await;
    assert_eq!((exit.name, exit.describe(), exit.restart_in), (NOTIFICATIONS, "signal: 9 (SIGKILL)".to_owned(), None));
    assert_eq!(micro.children.pid(NOTIFICATIONS), None);
    assert!(!alive(killed), "pid {killed} was reaped");

    // The gateway lives and says exactly what is missing.
    assert_eq!(micro.get("gateway", "/health").await.0, StatusCode::OK);
    let (status, body) = micro.get("gateway", "/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let checks: serde_json::Value = serde_json::from_str(&body).expect("a JSON readiness body");
    assert_eq!(checks["checks"]["users-service"], "ok", "{body}");
    let missing = checks["checks"][NOTIFICATIONS].as_str();
    assert!(missing.is_some_and(|why| why != "ok"), "notifications-service is named as failing: {body}");
    for name in OTHERS {
        let (status, body) = micro.get(name, "/ready").await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
    }
    assert_eq!(micro.signup().await, StatusCode::CREATED, "a signup needs no notifications-service");

    assert!(!accepts(micro.url(NOTIFICATIONS)), "policy off, yet something answers for notifications-service");
    assert_eq!(micro.children.pid(NOTIFICATIONS), None, "policy off, yet it was started again");
    assert_eq!(pids_but(&micro.children, NOTIFICATIONS), others_before, "the others run on, untouched");
    assert!(micro.children.restarts().iter().all(|(_, n)| *n == 0), "{:?}", micro.children.restarts());
    micro.stop().await;
}

#[tokio::test]
async fn with_restart_on_failure_a_killed_service_comes_back_under_a_new_pid() {
    let mut micro = Micro::start(Restart::OnFailure).await;
    let others_before = pids_but(&micro.children, NOTIFICATIONS);

    let killed = micro.children.signal(NOTIFICATIONS, Signal::SIGKILL).expect("notifications-service runs");
    let exit = micro.next_exit().await;
    assert_eq!((exit.name, exit.restart_in), (NOTIFICATIONS, Some(BACKOFF_FIRST)), "{}", exit.describe());

    // Back when a new pid runs and its /ready answers.
    let deadline = Instant::now() + READY_WITHIN;
    let ready_url = format!("{}/ready", micro.url(NOTIFICATIONS));
    let reborn = loop {
        if let Some(pid) = micro.children.pid(NOTIFICATIONS).filter(|pid| *pid != killed) {
            let answer = micro.client.get(&ready_url).send().await;
            if answer.is_ok_and(|r| r.status() == StatusCode::OK) {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "notifications-service not back within {READY_WITHIN:?}");
        tokio::time::sleep(supervisor::POLL_EVERY).await;
    };
    assert!(!alive(killed) && alive(reborn), "the old pid {killed} is gone, the new one {reborn} runs");
    let restarts = micro.children.restarts();
    assert!(
        restarts.iter().all(|(name, n)| *n == u32::from(*name == NOTIFICATIONS)),
        "one restart, of notifications-service only: {restarts:?}"
    );
    assert_eq!(pids_but(&micro.children, NOTIFICATIONS), others_before, "the others run on, untouched");
    let (status, body) = micro.get("gateway", "/ready").await;
    assert_eq!(status, StatusCode::OK, "the gateway sees every upstream again: {body}");
    assert_eq!(micro.signup().await, StatusCode::CREATED);
    micro.stop().await;
}
