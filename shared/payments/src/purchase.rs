//! The purchase flow: session → user → charge → record → notify.
//!
//! Every step is idempotent, so a retry with the same `Idempotency-Key` resumes where the
//! last attempt stopped instead of starting over:
//! - the payment row is written `pending` before the charge, once per (user, key);
//! - the provider is charged with the payment id as its idempotency key (one charge, ever);
//! - recording flips `pending` → `succeeded` once;
//! - the receipt's event id is derived from the payment id, and delivery is idempotent.

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

const SELECT_PAYMENT: &str =
    "SELECT payment_id, user_id, request_fingerprint, amount_cents, currency, status, notified_at, created_at
     FROM payments.payments";

/// The purchase flow and the payment records, over the `payments` schema.
#[derive(Clone)]
pub struct PurchaseService {
    pool: PgPool,
    auth: Arc<dyn AuthApi>,
    users: Arc<dyn UsersApi>,
    provider: Arc<dyn PaymentProvider>,
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
        let mut payment = self.begin(user.user_id, key, &money).await?;
        if payment.status == PaymentStatus::Pending {
            let charge = self.provider.charge(payment.payment_id, money).await?;
            payment = self.record(&payment, &charge.charge_id, &user, money).await?;
        }
        if payment.notified_at.is_none() {
            self.notify(&payment, &user, money).await?;
        }
        Ok(payment.view())
    }

    /// Insert the pending payment for (user, key), or find the one an earlier attempt wrote.
    async fn begin(&self, user_id: Uuid, key: &IdempotencyKey, money: &Money) -> Result<PaymentRow> {
        let fp = fingerprint(money);
        sqlx::query(
            "INSERT INTO payments.payments (payment_id, user_id, idempotency_key, request_fingerprint, amount_cents, currency, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, idempotency_key) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(user_id)
        .bind(key.as_str())
        .bind(&fp)
        .bind(money.amount_cents)
        .bind(money.currency.code())
        .bind(PaymentStatus::Pending.as_str())
        .execute(&self.pool)
        .instrument(archlab_kernel::trace::db_span("INSERT", "payments.payments"))
        .await?;
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
        Ok(row)
    }

    /// Mark the payment charged; in `async` mode the receipt enters the outbox in the same
    /// transaction, so it exists if and only if the payment is recorded.
    #[tracing::instrument(level = "debug", name = "payments.record", skip_all, fields(payment_id = %payment.payment_id), err)]
    async fn record(&self, payment: &PaymentRow, charge_id: &str, user: &Profile, money: Money) -> Result<PaymentRow> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE payments.payments SET status = $3, provider_charge_id = $2, updated_at = now()
             WHERE payment_id = $1 AND status = $4",
        )
        .bind(payment.payment_id)
        .bind(charge_id)
        .bind(PaymentStatus::Succeeded.as_str())
        .bind(PaymentStatus::Pending.as_str())
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
        Ok(row)
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
    async fn notify(&self, payment: &PaymentRow, user: &Profile, money: Money) -> Result<()> {
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

fn receipt(payment: &PaymentRow, user: &Profile, money: Money) -> NotificationEvent {
    let email_to = user.preferences.email_receipts.then(|| user.email.clone());
    NotificationEvent::receipt(payment.user_id, payment.payment_id, money, email_to)
}
