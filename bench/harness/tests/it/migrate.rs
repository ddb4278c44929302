//! `archlab migrate`: a module's rows move out to its service's database and back while a
//! writer keeps writing, and a run that dies half-way is finished by the next one.
//!
//! The writer is the notifications module itself (`NotificationsService::deliver`, in-app
//! notifications, so no email), bound to whichever side it was last told is live; a write
//! refused with "has moved" is retried against the other side, as the process that replaces
//! the old binding would take it. Every acknowledged event must end up exactly once on the
//! side that is live at the end.

use archlab_harness::migrate::{self, Found};
use archlab_kernel::processes::Module;
use archlab_notifications::{EventKind, NotificationEvent, NotificationsApi, NotificationsService};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// Writes the writer makes between two moves, at least.
const BETWEEN_MOVES: usize = 40;

/// One side of the move: a database and the module bound to it.
struct Side {
    name: String,
    pool: PgPool,
    notifications: Arc<NotificationsService>,
}

async fn side(name: &str, extsim_url: &str) -> Side {
    let db_url = archlab_testkit::database_url().await;
    archlab_kernel::db::ensure_database(&db_url, name).await.expect("create the database");
    let db = archlab_kernel::config::DatabaseArgs { database_url: db_url, db_max_connections: 4 };
    let pool = db.open(name).await.expect("open the database");
    let email = Arc::new(archlab_notifications::ExtsimEmail::new(extsim_url, Duration::from_secs(5)));
    let notifications = Arc::new(NotificationsService::new(pool.clone(), email, Default::default()));
    Side { name: name.to_owned(), pool, notifications }
}

fn event() -> NotificationEvent {
    let user_id = Uuid::new_v4();
    NotificationEvent {
        event_id: Uuid::new_v4(),
        user_id,
        email_to: None,
        kind: EventKind::Welcome { name: "W".into() },
    }
}

fn is_moved(error: &archlab_kernel::Error) -> bool {
    format!("{error:?}").contains("has moved")
}

/// What the writer did.
struct Written {
    /// Every event acknowledged, in order.
    acknowledged: Vec<Uuid>,
    /// Writes refused with "moved" (then retried).
    refused: usize,
    /// The longest time one write took from its first attempt to its acknowledgement.
    longest: Duration,
}

/// Write until `stop`, to `sides[live]`, moving to the other side when refused.
async fn writer(sides: Arc<[Side; 2]>, progress: watch::Sender<usize>, stop: Arc<AtomicBool>) -> Written {
    let mut live = 0;
    let mut written = Written { acknowledged: Vec::new(), refused: 0, longest: Duration::ZERO };
    // Bounded, whatever happens to the test around it.
    while !stop.load(Ordering::Relaxed) && written.acknowledged.len() < 20_000 {
        let event = event();
        let started = Instant::now();
        loop {
            match sides[live].notifications.deliver(event.clone()).await {
                Ok(_) => break,
                Err(e) if is_moved(&e) => {
                    written.refused += 1;
                    live = 1 - live;
                    // Back-off before trying the other side, which may still be fenced
                    // for the instant between the two switches.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => panic!("write to {} failed: {e:?}", sides[live].name),
            }
            assert!(started.elapsed() < Duration::from_secs(30), "a write was refused for 30 s");
        }
        written.longest = written.longest.max(started.elapsed());
        written.acknowledged.push(event.event_id);
        progress.send_replace(written.acknowledged.len());
    }
    written
}

async fn wait_for_writes(progress: &mut watch::Receiver<usize>, at_least: usize) {
    progress.wait_for(|n| *n >= at_least).await.expect("the writer is running");
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_moves_out_and_back_under_writes_losing_and_duplicating_nothing() {
    let extsim = archlab_testkit::extsim().await;
    let db_url = archlab_testkit::database_url().await;
    let (mono, service) = (archlab_testkit::fresh_database_name("mono"), archlab_testkit::fresh_database_name("ntf"));
    let monolith = side(&mono, &extsim.url).await;
    archlab_notifications::migrate(&monolith.pool).await.expect("the monolith's notifications schema");
    let sides = Arc::new([monolith, side(&service, &extsim.url).await]);
    let (progress, mut seen) = watch::channel(0);
    let stop = Arc::new(AtomicBool::new(false));
    let writing = tokio::spawn(writer(sides.clone(), progress, stop.clone()));

    wait_for_writes(&mut seen, BETWEEN_MOVES).await;
    let out = migrate::migrate(&db_url, Module::Notifications, &mono, &service).await.expect("extract");
    assert_eq!(out.found, Found::Fresh);
    assert_eq!(out.passes.len(), 3, "copy, catch-up, switch");
    assert!(out.passes[0] >= BETWEEN_MOVES as u64 * 2, "the copy wrote every row at least: {:?}", out.passes);
    let after_extract = *seen.borrow();
    wait_for_writes(&mut seen, after_extract + BETWEEN_MOVES).await;

    let back = migrate::migrate(&db_url, Module::Notifications, &service, &mono).await.expect("consolidate");
    assert_eq!(back.found, Found::Fresh);
    let after_back = *seen.borrow();
    wait_for_writes(&mut seen, after_back + BETWEEN_MOVES).await;
    stop.store(true, Ordering::Relaxed);
    let written = writing.await.expect("the writer finished");

    // Every acknowledged event once, on the monolith, live again; nothing else there.
    let [monolith, fenced] = &*sides;
    let acked = written.acknowledged.len() as i64;
    let rows = count(&monolith.pool, "SELECT count(*) FROM notifications.notifications").await;
    let distinct = count(&monolith.pool, "SELECT count(DISTINCT event_id) FROM notifications.notifications").await;
    let inbox = count(&monolith.pool, "SELECT count(*) FROM notifications.processed_messages").await;
    assert_eq!((rows, distinct, inbox), (acked, acked, acked), "rows, distinct events, inbox rows vs acknowledged");
    let stored: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM notifications.notifications")
        .fetch_all(&monolith.pool)
        .await
        .expect("event ids");
    let stored: std::collections::HashSet<Uuid> = stored.into_iter().collect();
    assert!(written.acknowledged.iter().all(|id| stored.contains(id)), "an acknowledged event is missing");
    // The writer was sent across twice, each time by a refusal.
    assert!(written.refused >= 2, "the writer was refused {} times: it never moved", written.refused);

    // The service's copy is fenced: a write there is refused, and adds nothing.
    let before = count(&fenced.pool, "SELECT count(*) FROM notifications.notifications").await;
    let refused = fenced.notifications.deliver(event()).await.expect_err("the fenced side refuses");
    assert!(is_moved(&refused), "{refused:?}");
    assert_eq!(count(&fenced.pool, "SELECT count(*) FROM notifications.notifications").await, before);

    // A second run changes nothing.
    let again = migrate::migrate(&db_url, Module::Notifications, &service, &mono).await.expect("again");
    assert_eq!(again.found, Found::AlreadyMoved);
    assert!(again.passes.is_empty());
    assert_eq!(count(&monolith.pool, "SELECT count(*) FROM notifications.notifications").await, acked);
    println!(
        "extract window {:.1} ms, consolidate window {:.1} ms, longest write {:.1} ms, {} writes, {} refused",
        out.window.as_secs_f64() * 1e3,
        back.window.as_secs_f64() * 1e3,
        written.longest.as_secs_f64() * 1e3,
        acked,
        written.refused
    );
    assert!(out.window > Duration::ZERO && back.window > Duration::ZERO);
}

/// A pool on database `name`, created if missing.
async fn pool(name: &str) -> PgPool {
    let url = archlab_testkit::database_url().await;
    archlab_kernel::db::connect(&url, name, 3).await.expect("a pool")
}

/// `archlab migrate` as a process, dying where it is told to.
fn run_migrate(direction: &str, mono: &str, service: &str, crash_at: Option<&str>) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_archlab"));
    command.args(["migrate", direction, "payments", "--monolith-db", mono, "--service-db", service]);
    match crash_at {
        Some(at) => command.env("ARCHLAB_MIGRATE_CRASH_AT", at),
        None => command.env_remove("ARCHLAB_MIGRATE_CRASH_AT"),
    };
    command.output().expect("archlab runs")
}

/// Whether a write to `payments.payments` on `pool` is refused as moved.
async fn refuses_writes(pool: &PgPool) -> bool {
    let result = sqlx::query("UPDATE payments.payments SET updated_at = updated_at WHERE false").execute(pool).await;
    match result {
        Ok(_) => false,
        Err(e) if e.to_string().contains("has moved") => true,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_half_way_is_finished_by_the_next_and_never_leaves_both_sides_live() {
    let (mono, service) = (archlab_testkit::fresh_database_name("mono"), archlab_testkit::fresh_database_name("pay"));
    let monolith = pool(&mono).await;
    archlab_payments::migrate(&monolith).await.expect("the monolith's payments schema");
    // Payments, and receipts waiting in the outbox (a serial id the target must continue).
    for i in 0..30 {
        sqlx::query(
            "INSERT INTO payments.payments (payment_id, user_id, idempotency_key, request_fingerprint, amount_cents, currency, status)
             VALUES ($1, $2, $3, 'f', $4, 'EUR', 'succeeded')",
        )
        .bind(Uuid::new_v4())
        .bind(Uuid::new_v4())
        .bind(format!("key-{i}"))
        .bind(100 + i)
        .execute(&monolith)
        .await
        .expect("a payment");
        sqlx::query(
            "INSERT INTO payments.outbox (event_id, topic, payload) VALUES ($1, 'notification.requested', '{}')",
        )
        .bind(Uuid::new_v4())
        .execute(&monolith)
        .await
        .expect("an outbox row");
    }

    // Dies after the first copy: the monolith is still live; the copy is not.
    let died = run_migrate("extract", &mono, &service, Some("copied"));
    assert!(!died.status.success(), "the run was to die: {}", String::from_utf8_lossy(&died.stderr));
    let target = pool(&service).await;
    assert!(!refuses_writes(&monolith).await, "the monolith must still take writes");
    assert!(refuses_writes(&target).await, "the half-copied service database must not");

    // Dies between fencing the monolith and unfencing the service: both refuse, none is live.
    let died = run_migrate("extract", &mono, &service, Some("fenced"));
    assert!(!died.status.success(), "the run was to die");
    assert!(refuses_writes(&monolith).await && refuses_writes(&target).await, "both sides fenced");

    // The next run finishes it.
    let finished = run_migrate("extract", &mono, &service, None);
    let stdout = String::from_utf8_lossy(&finished.stdout);
    assert!(finished.status.success(), "{stdout}{}", String::from_utf8_lossy(&finished.stderr));
    assert!(stdout.contains("an earlier run died mid-switch"), "{stdout}");
    assert!(refuses_writes(&monolith).await && !refuses_writes(&target).await, "the service is live, alone");
    assert_eq!(count(&target, "SELECT count(*) FROM payments.payments").await, 30);
    assert_eq!(count(&target, "SELECT count(*) FROM payments.outbox").await, 30);
    // The outbox's sequence continues past the copied ids.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO payments.outbox (event_id, topic, payload) VALUES ($1, 'notification.requested', '{}') RETURNING id",
    )
    .bind(Uuid::new_v4())
    .fetch_one(&target)
    .await
    .expect("a new outbox row on the service");
    let highest: i64 = count(&monolith, "SELECT max(id) FROM payments.outbox").await;
    assert!(id > highest, "new id {id} collides with the copied ones (up to {highest})");

    // And once more: nothing to do.
    let again = run_migrate("extract", &mono, &service, None);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));
    assert_eq!(count(&target, "SELECT count(*) FROM payments.outbox").await, 31);
}
