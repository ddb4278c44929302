//! Delivering notifications, exactly once per event id, and listing them.

use crate::{EmailApi, NotificationEvent, NotificationsApi, OutgoingEmail, faults};
use archlab_kernel::{Error, Faults, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

/// A notification as its owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notification {
    /// Its id.
    pub notification_id: Uuid,
    /// `welcome` or `receipt`.
    #[schema(schema_with = crate::event::kind_schema)]
    pub kind: String,
    /// Subject line.
    pub subject: String,
    /// Text.
    pub body: String,
    /// The payment a receipt is for.
    pub payment_id: Option<Uuid>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// The outcome of [`NotificationsApi::deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The notification the event produced (the first time).
    pub notification_id: Uuid,
    /// True when the event had been delivered before and nothing new happened.
    pub duplicate: bool,
}

/// Notifications over the `notifications` schema and an email provider.
#[derive(Clone)]
pub struct NotificationsService {
    pool: PgPool,
    email: Arc<dyn EmailApi>,
    faults: Faults,
}

impl NotificationsService {
    /// A service over `pool` sending through `email`, with fault points [`faults::DELIVER`]
    /// and [`faults::RECORD`].
    pub fn new(pool: PgPool, email: Arc<dyn EmailApi>, faults: Faults) -> Self {
        Self { pool, email, faults }
    }

    /// A user's notifications, newest first.
    #[tracing::instrument(level = "debug", name = "notifications.list", skip_all, fields(%user_id), err)]
    pub async fn list(&self, user_id: Uuid) -> Result<Vec<Notification>> {
        Ok(sqlx::query_as(
            "SELECT notification_id, kind, subject, body, payment_id, created_at FROM notifications.notifications
             WHERE user_id = $1 ORDER BY created_at DESC, notification_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl NotificationsService {
    /// The notification already recorded for `event_id`, if any (one short query).
    async fn recorded(&self, event_id: Uuid) -> Result<Option<Uuid>> {
        Ok(sqlx::query_scalar("SELECT notification_id FROM notifications.notifications WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Record the notification and its inbox row in one short transaction; the first
    /// delivery to commit wins, and a later one answers with the winner's notification.
    async fn record(&self, event: &NotificationEvent, email_id: Option<String>) -> Result<Delivery> {
        let mut tx = self.pool.begin().await?;
        // A concurrent delivery of the same event waits here on the primary key until the
        // first one commits, and then finds it taken.
        let first =
            sqlx::query("INSERT INTO notifications.processed_messages (event_id) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(event.event_id)
                .execute(&mut *tx)
                .instrument(archlab_kernel::trace::db_span("INSERT", "notifications.processed_messages"))
                .await?
                .rows_affected()
                == 1;
        if !first {
            tx.rollback().await?;
            let notification_id = self.recorded(event.event_id).await?.ok_or_else(|| {
                Error::internal(format!("event {} is processed but has no notification", event.event_id))
            })?;
            return Ok(Delivery { notification_id, duplicate: true });
        }
        let (subject, body) = event.render();
        let notification_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO notifications.notifications (notification_id, event_id, user_id, kind, subject, body, payment_id, email_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(notification_id)
        .bind(event.event_id)
        .bind(event.user_id)
        .bind(event.kind_name())
        .bind(&subject)
        .bind(&body)
        .bind(event.payment_id())
        .bind(email_id)
        .execute(&mut *tx)
        .instrument(archlab_kernel::trace::db_span("INSERT", "notifications.notifications"))
        .await?;
        tx.commit().await?;
        Ok(Delivery { notification_id, duplicate: false })
    }
}

#[async_trait]
impl NotificationsApi for NotificationsService {
    /// Three steps, none of which holds a database connection while the provider works:
    ///
    /// 1. a short read: an event already recorded answers `duplicate` without any email;
    /// 2. the email, outside any transaction, keyed by the event id: however many times
    ///    this step runs for one event (a concurrent delivery, a redelivery after a crash
    ///    between steps 2 and 3), the provider sends one email and answers each time with
    ///    the same email id;
    /// 3. a short transaction recording the notification and its inbox row together.
    ///
    /// A failure before step 3 commits records nothing, so the redelivery starts again at
    /// step 1 and neither loses nor duplicates the email. A slow provider therefore costs
    /// the caller time but never holds one of the pool's connections.
    #[tracing::instrument(level = "debug", name = "notifications.deliver", skip_all, fields(event_id = %event.event_id, kind = event.kind_name()), err)]
    async fn deliver(&self, event: NotificationEvent) -> Result<Delivery> {
        self.faults.check(faults::DELIVER).await?;
        if let Some(notification_id) = self.recorded(event.event_id).await? {
            return Ok(Delivery { notification_id, duplicate: true });
        }
        let email_id = match &event.email_to {
            Some(to) => {
                let (subject, body) = event.render();
                let email =
                    OutgoingEmail { idempotency_key: event.event_id.to_string(), to: to.clone(), subject, body };
                Some(self.email.send(&email).await?)
            }
            None => None,
        };
        self.faults.check(faults::RECORD).await?;
        self.record(&event, email_id).await
    }
}
