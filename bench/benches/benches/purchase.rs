//! `purchase`: `POST /api/payments` end to end, one request at a time, in each build.
//!
//! - `purchase/monolith`: the monolith spawned in this process
//!   (`archlab_kernel::server::spawn::<archlab_monolith::App>`) on a fresh database, with an
//!   extsim of its own (archlab-testkit).
//! - `purchase/microservices`: the four services and the gateway in this process, talking
//!   gRPC to each other and to the real RabbitMQ (`archlab_system_tests::Stack`).
//!
//! Both with `NOTIFICATION_MODE=async` (the default), the abuse limits off, no Redis. Each
//! iteration is a new purchase (a new `Idempotency-Key`) by one signed-up user, sent by
//! reqwest over loopback. The databases are created fresh and dropped at the end.

use archlab_kernel::NotificationMode;
use archlab_kernel::config::{AbuseArgs, BehaviourArgs, DatabaseArgs, ExternalArgs, ReconcileArgs, SessionArgs};
use archlab_system_tests::{Options, Stack};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::runtime::Runtime;

/// A signed-up user of the build at `base_url`.
struct Buyer {
    client: reqwest::Client,
    url: String,
    token: String,
    next_key: AtomicU64,
}

impl Buyer {
    async fn sign_up(base_url: &str) -> Buyer {
        let client = reqwest::Client::new();
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let response = client
            .post(format!("{base_url}/api/auth/signup"))
            .json(&json!({"email": email, "password": "correct horse battery", "name": "Bench"}))
            .send()
            .await
            .expect("signup reaches the build");
        assert_eq!(response.status(), reqwest::StatusCode::CREATED, "signup");
        let body: Value = response.json().await.expect("signup's body");
        let token = body["token"].as_str().expect("a token").to_owned();
        Buyer { client, url: format!("{base_url}/api/payments"), token, next_key: AtomicU64::new(0) }
    }

    /// One new purchase; panics unless it answers 201 `succeeded`.
    async fn purchase(&self) -> Value {
        let key = format!("bench-{}", self.next_key.fetch_add(1, Ordering::Relaxed));
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(&json!({"amount_cents": 1999, "currency": "EUR"}))
            .send()
            .await
            .expect("the purchase reaches the build");
        assert_eq!(response.status(), reqwest::StatusCode::CREATED, "purchase");
        let body: Value = response.json().await.expect("the purchase's body");
        assert_eq!(body["status"], "succeeded", "purchase: {body}");
        body
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime")
}

fn group(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group("purchase");
    group.warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(8)).sample_size(20);
    group
}

fn monolith(c: &mut Criterion) {
    let rt = runtime();
    let (server, extsim, db_url) = rt.block_on(async {
        let extsim = archlab_testkit::extsim().await;
        let db_url = archlab_testkit::database_url().await;
        let config = archlab_monolith::Config {
            addr: "127.0.0.1:0".parse().expect("a loopback address"),
            admin_addr: None,
            database: archlab_testkit::fresh_database_name("bench_mono"),
            db: DatabaseArgs { database_url: db_url.clone(), db_max_connections: 20 },
            external: ExternalArgs { extsim_url: extsim.url.clone(), external_timeout_ms: 5_000 },
            sessions: SessionArgs { redis_url: None, session_ttl_secs: 3_600 },
            behaviour: BehaviourArgs {
                notification_mode: NotificationMode::Async,
                outbox_poll_ms: 1_000,
                faults: String::new(),
            },
            limits: AbuseArgs::OFF,
            reconcile: ReconcileArgs::default(),
        };
        let server = archlab_kernel::server::spawn::<archlab_monolith::App>(config).await.expect("build the monolith");
        (server, extsim, db_url)
    });
    let buyer = rt.block_on(Buyer::sign_up(&server.addrs.http_url()));
    rt.block_on(buyer.purchase());

    let mut group = group(c);
    group.bench_function("monolith", |b| b.to_async(&rt).iter(|| async { black_box(buyer.purchase().await) }));
    group.finish();

    rt.block_on(async {
        let name = archlab_benches::database_name(&server.handle.pool).await.expect("the monolith's database");
        server.stop().await.expect("the monolith stops cleanly");
        drop(extsim);
        archlab_benches::drop_database(&db_url, &name).await.expect("drop the monolith's database");
    });
}

fn microservices(c: &mut Criterion) {
    let rt = runtime();
    let options = Options { limits_off: true, ..Options::default() };
    let stack = rt.block_on(Stack::start(options));
    let buyer = rt.block_on(Buyer::sign_up(&stack.gateway_url));
    rt.block_on(buyer.purchase());

    let mut group = group(c);
    group.bench_function("microservices", |b| b.to_async(&rt).iter(|| async { black_box(buyer.purchase().await) }));
    group.finish();

    rt.block_on(async {
        let db_url = archlab_testkit::database_url().await;
        let mut names = Vec::new();
        for pool in [&stack.auth_db, &stack.users_db, &stack.payments_db, &stack.notifications_db] {
            names.push(archlab_benches::database_name(pool).await.expect("a service's database"));
        }
        drop(stack);
        for name in &names {
            archlab_benches::drop_database(&db_url, name).await.expect("drop a service's database");
        }
    });
}

criterion_group!(benches, monolith, microservices);
criterion_main!(benches);
