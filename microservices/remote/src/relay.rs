//! The outbox relay: the producing services' outbox, delivered to RabbitMQ.
//!
//! The microservices' counterpart of `monolith/src/events.rs`: the same outbox table and
//! worker, with the last hop a broker publish instead of a function call.

use crate::broker::{BrokerConfig, Publisher};
use archlab_kernel::Result;
use archlab_kernel::outbox::Outbox;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One schema's outbox, published to the broker.
#[derive(Clone)]
pub struct Relay {
    outbox: Outbox,
    publisher: Arc<Publisher>,
}

impl Relay {
    /// A relay of `<schema>.outbox` in `pool` to the broker of `config`.
    pub fn new(pool: PgPool, schema: &'static str, config: &BrokerConfig) -> Self {
        Self { outbox: Outbox::new(pool, schema), publisher: Arc::new(Publisher::new(config.clone())) }
    }

    /// Publish everything pending now, ignoring back-off (tests, harness).
    pub async fn process_pending(&self) -> Result<usize> {
        self.outbox.process_all_pending(&*self.publisher).await
    }

    /// Events not yet published.
    pub async fn pending(&self) -> Result<i64> {
        self.outbox.pending().await
    }

    /// The publisher, e.g. as a readiness check.
    pub fn publisher(&self) -> Arc<Publisher> {
        self.publisher.clone()
    }

    /// Run the relay until `stop` is cancelled.
    pub fn spawn(&self, poll: Duration, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.outbox.clone().run(self.publisher.clone(), poll, stop))
    }
}
