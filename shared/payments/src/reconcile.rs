//! The reconciler: settles the payments a purchase left in doubt, the same in both builds.
//!
//! A purchase can stop between the charge and the record: the provider's answer was lost,
//! the process died, recording failed. The row stays `pending` (or `succeeded` without its
//! receipt in `sync` mode) and only a retry with the same `Idempotency-Key` would finish it,
//! if the client ever sends one. Every pass, the reconciler takes the rows no flow has
//! touched for longer than its bound, asks the provider by the charge's idempotency key
//! (the payment id, as [`PaymentProvider::charge`](crate::PaymentProvider::charge) sends
//! it), and then
//! - records a charge the provider holds exactly as the purchase does (`succeeded`, the
//!   receipt in the outbox in `async` mode, delivered in `sync` mode);
//! - marks `failed` a payment the provider holds no charge for;
//! - leaves it for the next pass when the provider or a dependency does not answer; a
//!   provider that does not answer ends the pass, rather than cost a timeout per payment.
//!
//! **Why it cannot overtake a live purchase.** `updated_at` is when a flow last began work
//! on the row (the first attempt, or a retry resuming it), and the bound is required to
//! exceed the provider call's timeout (`ReconcileArgs::check`), so the charge of a flow
//! still running has answered or timed out before the reconciler looks. Should one outlast
//! it anyway, nothing breaks: a row is changed only by a conditional update (`failed` only
//! from `pending` and only while still untouched, `succeeded` only once, receipts keyed by
//! the payment), and a charge recorded after a `failed` mark turns it `succeeded`.
//! **Two reconcilers at once** (two payments-service replicas) meet the same conditional
//! updates: one wins each row, the other changes nothing; a receipt they both send in
//! `sync` mode is delivered once (its event id is derived from the payment).

use crate::domain::PaymentRow;
use crate::purchase::SELECT_PAYMENT;
use crate::{PaymentStatus, PurchaseService};
use archlab_kernel::{Money, Result};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// Rows read per query; a pass pages through every candidate.
const PAGE: i64 = 100;

/// Settles payments left in doubt (see the module's documentation).
#[derive(Clone)]
pub struct Reconciler {
    purchases: Arc<PurchaseService>,
    after: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Charged at the provider: recorded `succeeded`, with the receipt.
    pub succeeded: usize,
    /// No charge at the provider: marked `failed`.
    pub failed: usize,
    /// Already `succeeded`; the receipt it lacked is now sent or queued.
    pub notified: usize,
    /// Left for the next pass (provider or dependency unavailable, or settled by someone else
    /// meanwhile). The payments a pass did not reach after the provider failed are not
    /// counted.
    pub left: usize,
}

/// What became of one payment.
enum Outcome {
    Succeeded,
    Failed,
    Notified,
    Left,
    /// Left, and the provider did not answer: the pass ends here.
    ProviderDown,
}

impl Reconciler {
    /// A reconciler over `purchases`' payments, taking those untouched for longer than `after`.
    pub fn new(purchases: Arc<PurchaseService>, after: Duration) -> Self {
        Self { purchases, after }
    }

    /// One pass over every payment now in doubt (the tests' "process what is pending now").
    pub async fn reconcile_now(&self) -> Result<Reconciled> {
        let mut done = Reconciled::default();
        let mut cursor = (DateTime::<Utc>::UNIX_EPOCH, Uuid::nil());
        'pass: loop {
            let page = self.unsettled(cursor).await?;
            for row in &page {
                cursor = (row.updated_at, row.payment_id);
                match self.settle(row).await {
                    Outcome::Succeeded => done.succeeded += 1,
                    Outcome::Failed => done.failed += 1,
                    Outcome::Notified => done.notified += 1,
                    Outcome::Left => done.left += 1,
                    Outcome::ProviderDown => {
                        done.left += 1;
                        break 'pass;
                    }
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        if done != Reconciled::default() {
            tracing::info!(?done, "reconciled payments left in doubt");
        }
        Ok(done)
    }

    /// Run a pass at once and then every `interval`, until `stop` is cancelled.
    pub fn spawn(self, interval: Duration, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.reconcile_now().await {
                    tracing::warn!(error = %e, "reconciliation pass failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        })
    }

    /// The next page of unsettled rows untouched for longer than the bound, after `cursor`
    /// in (updated_at, payment_id) order.
    async fn unsettled(&self, cursor: (DateTime<Utc>, Uuid)) -> Result<Vec<PaymentRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PAYMENT}
             WHERE (status = $1 OR (status = $2 AND notified_at IS NULL))
               AND updated_at < now() - make_interval(secs => $3)
               AND (updated_at, payment_id) > ($4, $5)
             ORDER BY updated_at, payment_id
             LIMIT $6"
        )))
        .bind(PaymentStatus::Pending.as_str())
        .bind(PaymentStatus::Succeeded.as_str())
        .bind(self.after.as_secs_f64())
        .bind(cursor.0)
        .bind(cursor.1)
        .bind(PAGE)
        .fetch_all(&self.purchases.pool)
        .await?)
    }

    /// Settle one payment; never fails the pass, only leaves the payment for the next one.
    async fn settle(&self, row: &PaymentRow) -> Outcome {
        let span =
            tracing::info_span!("payments.reconcile", payment_id = %row.payment_id, status = row.status.as_str());
        match self.try_settle(row).instrument(span.clone()).await {
            Ok(outcome) => outcome,
            Err(e) => {
                span.in_scope(
                    || tracing::warn!(code = %e.code, error = %e.message, "left in doubt until the next pass"),
                );
                Outcome::Left
            }
        }
    }

    async fn try_settle(&self, row: &PaymentRow) -> Result<Outcome> {
        let purchases = &self.purchases;
        let money = Money::parse(row.amount_cents, &row.currency)?;
        if row.status == PaymentStatus::Succeeded {
            let user = purchases.users.get_profile(row.user_id).await?;
            purchases.notify(row, &user, money).await?;
            return Ok(Outcome::Notified);
        }
        let found = match purchases.provider.find_charge(row.payment_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(code = %e.code, error = %e.message, "the provider did not answer; the pass ends");
                return Ok(Outcome::ProviderDown);
            }
        };
        match found {
            Some(charge) => {
                let user = purchases.users.get_profile(row.user_id).await?;
                let (recorded, by_us) = purchases.record(row, &charge.charge_id, &user, money).await?;
                if recorded.notified_at.is_none() {
                    purchases.notify(&recorded, &user, money).await?;
                }
                Ok(if by_us { Outcome::Succeeded } else { Outcome::Left })
            }
            None => self.fail(row.payment_id).await,
        }
    }

    /// Mark `failed`, only if still `pending` and still untouched for the bound: a retry
    /// that began meanwhile keeps the payment.
    async fn fail(&self, payment_id: Uuid) -> Result<Outcome> {
        let marked = sqlx::query(
            "UPDATE payments.payments SET status = $2, updated_at = now()
             WHERE payment_id = $1 AND status = $3 AND updated_at < now() - make_interval(secs => $4)",
        )
        .bind(payment_id)
        .bind(PaymentStatus::Failed.as_str())
        .bind(PaymentStatus::Pending.as_str())
        .bind(self.after.as_secs_f64())
        .execute(&self.purchases.pool)
        .await?
        .rows_affected();
        Ok(if marked == 1 { Outcome::Failed } else { Outcome::Left })
    }
}
