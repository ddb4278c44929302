//! The cost meter against the local PostgreSQL: connections and transactions of one fresh
//! database are counted exactly, and a [`Meter`] sees a step's transactions and CPU.

use archlab_harness::cost::{self, Meter, Target};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use std::time::Duration;

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A fresh database, dropped (with its connections) by [`Fresh::drop_now`].
struct Fresh {
    name: String,
}

impl Fresh {
    async fn create() -> Self {
        let name = format!("archlab_test_cost_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(&admin_url()).await.expect("connect as admin");
        // The name is ours: random hex digits after a fixed prefix.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        Self { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", admin_url(), self.name)
    }

    async fn drop_now(self) {
        let mut admin = PgConnection::connect(&admin_url()).await.expect("connect as admin");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .execute(&mut admin)
            .await
            .expect("drop database");
    }
}

/// Poll `db_transactions` until it reaches `at_least` (closing a connection publishes its
/// counts; the read only has to catch up), for at most 10 s.
async fn transactions_reaching(databases: &[String], at_least: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = cost::db_transactions(&admin_url(), databases).await.expect("pg_stat_database");
        if now >= at_least || tokio::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn connections_and_transactions_of_one_database_are_counted() {
    let db = Fresh::create().await;
    let databases = vec![db.name.clone()];
    assert_eq!(cost::db_connections(&admin_url(), &databases).await.expect("count"), 0, "a fresh database");

    let pool = PgPoolOptions::new().min_connections(3).max_connections(3).connect(&db.url()).await.expect("pool");
    // Hold three connections at once so the pool cannot share one.
    let held = futures::future::join_all((0..3).map(|_| pool.acquire())).await;
    let held: Vec<_> = held.into_iter().map(|c| c.expect("acquire")).collect();
    let connections = cost::db_connections(&admin_url(), &databases).await.expect("count");
    assert_eq!(connections, 3, "three pooled connections");
    let backends = cost::postgres_backends(&admin_url(), &databases).await.expect("backends");
    assert_eq!(backends.len(), 3);
    let sample = cost::sample_pids(&backends).expect("sample");
    assert_eq!(sample.per_pid.len(), 3, "each backend is a local process with a /proc entry");
    assert!(sample.rss_bytes > 0);
    drop(held);
    pool.close().await;

    // Exactly 20 more transactions, each its own autocommit statement.
    let before = transactions_reaching(&databases, 0).await;
    let mut conn = PgConnection::connect(&db.url()).await.expect("connect");
    for _ in 0..20 {
        sqlx::query("SELECT 1").execute(&mut conn).await.expect("select");
    }
    conn.close().await.expect("close");
    let after = transactions_reaching(&databases, before + 20).await;
    // sqlx may prepare a statement in a transaction of its own: allow a handful more, never fewer.
    assert!((before + 20..=before + 25).contains(&after), "20 statements counted as {} transactions", after - before);
    db.drop_now().await;
}

#[tokio::test]
async fn a_meter_counts_a_steps_transactions_and_cpu() {
    let db = Fresh::create().await;
    let target = Target {
        app_pids: vec![std::process::id()],
        http_urls: Vec::new(),
        admin_url: admin_url(),
        databases: vec![db.name.clone()],
        uses_broker: false,
    };
    let meter = Meter::start(target.clone()).await.expect("start");
    let mut conn = PgConnection::connect(&db.url()).await.expect("connect");
    for _ in 0..50 {
        sqlx::query("SELECT 1").execute(&mut conn).await.expect("select");
    }
    conn.close().await.expect("close");
    transactions_reaching(&target.databases, 50).await;
    // /proc counts CPU in clock ticks (10 ms): fifty statements may not fill one. Work until
    // the kernel has counted two more ticks of this process, so the step's CPU cannot round
    // to zero (the meter's own reading is what is checked below).
    let pid = [std::process::id()];
    let cpu = |pids: &[u32]| cost::sample_pids(pids).expect("sample this process").cpu_s;
    let (from, mut x) = (cpu(&pid), 1u64);
    while cpu(&pid) < from + 0.015 {
        for _ in 0..100_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        }
        std::hint::black_box(x);
    }
    let measured = meter.finish_with(50, Duration::ZERO).await.expect("finish");
    let database = measured.calls["database"];
    assert!((50..=55).contains(&database), "50 statements measured as {database} transactions");
    let per_request = measured.calls_per_request()["database"];
    assert!((1.0..=1.1).contains(&per_request), "{per_request}");
    assert!(measured.cpu_s_app > 0.0, "this test process used CPU during the step");
    assert!(measured.rss_bytes > 0);
    assert_eq!(measured.db_connections, 0, "the step's connection was closed");
    db.drop_now().await;
}

/// `Cpus_allowed_list` of each pid.
fn allowed(pids: &[u32]) -> Vec<String> {
    pids.iter().map(|pid| archlab_harness::placement::cpus_allowed(*pid).expect("a live backend")).collect()
}

/// Poll until every backend of `databases` may run only on `cpus` (the pinner's next pass),
/// for at most 10 s; the backends and their lists as last read.
async fn backends_pinned(databases: &[String], cpus: &str) -> (Vec<u32>, Vec<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pids = cost::postgres_backends(&admin_url(), databases).await.expect("backends");
        let lists = allowed(&pids);
        if lists.iter().all(|l| l == cpus) || tokio::time::Instant::now() > deadline {
            return (pids, lists);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_backend_pinner_moves_a_builds_backends_and_only_those() {
    use archlab_harness::placement::{BackendPinner, Cpus, available};
    let everything = available().expect("this process's CPUs").to_string();
    // One CPU that is not the whole machine (on a 1-CPU machine pinning changes nothing
    // visible, and the check below would pass without the pinner doing anything).
    let Some(last) = available().expect("CPUs").iter().last().filter(|_| everything.contains(['-', ','])) else {
        eprintln!("one CPU only: nothing to show");
        return;
    };
    let one = Cpus::parse(&last.to_string()).expect("a CPU list");
    let (db, other) = (Fresh::create().await, Fresh::create().await);
    let databases = vec![db.name.clone()];
    let mut early = PgConnection::connect(&db.url()).await.expect("connect");
    let mut bystander = PgConnection::connect(&other.url()).await.expect("connect");
    let bystander_pid = cost::postgres_backends(&admin_url(), std::slice::from_ref(&other.name)).await.expect("pid");

    let pinner = BackendPinner::start(&admin_url(), databases.clone(), &one).await.expect("pinner");
    // The first pass is done when `start` returns: no waiting for the connection made before.
    let first = cost::postgres_backends(&admin_url(), &databases).await.expect("backends");
    assert_eq!(first.len(), 1, "one connection to the build's database");
    assert_eq!(allowed(&first), [one.to_string()], "pinned by the first pass");
    // A connection opened later is pinned by a later pass.
    let mut late = PgConnection::connect(&db.url()).await.expect("connect");
    let (pids, lists) = backends_pinned(&databases, &one.to_string()).await;
    assert_eq!(pids.len(), 2, "both connections are the build's");
    assert!(lists.iter().all(|l| *l == one.to_string()), "the later backend too: {lists:?}");
    // Another database's backend keeps the CPUs it inherited from the postmaster.
    let server = cost::postgres_server_pids().first().copied().expect("the postmaster is local");
    let inherited = archlab_harness::placement::cpus_allowed(server).expect("the postmaster's CPUs");
    assert_ne!(inherited, one.to_string(), "the server itself is pinned to CPU {one}: nothing to tell apart");
    assert_eq!(allowed(&bystander_pid), [inherited], "a backend of another database was moved");

    drop(pinner);
    for conn in [&mut early, &mut late, &mut bystander] {
        sqlx::query("SELECT 1").execute(conn).await.expect("still connected");
    }
    for conn in [early, late, bystander] {
        conn.close().await.expect("close");
    }
    db.drop_now().await;
    other.drop_now().await;
}
