//! The outbox relay: the producing services' outbox, delivered to RabbitMQ.
//!
//! The microservices' counterpart of `monolith/src/events.rs`: the same outbox table and
//! worker, with the last hop a broker publish instead of a function call.

use crate::broker::{BrokerConfig, Publisher};
use archlab_kernel::outbox::{Outbox, Worker};
use sqlx::PgPool;
use std::sync::Arc;

/// An outbox worker whose dispatch is a broker publish.
pub type Relay = Worker;

/// The relay of `<schema>.outbox` in `pool` to the broker of `config`.
pub fn to_broker(pool: PgPool, schema: &'static str, config: &BrokerConfig) -> Relay {
    Worker::new(Outbox::new(pool, schema), Arc::new(Publisher::new(config.clone())))
}
