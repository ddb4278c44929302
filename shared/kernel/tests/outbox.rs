//! The transactional outbox over a real PostgreSQL table.
//!
//! Covers: the table is created once however often `create_table` runs, and running it
//! again takes no lock a working worker would make it wait for; an event enqueued
//! in a transaction that rolls back never exists;
//! `process_all_pending` delivers in id order and marks rows published; a failed delivery
//! records `attempts`, `last_error` and a back-off that `process_due` respects and
//! `process_all_pending` ignores; the `MAX_ATTEMPTS`-th failure parks a row, which is then
//! counted apart and never retried until the operator's `UPDATE` from docs/operations.md
//! un-parks it; `create_table` upgrades a table an earlier version created; and two workers
//! over the same rows deliver each event exactly once, a worker skipping (not waiting for)
//! rows another one holds.

use archlab_kernel::outbox::{self, Dispatch, Message, Outbox};
use archlab_kernel::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgPool};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// A schema of the tests' own, laid out like every domain's outbox.
const SCHEMA: &str = "lab";
const TOPIC: &str = "lab.happened";

#[tokio::test]
async fn creating_the_table_again_keeps_it_and_its_rows() {
    let pool = outbox_pool().await;
    enqueue(&pool, Uuid::new_v4(), 1).await;

    // Every start-up calls it; concurrent start-ups on one database must not trip each other.
    let again = (0..3).map(|_| outbox::create_table(&pool, SCHEMA));
    for created in futures::future::join_all(again).await {
        created.expect("create_table again");
    }

    assert_eq!(rows(&pool).await, 1);
    let indexes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE schemaname = 'lab' AND tablename = 'outbox'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(indexes, 3, "primary key, event_id unique, pending index");
}

#[tokio::test]
async fn creating_the_table_again_does_not_wait_for_a_worker_holding_rows() {
    let pool = outbox_pool().await;
    enqueue(&pool, Uuid::new_v4(), 1).await;
    // A worker in the middle of a claim: a row locked and updated, its transaction open.
    let mut worker = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM lab.outbox FOR UPDATE").fetch_all(&mut *worker).await.unwrap();
    sqlx::query("UPDATE lab.outbox SET attempts = attempts + 1").execute(&mut *worker).await.unwrap();

    // A second process starting now: had it to lock the table (ALTER TABLE, CREATE INDEX),
    // it would wait for the worker, and every writer would queue behind it.
    within(outbox::create_table(&pool, SCHEMA), "create_table while a worker holds rows").await.unwrap();
    within(enqueue(&pool, Uuid::new_v4(), 2), "a producer's insert").await;

    worker.commit().await.unwrap();
    assert_eq!(rows(&pool).await, 2);
}

#[tokio::test]
async fn an_event_enqueued_in_a_rolled_back_transaction_does_not_exist() {
    let pool = outbox_pool().await;

    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, SCHEMA, Uuid::new_v4(), TOPIC, &serde_json::json!({"n": 1})).await.unwrap();
    tx.rollback().await.unwrap();

    assert_eq!(rows(&pool).await, 0);
    assert_eq!(Outbox::new(pool.clone(), SCHEMA).pending().await.unwrap(), 0);

    // The same call in a committed transaction does leave the event.
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, SCHEMA, Uuid::new_v4(), TOPIC, &serde_json::json!({"n": 2})).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows(&pool).await, 1);
}

#[tokio::test]
async fn enqueueing_the_same_event_id_twice_keeps_one_row() {
    let pool = outbox_pool().await;
    let event_id = Uuid::new_v4();

    enqueue(&pool, event_id, 1).await;
    enqueue(&pool, event_id, 2).await;

    assert_eq!(rows(&pool).await, 1);
}

#[tokio::test]
async fn process_all_pending_delivers_in_id_order_and_marks_published() {
    let pool = outbox_pool().await;
    let outbox = Outbox::new(pool.clone(), SCHEMA);
    let events: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    for (n, id) in events.iter().enumerate() {
        enqueue(&pool, *id, n as i64).await;
    }
    assert_eq!(outbox.pending().await.unwrap(), 5);
    let recorder = Recorder::default();

    let delivered = outbox.process_all_pending(&recorder).await.unwrap();

    assert_eq!(delivered, 5);
    let seen = recorder.seen();
    assert_eq!(seen.iter().map(|m| m.event_id).collect::<Vec<_>>(), events, "not delivered in enqueue order");
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id), "ids not ascending: {seen:?}");
    assert_eq!(seen[3].topic, TOPIC);
    assert_eq!(seen[3].payload, serde_json::json!({"n": 3}));
    assert!(seen.iter().all(|m| m.attempts == 0), "a first delivery saw earlier attempts");

    assert_eq!(outbox.pending().await.unwrap(), 0);
    let (published, attempts_one): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE published_at IS NOT NULL), count(*) FILTER (WHERE attempts = 1) FROM lab.outbox",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((published, attempts_one), (5, 5));

    // Nothing is delivered twice.
    assert_eq!(outbox.process_all_pending(&recorder).await.unwrap(), 0);
    assert_eq!(recorder.seen().len(), 5);
}

#[tokio::test]
async fn a_failed_delivery_backs_off_for_process_due_but_not_for_process_all_pending() {
    let pool = outbox_pool().await;
    let outbox = Outbox::new(pool.clone(), SCHEMA);
    let event_id = Uuid::new_v4();
    enqueue(&pool, event_id, 1).await;
    let failing = Failing::default();

    let before = db_clock(&pool).await;
    assert_eq!(outbox.process_due(&failing).await.unwrap(), 0);

    assert_eq!(failing.calls(), 1);
    let row = state(&pool, event_id).await;
    assert_eq!(row.attempts, 1);
    assert!(row.last_error.as_deref().is_some_and(|e| e.contains("broker down")), "last_error: {:?}", row.last_error);
    assert!(row.next_attempt_at >= before + backoff(1), "next_attempt_at was not pushed into the future");
    assert!(!row.published);
    assert_eq!(outbox.pending().await.unwrap(), 1);

    // `process_all_pending` ignores the back-off: each call retries once more, and every
    // failure doubles the wait.
    for attempt in 2..=8 {
        let before = db_clock(&pool).await;
        assert_eq!(outbox.process_all_pending(&failing).await.unwrap(), 0);
        assert_eq!(failing.calls(), attempt as usize, "process_all_pending skipped a backed-off row");
        let row = state(&pool, event_id).await;
        assert_eq!(row.attempts, attempt);
        assert!(row.next_attempt_at >= before + backoff(attempt), "back-off did not grow at attempt {attempt}");
    }
    // Now the retry is over ten seconds away: `process_due` must leave the row alone.
    let recorder = Recorder::default();
    assert_eq!(outbox.process_due(&recorder).await.unwrap(), 0);
    assert!(recorder.seen().is_empty(), "process_due delivered a row whose retry time had not come");

    // ... while `process_all_pending` delivers it, clearing the error.
    assert_eq!(outbox.process_all_pending(&recorder).await.unwrap(), 1);
    assert_eq!(recorder.seen()[0].event_id, event_id);
    assert_eq!(recorder.seen()[0].attempts, 8);
    let row = state(&pool, event_id).await;
    assert!(row.published);
    assert_eq!(row.attempts, 9);
    assert_eq!(row.last_error, None);
}

#[tokio::test]
async fn a_row_failing_max_attempts_times_is_parked_counted_and_no_longer_retried() {
    let pool = outbox_pool().await;
    let outbox = Outbox::new(pool.clone(), SCHEMA);
    let (poison, good) = (Uuid::new_v4(), Uuid::new_v4());
    enqueue(&pool, poison, 1).await;
    let failing = Failing::default();
    let max = outbox::MAX_ATTEMPTS as usize;

    for _ in 1..max {
        outbox.process_all_pending(&failing).await.unwrap();
    }
    assert_eq!(state(&pool, poison).await.parked_at, None, "parked before the last attempt");
    assert_eq!((outbox.pending().await.unwrap(), outbox.parked().await.unwrap()), (1, 0));

    outbox.process_all_pending(&failing).await.unwrap();

    assert_eq!(failing.calls(), max);
    let row = state(&pool, poison).await;
    assert_eq!(row.attempts, outbox::MAX_ATTEMPTS);
    assert!(row.parked_at.is_some(), "not parked after {max} failures");
    assert!(!row.published);
    assert!(row.last_error.as_deref().is_some_and(|e| e.contains("broker down")), "last_error: {:?}", row.last_error);
    assert_eq!(outbox.pending().await.unwrap(), 0, "a parked row counted as pending");
    assert_eq!(outbox.parked().await.unwrap(), 1);

    // Neither kind of pass touches it again, and it does not hold up a new event.
    enqueue(&pool, good, 2).await;
    let recorder = Recorder::default();
    assert_eq!(outbox.process_all_pending(&recorder).await.unwrap(), 1);
    assert_eq!(outbox.process_due(&failing).await.unwrap(), 0);
    assert_eq!(failing.calls(), max, "a parked row was retried");
    assert_eq!(recorder.seen().iter().map(|m| m.event_id).collect::<Vec<_>>(), vec![good]);

    // The operator's statement from docs/operations.md gives it a fresh set of attempts.
    let unparked = sqlx::raw_sql(AssertSqlSafe(unpark_statement().replace("auth.outbox", "lab.outbox")))
        .execute(&pool)
        .await
        .expect("the documented un-park statement runs");
    assert_eq!(unparked.rows_affected(), 1);
    assert_eq!((outbox.pending().await.unwrap(), outbox.parked().await.unwrap()), (1, 0));
    assert_eq!(outbox.process_due(&recorder).await.unwrap(), 1, "the un-parked row is due at once");
    assert_eq!(recorder.seen()[1].event_id, poison);
    assert_eq!(recorder.seen()[1].attempts, 0);
    let row = state(&pool, poison).await;
    assert!(row.published);
    assert_eq!(row.parked_at, None);
}

#[tokio::test]
async fn create_table_upgrades_a_table_an_earlier_version_created() {
    let pool = archlab_testkit::fresh_pool("kernel_outbox").await;
    // The table as it was before rows could be parked, with an event in it.
    sqlx::raw_sql(
        "CREATE SCHEMA lab;
         CREATE TABLE lab.outbox (
             id              BIGSERIAL PRIMARY KEY,
             event_id        UUID NOT NULL UNIQUE,
             topic           TEXT NOT NULL,
             payload         JSONB NOT NULL,
             created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
             attempts        INT NOT NULL DEFAULT 0,
             next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
             last_error      TEXT,
             published_at    TIMESTAMPTZ
         );
         CREATE INDEX lab_outbox_pending ON lab.outbox (next_attempt_at) WHERE published_at IS NULL;
         INSERT INTO lab.outbox (event_id, topic, payload) VALUES (gen_random_uuid(), 'lab.happened', '{}');",
    )
    .execute(&pool)
    .await
    .unwrap();
    let outbox = Outbox::new(pool.clone(), SCHEMA);
    assert!(outbox.pending().await.is_err(), "the old table already has parked_at: the test proves nothing");

    outbox::create_table(&pool, SCHEMA).await.expect("upgrade lab.outbox");
    outbox::create_table(&pool, SCHEMA).await.expect("and again, as every start-up does");

    assert_eq!((outbox.pending().await.unwrap(), outbox.parked().await.unwrap()), (1, 0));
    assert_eq!(outbox.process_all_pending(&Recorder::default()).await.unwrap(), 1, "the old row is delivered");
}

#[tokio::test]
async fn a_failure_does_not_hold_up_the_events_behind_it() {
    let pool = outbox_pool().await;
    let outbox = Outbox::new(pool.clone(), SCHEMA);
    let (bad, good) = (Uuid::new_v4(), Uuid::new_v4());
    enqueue(&pool, bad, 1).await;
    enqueue(&pool, good, 2).await;
    let picky = Recorder { refuse: Some(bad), ..Default::default() };

    assert_eq!(outbox.process_all_pending(&picky).await.unwrap(), 1);

    assert_eq!(picky.seen().iter().map(|m| m.event_id).collect::<Vec<_>>(), vec![good]);
    assert!(state(&pool, good).await.published);
    assert!(!state(&pool, bad).await.published);
}

#[tokio::test]
async fn two_concurrent_workers_deliver_each_of_50_events_exactly_once() {
    let pool = outbox_pool().await;
    let events = enqueue_many(&pool, 50).await;
    let counter = Recorder::default();
    let (a, b) = (Outbox::new(pool.clone(), SCHEMA), Outbox::new(pool.clone(), SCHEMA));

    let (na, nb) = tokio::join!(a.process_due(&counter), b.process_due(&counter));

    assert_eq!(na.unwrap() + nb.unwrap(), 50);
    assert_each_delivered_once(&counter, &events);
    assert_eq!(a.pending().await.unwrap(), 0);
}

#[tokio::test]
async fn a_worker_skips_rows_another_worker_holds_instead_of_waiting() {
    let pool = outbox_pool().await;
    let events = enqueue_many(&pool, 50).await;
    let counter = Recorder::default();
    // Worker A claims its first batch, then stops inside its transaction (rows locked)
    // until worker B has finished.
    let gate = Arc::new(Gate::default());
    let worker_a = {
        let outbox = Outbox::new(pool.clone(), SCHEMA);
        let held = Held::new(&gate, &counter);
        tokio::spawn(async move { outbox.process_due(&held).await })
    };
    within(gate.claimed.notified(), "worker A to claim its batch").await;

    let worker_b = Outbox::new(pool.clone(), SCHEMA);
    let nb =
        within(worker_b.process_due(&counter), "worker B: blocked on A's locks, so no SKIP LOCKED?").await.unwrap();
    gate.release.notify_one();
    let na = within(worker_a, "worker A to finish").await.unwrap().unwrap();

    assert!(nb > 0, "worker B delivered nothing while A held its batch");
    assert!(na > 0);
    assert_eq!(na + nb, 50);
    assert_each_delivered_once(&counter, &events);
}

#[tokio::test]
async fn process_all_pending_waits_for_rows_another_worker_holds() {
    let pool = outbox_pool().await;
    let events = enqueue_many(&pool, 10).await;
    let counter = Recorder::default();
    let gate = Arc::new(Gate::default());
    let worker = {
        let outbox = Outbox::new(pool.clone(), SCHEMA);
        let held = Held::new(&gate, &counter);
        tokio::spawn(async move { outbox.process_due(&held).await })
    };
    within(gate.claimed.notified(), "the worker to claim its batch").await;

    let drain = {
        let outbox = Outbox::new(pool.clone(), SCHEMA);
        let counter = counter.clone();
        tokio::spawn(async move {
            let drained = outbox.process_all_pending(&counter).await?;
            Ok::<_, Error>((drained, outbox.pending().await?))
        })
    };
    within(lock_waiter(&pool), "process_all_pending to wait on the held rows").await;
    assert!(!drain.is_finished(), "process_all_pending returned while rows were in flight");
    gate.release.notify_one();
    let by_worker = within(worker, "the worker").await.unwrap().unwrap();
    let (drained, pending_after) = within(drain, "process_all_pending").await.unwrap().unwrap();

    assert_eq!(by_worker, 10);
    assert_eq!(drained, 0, "process_all_pending re-delivered rows the worker published");
    assert_eq!(pending_after, 0, "process_all_pending returned with events still in flight");
    assert_each_delivered_once(&counter, &events);
}

// --- helpers ---

/// A fresh database with one outbox table, made the way every domain's `migrate()` makes it.
async fn outbox_pool() -> PgPool {
    let pool = archlab_testkit::fresh_pool("kernel_outbox").await;
    sqlx::raw_sql("CREATE SCHEMA lab").execute(&pool).await.expect("create schema lab");
    outbox::create_table(&pool, SCHEMA).await.expect("create lab.outbox");
    pool
}

async fn enqueue(pool: &PgPool, event_id: Uuid, n: i64) {
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, SCHEMA, event_id, TOPIC, &serde_json::json!({ "n": n })).await.unwrap();
    tx.commit().await.unwrap();
}

async fn enqueue_many(pool: &PgPool, n: usize) -> Vec<Uuid> {
    let events: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let mut tx = pool.begin().await.unwrap();
    for (i, id) in events.iter().enumerate() {
        outbox::enqueue(&mut tx, SCHEMA, *id, TOPIC, &serde_json::json!({ "n": i })).await.unwrap();
    }
    tx.commit().await.unwrap();
    events
}

async fn rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM lab.outbox").fetch_one(pool).await.unwrap()
}

/// One outbox row as the assertions need it.
#[derive(sqlx::FromRow)]
struct RowState {
    attempts: i32,
    last_error: Option<String>,
    published: bool,
    next_attempt_at: DateTime<Utc>,
    parked_at: Option<DateTime<Utc>>,
}

async fn state(pool: &PgPool, event_id: Uuid) -> RowState {
    sqlx::query_as(
        "SELECT attempts, last_error, published_at IS NOT NULL AS published, next_attempt_at, parked_at
         FROM lab.outbox WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The one-line `UPDATE` docs/operations.md gives operators to un-park `auth.outbox`.
fn unpark_statement() -> String {
    let doc = include_str!("../../../docs/operations.md");
    let mut found = doc.lines().filter(|line| line.contains("SET parked_at = NULL"));
    let statement = found.next().expect("docs/operations.md shows the un-park statement");
    assert!(found.next().is_none(), "docs/operations.md shows more than one un-park statement");
    assert!(statement.starts_with("UPDATE auth.outbox "), "{statement}");
    statement.to_owned()
}

/// The database server's clock now (not the transaction's start time).
async fn db_clock(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(pool).await.unwrap()
}

/// The least wait after the `attempt`-th failure, by the outbox's own policy.
fn backoff(attempt: i32) -> chrono::Duration {
    let failures = u32::try_from(attempt).expect("attempts count from 1");
    chrono::Duration::from_std(outbox::BACKOFF.delay(failures)).expect("a back-off fits")
}

fn assert_each_delivered_once(counter: &Recorder, events: &[Uuid]) {
    let mut times: HashMap<Uuid, usize> = HashMap::new();
    for m in counter.seen() {
        *times.entry(m.event_id).or_default() += 1;
    }
    assert_eq!(times.len(), events.len(), "some events were never delivered");
    for id in events {
        assert_eq!(times.get(id), Some(&1), "event {id} delivered {:?} times", times.get(id));
    }
}

/// Completes once some session of this database is waiting on a row lock.
async fn lock_waiter(pool: &PgPool) {
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Fails the test if `fut` takes more than ten seconds: a deadlock guard, not a sleep.
async fn within<F: std::future::IntoFuture>(fut: F, what: &str) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Records every message it is given; refuses the one event `refuse` names.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Message>>>,
    refuse: Option<Uuid>,
}

impl Recorder {
    fn seen(&self) -> Vec<Message> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Dispatch for Recorder {
    async fn dispatch(&self, message: &Message) -> Result<()> {
        if self.refuse == Some(message.event_id) {
            return Err(Error::unavailable("broker", "refused"));
        }
        // Give a concurrent worker the chance to run between deliveries.
        tokio::task::yield_now().await;
        self.seen.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// Fails every delivery, counting the attempts.
#[derive(Default)]
struct Failing {
    calls: Mutex<usize>,
}

impl Failing {
    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

#[async_trait]
impl Dispatch for Failing {
    async fn dispatch(&self, _: &Message) -> Result<()> {
        *self.calls.lock().unwrap() += 1;
        Err(Error::unavailable("broker", "broker down"))
    }
}

/// A hand-off between the test and a worker that is inside its claiming transaction.
#[derive(Default)]
struct Gate {
    /// Signalled when the worker has claimed its batch.
    claimed: Notify,
    /// The worker waits for this before delivering anything.
    release: Notify,
}

/// Delegates to `inner`, but on its first message signals `claimed` and waits for `release`.
struct Held {
    gate: Arc<Gate>,
    inner: Recorder,
    first: AtomicBool,
}

impl Held {
    fn new(gate: &Arc<Gate>, inner: &Recorder) -> Self {
        Self { gate: gate.clone(), inner: inner.clone(), first: AtomicBool::new(true) }
    }
}

#[async_trait]
impl Dispatch for Held {
    async fn dispatch(&self, message: &Message) -> Result<()> {
        if self.first.swap(false, Ordering::SeqCst) {
            self.gate.claimed.notify_one();
            self.gate.release.notified().await;
        }
        self.inner.dispatch(message).await
    }
}
