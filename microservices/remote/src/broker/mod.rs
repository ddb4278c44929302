//! RabbitMQ: how events leave a producing service and reach notifications.
//!
//! This is the microservices' counterpart of `monolith/src/events.rs`. There, the outbox
//! worker calls the notifications module in-process; here the last hop crosses the network
//! twice: the outbox relay hands each event to a [`Publisher`] (a
//! [`Dispatch`](archlab_kernel::outbox::Dispatch)), which publishes it and waits for the
//! broker's confirm, and a [`Consumer`] in the notifications service takes it off the queue
//! and calls the same [`NotificationsApi::deliver`] the monolith calls.
//!
//! Delivery is at least once at both hops, so neither side needs to be clever:
//! - the outbox row is marked published only after the broker confirmed the publish;
//! - a delivery is acked only after `deliver` returned, i.e. after the notification and its
//!   processed-message row committed; a redelivery finds that row and changes nothing.
//!
//! Both sides declare the topology ([`declare_topology`]), so start order never matters, and
//! both reconnect by themselves when the broker goes away and comes back.
//!
//! # Layout
//! - this file: [`BrokerConfig`] and what both sides share (topology, connecting).
//! - `publisher`: [`Publisher`], the outbox relay's side.
//! - `consumer`: [`Consumer`] and its [`ConsumerHandle`], the notifications service's side.
//!
//! [`NotificationsApi::deliver`]: archlab_notifications::NotificationsApi::deliver

mod consumer;
mod publisher;

pub use consumer::{Consumer, ConsumerHandle};
pub use publisher::Publisher;

use archlab_kernel::{Error, Result};
use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

/// How long a connection attempt (TCP, AMQP handshake, channel, topology) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the broker is and what the events travel through.
#[derive(clap::Args, Debug, Clone)]
pub struct BrokerConfig {
    /// `AMQP_URL`: the RabbitMQ to connect to.
    #[arg(long = "amqp-url", env = "AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub url: String,
    /// `AMQP_EXCHANGE`: the durable topic exchange producers publish to.
    #[arg(long = "amqp-exchange", env = "AMQP_EXCHANGE", default_value = "archlab.events")]
    pub exchange: String,
    /// `AMQP_QUEUE`: the durable queue notifications consume, bound to `notification.requested`.
    #[arg(long = "amqp-queue", env = "AMQP_QUEUE", default_value = "archlab.notifications")]
    pub queue: String,
    /// `AMQP_QUEUE_EXPIRES_MS`: the queue's `x-expires`, so per-test queues vanish when unused.
    #[arg(long = "amqp-queue-expires-ms", env = "AMQP_QUEUE_EXPIRES_MS")]
    pub queue_expires_ms: Option<u32>,
}

/// Declare the exchange, the queue and their binding; idempotent, and called by both sides.
///
/// Every declarer must pass the same `queue_expires_ms`: RabbitMQ refuses (and closes the
/// channel) when a queue is redeclared with different arguments.
pub async fn declare_topology(channel: &Channel, config: &BrokerConfig) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel
        .exchange_declare(config.exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await?;
    let mut arguments = FieldTable::default();
    if let Some(ms) = config.queue_expires_ms {
        arguments.insert("x-expires".into(), AMQPValue::LongLongInt(i64::from(ms)));
    }
    channel.queue_declare(config.queue.as_str().into(), QueueDeclareOptions::durable(), arguments).await?;
    channel
        .queue_bind(
            config.queue.as_str().into(),
            config.exchange.as_str().into(),
            archlab_notifications::TOPIC.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// An [`Error`] naming the broker as what is unavailable.
fn broker_error(cause: impl std::fmt::Display) -> Error {
    Error::unavailable("broker", cause)
}

/// Connection, channel and topology, within [`CONNECT_TIMEOUT`].
async fn open_channel(config: &BrokerConfig, name: &str, confirms: bool) -> Result<(Connection, Channel)> {
    let open = async {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connection = Connection::connect(&config.url, properties).await?;
        let channel = connection.create_channel().await?;
        if confirms {
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        declare_topology(&channel, config).await?;
        Ok::<_, lapin::Error>((connection, channel))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) => Err(broker_error(e)),
        Err(_) => Err(broker_error(format!("no connection within {CONNECT_TIMEOUT:?}"))),
    }
}
