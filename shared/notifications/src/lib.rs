//! The notifications domain: welcome messages and purchase receipts, in-app and by email.
//!
//! Read top to bottom: [`NotificationEvent`] (what producers ask for; it travels in-process,
//! through an outbox, or through RabbitMQ), [`NotificationsApi`] (the port), the service
//! ([`NotificationsService::deliver`] is idempotent by event id), [`EmailApi`] with its
//! extsim adapter (the only third party this domain calls), and [`http::router`].

mod email;
mod event;
pub mod http;
mod service;

pub use email::{EmailApi, ExtsimEmail, OutgoingEmail};
pub use event::{EventKind, KIND_RECEIPT, KIND_WELCOME, NotificationEvent, TOPIC};
pub use service::{Delivery, Notification, NotificationsService};

use archlab_kernel::Result;
use async_trait::async_trait;

/// The schema that holds this domain's tables.
pub const SCHEMA: &str = "notifications";

/// Notifications' fault points (see `archlab_kernel::Faults`).
pub mod faults {
    use archlab_kernel::faults::points;
    /// Fails every delivery before anything is recorded or sent.
    pub const DELIVER: &str = points::NOTIFICATIONS_DELIVER.name;
    /// Fails a delivery after the email went out and before anything is recorded: what a
    /// crash between the provider call and the commit leaves behind.
    pub const RECORD: &str = points::NOTIFICATIONS_RECORD.name;
    /// Every fault point of this domain: what a process hosting it reaches.
    pub const ALL: &[&str] = &[DELIVER, RECORD];
}

/// What other domains may ask of notifications.
#[async_trait]
pub trait NotificationsApi: Send + Sync + 'static {
    /// Record and send the notification for `event`; delivering the same event again is a
    /// no-op that answers with the first delivery.
    async fn deliver(&self, event: NotificationEvent) -> Result<Delivery>;
}

/// Create the `notifications` schema's tables.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    archlab_kernel::db::migrate(pool, sqlx::migrate!("./migrations"), SCHEMA).await
}
