//! Events in the monolith: the outbox worker calls the notifications module in-process.
//!
//! The outboxes (`auth.outbox`, `payments.outbox`) and their worker are the same mechanism
//! as in the microservices; only the last hop differs: here a function call, there a publish
//! to RabbitMQ (see `microservices/remote/src/relay.rs`).

use archlab_kernel::outbox::{Dispatch, Message, Outbox, Worker};
use archlab_kernel::{Error, Result};
use archlab_notifications::{NotificationEvent, NotificationsApi};
use async_trait::async_trait;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Delivers an outbox event straight to the notifications module.
pub struct InProcessDelivery(pub Arc<dyn NotificationsApi>);

#[async_trait]
impl Dispatch for InProcessDelivery {
    async fn dispatch(&self, message: &Message) -> Result<()> {
        let event: NotificationEvent = serde_json::from_value(message.payload.clone()).map_err(Error::internal)?;
        self.0.deliver(event).await.map(|_| ())
    }
}

/// The monolith's outbox workers, one per producing module.
#[derive(Clone)]
pub struct EventWorkers(Vec<Worker>);

impl EventWorkers {
    /// Workers over the auth and payments outboxes of `pool`, delivering in-process.
    pub fn new(pool: &PgPool, notifications: Arc<dyn NotificationsApi>) -> Self {
        let delivery: Arc<dyn Dispatch> = Arc::new(InProcessDelivery(notifications));
        let worker = |schema| Worker::new(Outbox::new(pool.clone(), schema), delivery.clone());
        Self(vec![worker(archlab_auth::SCHEMA), worker(archlab_payments::SCHEMA)])
    }

    /// Deliver everything pending now, ignoring back-off; returns how many were delivered.
    pub async fn process_pending(&self) -> Result<usize> {
        let mut delivered = 0;
        for worker in &self.0 {
            delivered += worker.process_pending().await?;
        }
        Ok(delivered)
    }

    /// Events not yet delivered and still retried, across both outboxes.
    pub async fn pending(&self) -> Result<i64> {
        let mut n = 0;
        for worker in &self.0 {
            n += worker.pending().await?;
        }
        Ok(n)
    }

    /// Events parked after too many failures, across both outboxes (docs/operations.md).
    pub async fn parked(&self) -> Result<i64> {
        let mut n = 0;
        for worker in &self.0 {
            n += worker.parked().await?;
        }
        Ok(n)
    }

    /// Run every worker until `stop` is cancelled.
    pub fn spawn(&self, poll: Duration, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        self.0.iter().map(|worker| worker.spawn(poll, stop.clone())).collect()
    }
}
