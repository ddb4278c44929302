//! The transactional outbox, the same mechanism in both builds.
//!
//! A producer writes its event into `<schema>.outbox` in the same transaction as the state
//! change that caused it, so the event exists if and only if the change committed. A worker
//! claims pending rows with `FOR UPDATE SKIP LOCKED` (several workers never take the same
//! row) and hands each to a [`Dispatch`]: in the monolith that is an in-process call to the
//! notifications module; in the microservices it is a publish to RabbitMQ. Delivery is at
//! least once; consumers are idempotent by `event_id`.
//!
//! Each row keeps the `traceparent` of the span that wrote it (`trace_context`), and the
//! worker delivers it inside an `outbox.deliver` span continuing that context, so a delivery
//! seconds later is still part of the request's trace (see `crate::trace`).
//!
//! The insert also does `pg_notify`, delivered by PostgreSQL at commit, so the worker wakes
//! at once instead of waiting for its next poll.
//!
//! The table is the same in every schema that has one, so it is defined here once:
//! [`create_table`], which a producing domain's `migrate()` calls after its own migrations.
//!
//! A failed delivery is retried with [`BACKOFF`]; the [`MAX_ATTEMPTS`]-th failure *parks*
//! the row (`parked_at` set): it is no longer retried, [`Outbox::pending`] no longer counts
//! it and [`Outbox::parked`] does, and the worker logs it at error level. An operator
//! un-parks rows with one `UPDATE` (docs/operations.md).

use crate::backoff::Backoff;
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// Rows claimed per transaction.
const BATCH: i64 = 32;

/// How long a failed row waits before [`Outbox::process_due`] tries it again: 100 ms after the
/// first failure, doubling up to 51.2 s (counted by the row's `attempts`).
pub const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(51_200));

/// Failed attempts after which a row is parked instead of retried. With [`BACKOFF`] that is
/// about 18 minutes after the first failure: a broker or provider outage shorter than that
/// needs nobody, and a message no retry will ever deliver stops costing work.
pub const MAX_ATTEMPTS: i32 = 30;

/// One pending event as the worker sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Message {
    /// Outbox row id (order of insertion).
    pub id: i64,
    /// Stable identity of the event; consumers deduplicate on it.
    pub event_id: Uuid,
    /// What kind of event, e.g. `notification.requested`.
    pub topic: String,
    /// The event itself.
    pub payload: serde_json::Value,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// The `traceparent` of the transaction that wrote it, when that ran in a trace.
    pub trace_context: Option<String>,
}

/// Where the worker sends each event.
#[async_trait]
pub trait Dispatch: Send + Sync + 'static {
    /// Deliver one event; an error leaves it pending for a later attempt.
    async fn dispatch(&self, message: &Message) -> Result<()>;
}

/// Create `<schema>.outbox` and its index unless they exist; the schema must exist.
///
/// Idempotent, so every start-up may call it. It is not one of the schema's tracked
/// migrations: a change to the table is written so that it, too, can run again, and so
/// that it upgrades a table an earlier version created (`ADD COLUMN IF NOT EXISTS`).
///
/// On a table that is already up to date it takes no lock on the table at all: `ALTER
/// TABLE` and `CREATE INDEX` lock it (exclusively, or against writers) before their
/// `IF NOT EXISTS` finds nothing to do, so a start-up would wait behind a running worker's
/// claim while every writer queued behind the start-up. Each runs only when its object is
/// missing.
pub async fn create_table(pool: &PgPool, schema: &'static str) -> Result<(), sqlx::Error> {
    assert!(is_identifier(schema), "outbox schema must be a plain identifier");
    let mut tx = pool.begin().await?;
    // Two processes starting on one database would otherwise race on `IF NOT EXISTS`.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("{schema}.outbox"))
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {schema}.outbox (
             id              BIGSERIAL PRIMARY KEY,
             event_id        UUID NOT NULL UNIQUE,
             topic           TEXT NOT NULL,
             payload         JSONB NOT NULL,
             created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
             attempts        INT NOT NULL DEFAULT 0,
             next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
             last_error      TEXT,
             published_at    TIMESTAMPTZ,
             parked_at       TIMESTAMPTZ,
             trace_context   TEXT
         );
         DO $upgrade$ BEGIN
             -- A table from before parking.
             IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_schema = '{schema}' AND table_name = 'outbox' AND column_name = 'parked_at')
             THEN
                 ALTER TABLE {schema}.outbox ADD COLUMN IF NOT EXISTS parked_at TIMESTAMPTZ;
             END IF;
             -- A table from before trace context.
             IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_schema = '{schema}' AND table_name = 'outbox' AND column_name = 'trace_context')
             THEN
                 ALTER TABLE {schema}.outbox ADD COLUMN IF NOT EXISTS trace_context TEXT;
             END IF;
             IF to_regclass('{schema}.{schema}_outbox_pending') IS NULL THEN
                 CREATE INDEX IF NOT EXISTS {schema}_outbox_pending ON {schema}.outbox (next_attempt_at)
                     WHERE published_at IS NULL;
             END IF;
         END $upgrade$;"
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Write an event into `<schema>.outbox` on the caller's connection (inside its transaction),
/// with the current span's trace context.
pub async fn enqueue(
    conn: &mut PgConnection,
    schema: &'static str,
    event_id: Uuid,
    topic: &str,
    payload: &impl Serialize,
) -> Result<()> {
    debug_assert!(is_identifier(schema));
    let payload = serde_json::to_value(payload).map_err(Error::internal)?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {schema}.outbox (event_id, topic, payload, trace_context) VALUES ($1, $2, $3, $4)
         ON CONFLICT (event_id) DO NOTHING"
    )))
    .bind(event_id)
    .bind(topic)
    .bind(payload)
    .bind(crate::trace::current_traceparent())
    .execute(&mut *conn)
    .instrument(crate::trace::db_span("INSERT", "outbox"))
    .await?;
    sqlx::query("SELECT pg_notify($1, '')").bind(channel(schema)).execute(&mut *conn).await?;
    Ok(())
}

// Schema names are constants of the domain crates, never input; the check keeps it so.
fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

fn channel(schema: &str) -> String {
    format!("{schema}_outbox")
}

/// A worker over one schema's outbox table.
#[derive(Clone)]
pub struct Outbox {
    pool: PgPool,
    schema: &'static str,
}

impl Outbox {
    /// The outbox in `<schema>.outbox` of `pool`'s database.
    pub fn new(pool: PgPool, schema: &'static str) -> Self {
        assert!(is_identifier(schema), "outbox schema must be a plain identifier");
        Self { pool, schema }
    }

    /// Deliver the events whose retry time has come; returns how many were delivered.
    pub async fn process_due(&self, dispatch: &dyn Dispatch) -> Result<usize> {
        self.process(dispatch, false).await
    }

    /// Deliver every pending event now, ignoring back-off: the "process what is pending now"
    /// call that tests and the harness use instead of sleeping. Rows another worker holds are
    /// waited for rather than skipped, so when it returns nothing is in flight.
    pub async fn process_all_pending(&self, dispatch: &dyn Dispatch) -> Result<usize> {
        self.process(dispatch, true).await
    }

    /// Events not yet delivered and still retried (parked ones are not counted).
    pub async fn pending(&self) -> Result<i64> {
        self.count("published_at IS NULL AND parked_at IS NULL").await
    }

    /// Events parked after [`MAX_ATTEMPTS`] failures, waiting for an operator.
    pub async fn parked(&self) -> Result<i64> {
        self.count("published_at IS NULL AND parked_at IS NOT NULL").await
    }

    async fn count(&self, condition: &'static str) -> Result<i64> {
        let n =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {}.outbox WHERE {condition}", self.schema)))
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    async fn process(&self, dispatch: &dyn Dispatch, now: bool) -> Result<usize> {
        let table = format!("{}.outbox", self.schema);
        let lock = if now { "FOR UPDATE" } else { "FOR UPDATE SKIP LOCKED" };
        let mut delivered = 0;
        let mut failed: Vec<i64> = Vec::new();
        loop {
            let mut tx = self.pool.begin().await?;
            let batch: Vec<Message> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT id, event_id, topic, payload, attempts, trace_context FROM {table}
                 WHERE published_at IS NULL AND parked_at IS NULL AND ($1 OR next_attempt_at <= now())
                   AND NOT (id = ANY($2))
                 ORDER BY id LIMIT $3 {lock}"
            )))
            .bind(now)
            .bind(&failed)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            if batch.is_empty() {
                tx.commit().await?;
                return Ok(delivered);
            }
            for message in &batch {
                match deliver(dispatch, message).await {
                    Ok(()) => {
                        sqlx::query(AssertSqlSafe(format!(
                            "UPDATE {table} SET published_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1"
                        )))
                        .bind(message.id)
                        .execute(&mut *tx)
                        .await?;
                        delivered += 1;
                    }
                    Err(e) => {
                        // This failure is the row's `attempts + 1`-th.
                        let attempts = message.attempts.saturating_add(1);
                        let park = attempts >= MAX_ATTEMPTS;
                        if park {
                            tracing::error!(
                                outbox = %table, event_id = %message.event_id, topic = %message.topic, attempts,
                                error = %e, "outbox event parked: no more retries until an operator un-parks it"
                            );
                        } else {
                            tracing::warn!(event_id = %message.event_id, topic = %message.topic, attempts, error = %e, "outbox delivery failed");
                        }
                        let wait = BACKOFF.delay(u32::try_from(attempts).unwrap_or(1));
                        sqlx::query(AssertSqlSafe(format!(
                            "UPDATE {table} SET attempts = attempts + 1, last_error = $2,
                             next_attempt_at = now() + make_interval(secs => $3::float8),
                             parked_at = CASE WHEN $4 THEN now() END WHERE id = $1"
                        )))
                        .bind(message.id)
                        .bind(e.to_string())
                        .bind(wait.as_secs_f64())
                        .bind(park)
                        .execute(&mut *tx)
                        .await?;
                        failed.push(message.id);
                    }
                }
            }
            tx.commit().await?;
        }
    }

    /// Deliver events as they arrive until `stop` is cancelled: woken by `pg_notify` at each
    /// commit, with a poll every `poll` as a safety net (and for retries after back-off).
    pub async fn run(self, dispatch: Arc<dyn Dispatch>, poll: Duration, stop: CancellationToken) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(&channel(self.schema)).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "outbox listener connect failed; polling only");
                None
            }
        };
        loop {
            if let Err(e) = self.process_due(&*dispatch).await {
                tracing::warn!(schema = self.schema, error = %e, "outbox pass failed");
            }
            let woken = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                r = woken => if let Err(e) = r {
                    tracing::warn!(error = %e, "outbox listener lost; polling only");
                    listener = None;
                },
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// Hand one row to `dispatch` inside an `outbox.deliver` span that continues the trace of
/// the transaction that wrote it (a child: the delivery is a step of that request).
async fn deliver(dispatch: &dyn Dispatch, message: &Message) -> Result<()> {
    let span = tracing::info_span!(
        "outbox.deliver",
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
        event_id = %message.event_id,
        topic = %message.topic,
        attempt = message.attempts.saturating_add(1),
    );
    crate::trace::continue_from(&span, message.trace_context.as_deref());
    let delivered = dispatch.dispatch(message).instrument(span.clone()).await;
    if let Err(e) = &delivered {
        crate::trace::record_error(&span, &e.code);
    }
    delivered
}

/// An outbox and where its events go: the monolith's worker (in-process delivery) and the
/// microservices' relay (broker publish) are each one of these.
#[derive(Clone)]
pub struct Worker {
    outbox: Outbox,
    dispatch: Arc<dyn Dispatch>,
}

impl Worker {
    /// Deliver `outbox`'s events through `dispatch`.
    pub fn new(outbox: Outbox, dispatch: Arc<dyn Dispatch>) -> Self {
        Self { outbox, dispatch }
    }

    /// Deliver everything pending now, ignoring back-off (see [`Outbox::process_all_pending`]).
    pub async fn process_pending(&self) -> Result<usize> {
        self.outbox.process_all_pending(&*self.dispatch).await
    }

    /// Events not yet delivered and still retried.
    pub async fn pending(&self) -> Result<i64> {
        self.outbox.pending().await
    }

    /// Events parked after [`MAX_ATTEMPTS`] failures (see [`Outbox::parked`]).
    pub async fn parked(&self) -> Result<i64> {
        self.outbox.parked().await
    }

    /// Run until `stop` is cancelled (see [`Outbox::run`]).
    pub fn spawn(&self, poll: Duration, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.outbox.clone().run(self.dispatch.clone(), poll, stop))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/operations.md and [`MAX_ATTEMPTS`]'s doc state how long a failing row is
    /// retried before it is parked; this keeps the figure true to the two constants.
    #[test]
    fn a_failing_row_is_retried_for_about_18_minutes_before_it_is_parked() {
        let failures_that_wait = 1..u32::try_from(MAX_ATTEMPTS).unwrap();
        let retried: Duration = failures_that_wait.map(|n| BACKOFF.delay(n)).sum();
        assert_eq!(retried, Duration::from_millis(1_075_100));
        assert_eq!(retried.as_secs() / 60, 17, "17 min 55 s, about 18 minutes");
    }
}
