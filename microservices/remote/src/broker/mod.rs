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
//! A message that can never be processed (undecodable, or refused permanently by
//! `deliver`) is rejected without requeue, and the queue's dead-letter exchange
//! (`<queue>.dlx`) routes it to the dead-letter queue (`<queue>.dlq`), where an operator
//! finds it (docs/operations.md); the consumer counts and logs each one.
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
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
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
    /// `AMQP_QUEUE_EXPIRES_MS`: the `x-expires` of the queue and of its dead-letter queue, so
    /// per-test queues vanish when unused.
    #[arg(long = "amqp-queue-expires-ms", env = "AMQP_QUEUE_EXPIRES_MS")]
    pub queue_expires_ms: Option<u32>,
}

impl BrokerConfig {
    /// The fanout exchange the queue dead-letters to: `<queue>.dlx`.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.queue)
    }

    /// The queue that keeps dead letters for an operator: `<queue>.dlq`.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.queue)
    }

    /// `x-expires`, when set, as queue arguments.
    fn expiry(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if let Some(ms) = self.queue_expires_ms {
            arguments.insert("x-expires".into(), AMQPValue::LongLongInt(i64::from(ms)));
        }
        arguments
    }
}

/// Whether the queue dead-letters what its consumer rejects, as [`declare_topology`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetters {
    /// The queue was declared with its dead-letter exchange: rejects reach `<queue>.dlq`.
    Kept,
    /// The queue existed from before dead-lettering, without the argument: a reject is
    /// dropped unless an operator applied a policy (docs/operations.md).
    NotConfigured,
}

/// Declare the exchange, the queue with its dead-letter exchange and queue, and the
/// bindings; idempotent, and called by both sides. Returns the channel to use (a new one
/// when the first was closed by the broker, see below) and whether rejects are kept.
///
/// Every declarer must pass the same `queue_expires_ms`: RabbitMQ refuses (and closes the
/// channel) when a queue is redeclared with different arguments. A queue an earlier version
/// declared without `x-dead-letter-exchange` is refused that way too; then the existing
/// queue is used as it is, on a new channel, and the refusal is logged at error level with
/// what an operator must do.
pub async fn declare_topology(connection: &Connection, config: &BrokerConfig) -> lapin::Result<(Channel, DeadLetters)> {
    let channel = connection.create_channel().await?;
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel
        .exchange_declare(config.exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await?;
    // The dead-letter side first, so the queue never dead-letters into nothing.
    let (dlx, dlq) = (config.dead_letter_exchange(), config.dead_letter_queue());
    channel.exchange_declare(dlx.as_str().into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    channel.queue_declare(dlq.as_str().into(), QueueDeclareOptions::durable(), config.expiry()).await?;
    channel
        .queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut arguments = config.expiry();
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dlx.as_str().into()));
    let declared = channel.queue_declare(config.queue.as_str().into(), QueueDeclareOptions::durable(), arguments).await;
    let (channel, dead_letters) = match declared {
        Ok(_) => (channel, DeadLetters::Kept),
        Err(e) if is_precondition_failed(&e) => {
            tracing::error!(
                queue = %config.queue, dead_letter_queue = %dlq, refused = %e,
                "the queue exists without a dead-letter exchange; using it as it is, so a message that cannot \
                 be processed is dropped, not kept: apply the dead-letter policy or recreate the queue \
                 (docs/operations.md)"
            );
            let channel = connection.create_channel().await?;
            channel
                .queue_declare(
                    config.queue.as_str().into(),
                    QueueDeclareOptions { passive: true, ..QueueDeclareOptions::durable() },
                    FieldTable::default(),
                )
                .await?;
            (channel, DeadLetters::NotConfigured)
        }
        Err(e) => return Err(e),
    };
    channel
        .queue_bind(
            config.queue.as_str().into(),
            config.exchange.as_str().into(),
            archlab_notifications::TOPIC.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, dead_letters))
}

/// The broker's answer to a redeclaration with other arguments.
fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
}

/// An [`Error`] naming the broker as what is unavailable.
fn broker_error(cause: impl std::fmt::Display) -> Error {
    Error::unavailable("broker", cause)
}

/// Connection, channel and topology, within [`CONNECT_TIMEOUT`].
async fn open_channel(config: &BrokerConfig, name: &str, confirms: bool) -> Result<(Connection, Channel, DeadLetters)> {
    let open = async {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let connection = Connection::connect(&config.url, properties).await?;
        let (channel, dead_letters) = declare_topology(&connection, config).await?;
        if confirms {
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        Ok::<_, lapin::Error>((connection, channel, dead_letters))
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) => Err(broker_error(e)),
        Err(_) => Err(broker_error(format!("no connection within {CONNECT_TIMEOUT:?}"))),
    }
}
