//! The purchase flow: session → user → charge → record → notify.
//!
//! Every step is idempotent, so a retry with the same `Idempotency-Key` resumes where the
//! last attempt stopped instead of starting over:
//! - the payment row is written `pending` before the charge, once per (user, key);
//! - the provider is charged with the payment id as its idempotency key (one charge, ever);
//! - recording flips `pending` → `succeeded` once;
//! - the receipt's event id is derived from the payment id, and delivery is idempotent.
//!
//! From the row on, the flow (begin, charge, record, receipt) runs in a task of its own, so
//! it finishes, or stops at a recorded state, even when the caller hangs up. What it leaves
//! in doubt (a charge whose answer was lost) the reconciler settles (`reconcile.rs`).

use crate::domain::{PaymentRow, fingerprint};
use crate::{IdempotencyKey, Payment, PaymentProvider, PaymentStatus, PurchaseRequest, codes, faults};
use archlab_auth::AuthApi;
use archlab_kernel::{Error, ErrorKind, Faults, Money, NotificationMode, Result, outbox};
use archlab_notifications::{NotificationEvent, NotificationsApi, TOPIC};
use archlab_users::{Profile, UserStatus, UsersApi};
use sqlx::PgPool;
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

/// The columns of a [`PaymentRow`].
macro_rules! payment_columns {
    () => {
        "payment_id, user_id, request_fingerprint, amount_cents, currency, status, notified_at, created_at, updated_at"
    };
}
pub(crate) const SELECT_PAYMENT: &str = concat!("SELECT ", payment_columns!(), " FROM payments.payments");

/// The purchase flow and the payment records, over the `payments` schema.
#[derive(Clone)]
pub struct PurchaseService {
    pub(crate) pool: PgPool,
    auth: Arc<dyn AuthApi>,
    pub(crate) users: Arc<dyn UsersApi>,
    pub(crate) provider: Arc<dyn PaymentProvider>,
    notifications: Arc<dyn NotificationsApi>,
    mode: NotificationMode,
    faults: Faults,
}

/// The ports a [`PurchaseService`] calls; each build binds them its own way.
pub struct PurchasePorts {
    /// Session check.
    pub auth: Arc<dyn AuthApi>,
    /// User check.
    pub users: Arc<dyn UsersApi>,
    /// The charge.
    pub provider: Arc<dyn PaymentProvider>,
    /// Receipts in `sync` mode.
    pub notifications: Arc<dyn NotificationsApi>,
}

impl PurchaseService {
    /// A purchase flow over `pool` calling `ports`, with fault point [`faults::RECORD`].
    pub fn new(pool: PgPool, ports: PurchasePorts, mode: NotificationMode, faults: Faults) -> Self {
        let PurchasePorts { auth, users, provider, notifications } = ports;
        Self { pool, auth, users, provider, notifications, mode, faults }
    }

    /// Buy: the whole seed scenario for one request.
    #[tracing::instrument(level = "debug", name = "payments.purchase", skip_all, fields(mode = %self.mode), err)]
    pub async fn purchase(&self, token: &str, key: &IdempotencyKey, request: &PurchaseRequest) -> Result<Payment> {
        let money = request.money()?;
        let session = self.auth.verify_session(token).await?;
        let user = self.users.get_profile(session.user_id).await?;
        if user.status != UserStatus::Active {
            return Err(Error::new(
                ErrorKind::Unprocessable,
                codes::USER_INACTIVE,
                "this account may not make purchases",
            ));
        }
        // From the payment row on, the flow has effects (the row, the charge), so it runs in a
        // task of its own: dropping this future (the caller hung up, the server let go of the
        // handler) drops only the handle, never the task. A caller still listening gets the
        // task's answer or error through the handle; its spans stay children of this one.
        let flow = self.clone();
        let key = key.clone();
        let rest = async move {
            let payment = flow.begin(user.user_id, &key, &money).await?;
            let payment_id = payment.payment_id;
            let settled = flow.settle(payment, &user, money).await;
            if let Err(e) = &settled {
                tracing::info!(%payment_id, code = %e.code, "purchase stopped short; a retry or the reconciler finishes it");
            }
            settled
        };
        tokio::spawn(rest.instrument(tracing::Span::current()))
            .await
            .map_err(|e| Error::internal(format!("the purchase task did not finish: {e}")))?
    }

    /// Charge, record and send the receipt of a begun payment, each step only if still due.
    async fn settle(&self, mut payment: PaymentRow, user: &Profile, money: Money) -> Result<Payment> {
        if payment.status == PaymentStatus::Pending {
            let charge = self.provider.charge(payment.payment_id, money).await?;
            (payment, _) = self.record(&payment, &charge.charge_id, user, money).await?;
        }
        if payment.notified_at.is_none() {
            self.notify(&payment, user, money).await?;
        }
        Ok(payment.view())
    }

    /// Insert the pending payment for (user, key), or find the one an earlier attempt wrote.
    /// Resuming an unsettled one marks it as worked on now (the reconciler leaves it alone
    /// for its bound) and turns a `failed` one `pending` again, to try its charge once more.
    async fn begin(&self, user_id: Uuid, key: &IdempotencyKey, money: &Money) -> Result<PaymentRow> {
        let fp = fingerprint(money);
        let inserted: Option<PaymentRow> = sqlx::query_as(concat!(
            "INSERT INTO payments.payments (payment_id, user_id, idempotency_key, request_fingerprint, amount_cents, currency, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, idempotency_key) DO NOTHING
             RETURNING ",
            payment_columns!()
        ))
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(key.as_str())
        .bind(&fp)
        .bind(money.amount_cents)
        .bind(money.currency.code())
        .bind(PaymentStatus::Pending.as_str())
        .fetch_optional(&self.pool)
        .instrument(archlab_kernel::trace::db_span("INSERT", "payments.payments"))
        .await?;
        if let Some(row) = inserted {
            return Ok(row);
        }
        let row: PaymentRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PAYMENT} WHERE user_id = $1 AND idempotency_key = $2"
        )))
        .bind(user_id)
        .bind(key.as_str())
        .fetch_one(&self.pool)
        .instrument(archlab_kernel::trace::db_span("SELECT", "payments.payments"))
        .await?;
        if row.request_fingerprint != fp {
            return Err(Error::new(
                ErrorKind::Unprocessable,
                codes::IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used with a different request body",
            ));
        }
        if row.status == PaymentStatus::Succeeded {
            return Ok(row);
        }
        let resumed: Option<PaymentRow> = sqlx::query_as(concat!(
            "UPDATE payments.payments SET status = $2, updated_at = now()
             WHERE payment_id = $1 AND status <> $3
             RETURNING ",
            payment_columns!()
        ))
        .bind(row.payment_id)
        .bind(PaymentStatus::Pending.as_str())
        .bind(PaymentStatus::Succeeded.as_str())
        .fetch_optional(&self.pool)
        .instrument(archlab_kernel::trace::db_span("UPDATE", "payments.payments"))
        .await?;
        // None: recorded as succeeded in between, by another attempt or the reconciler.
        match resumed {
            Some(row) => Ok(row),
            None => self.load(row.payment_id).await,
        }
    }

    /// The payment row `payment_id`.
    async fn load(&self, payment_id: Uuid) -> Result<PaymentRow> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PAYMENT} WHERE payment_id = $1")))
            .bind(payment_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Mark the payment charged; in `async` mode the receipt enters the outbox in the same
    /// transaction, so it exists if and only if the payment is recorded. A charge the
    /// provider holds wins over a `failed` mark (the reconciler asked before it landed).
    /// Returns the row, and whether this call recorded it (not an attempt racing it).
    #[tracing::instrument(level = "debug", name = "payments.record", skip_all, fields(payment_id = %payment.payment_id), err)]
    pub(crate) async fn record(
        &self,
        payment: &PaymentRow,
        charge_id: &str,
        user: &Profile,
        money: Money,
    ) -> Result<(PaymentRow, bool)> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE payments.payments SET status = $3, provider_charge_id = $2, updated_at = now()
             WHERE payment_id = $1 AND status <> $3",
        )
        .bind(payment.payment_id)
        .bind(charge_id)
        .bind(PaymentStatus::Succeeded.as_str())
        .execute(&mut *tx)
        .instrument(archlab_kernel::trace::db_span("UPDATE", "payments.payments"))
        .await?
        .rows_affected();
        if updated == 1 && self.mode == NotificationMode::Async {
            self.enqueue_receipt(&mut tx, payment, user, money).await?;
        }
        self.faults.check(faults::RECORD).await?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PAYMENT} WHERE payment_id = $1")))
            .bind(payment.payment_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((row, updated == 1))
    }

    async fn enqueue_receipt(
        &self,
        tx: &mut sqlx::PgConnection,
        payment: &PaymentRow,
        user: &Profile,
        money: Money,
    ) -> Result<()> {
        let event = receipt(payment, user, money);
        outbox::enqueue(&mut *tx, crate::SCHEMA, event.event_id, TOPIC, &event).await?;
        sqlx::query("UPDATE payments.payments SET notified_at = now() WHERE payment_id = $1")
            .bind(payment.payment_id)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Send the receipt of a recorded payment that has none yet.
    pub(crate) async fn notify(&self, payment: &PaymentRow, user: &Profile, money: Money) -> Result<()> {
        match self.mode {
            NotificationMode::Sync => {
                self.notifications.deliver(receipt(payment, user, money)).await.map_err(|e| {
                    Error::unavailable(
                        "notifications",
                        format!(
                            "{}; the payment is recorded, retry with the same Idempotency-Key to finish",
                            e.message
                        ),
                    )
                })?;
                sqlx::query("UPDATE payments.payments SET notified_at = now() WHERE payment_id = $1")
                    .bind(payment.payment_id)
                    .execute(&self.pool)
                    .await?;
            }
            NotificationMode::Async => {
                // Only reached when the payment was recorded in `sync` mode and the restart
                // switched modes: hand the receipt to the outbox now.
                let mut tx = self.pool.begin().await?;
                self.enqueue_receipt(&mut tx, payment, user, money).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The caller's payments, newest first.
    #[tracing::instrument(level = "debug", name = "payments.list", skip_all, fields(%user_id), err)]
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<Payment>> {
        let rows: Vec<PaymentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT_PAYMENT} WHERE user_id = $1 ORDER BY created_at DESC, payment_id"
        )))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(PaymentRow::view).collect())
    }

    /// One of the caller's payments; another user's is `not_found`.
    #[tracing::instrument(level = "debug", name = "payments.get", skip_all, fields(%user_id, %payment_id), err)]
    pub async fn get(&self, user_id: Uuid, payment_id: Uuid) -> Result<Payment> {
        let row: Option<PaymentRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT_PAYMENT} WHERE payment_id = $1 AND user_id = $2")))
                .bind(payment_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| r.view()).ok_or_else(|| Error::not_found("payment"))
    }
}

pub(crate) fn receipt(payment: &PaymentRow, user: &Profile, money: Money) -> NotificationEvent {
    let email_to = user.preferences.email_receipts.then(|| user.email.clone());
    NotificationEvent::receipt(payment.user_id, payment.payment_id, money, email_to)
}
