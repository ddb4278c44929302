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

use archlab_kernel::outbox::{Dispatch, Message};
use archlab_kernel::{Error, Result};
use archlab_notifications::{NotificationEvent, NotificationsApi};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long a connection attempt (TCP, AMQP handshake, channel, topology) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a publish may wait for the broker's confirm. The outbox worker holds its claim
/// transaction meanwhile, so a broker that accepts bytes but never answers must not hang it.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries the broker may push to the consumer before it acks any.
const PREFETCH: u16 = 16;
/// First wait of the consumer's back-off (reconnects and transient failures), doubled each
/// time up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest wait of the consumer's back-off.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

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

/// Publishes outbox events to the exchange, each confirmed by the broker.
///
/// Connects lazily and drops its connection on any error, so the next dispatch reconnects:
/// the broker may go away and come back while the service runs, and the outbox keeps the
/// events until then.
pub struct Publisher {
    config: BrokerConfig,
    sessions: Mutex<Sessions>,
}

/// One open connection and its confirm-mode channel.
#[derive(Clone)]
struct Session {
    /// Which connection this is, so a failed publish forgets only the one it used.
    generation: u64,
    channel: Channel,
    _connection: Arc<Connection>,
}

/// The publisher's connection state.
struct Sessions {
    /// The open session, if any.
    current: Option<Session>,
    /// Sessions opened so far; the latest one's generation.
    opened: u64,
}

impl Publisher {
    /// A publisher for `config`; it connects on first use.
    pub fn new(config: BrokerConfig) -> Self {
        Self { config, sessions: Mutex::new(Sessions { current: None, opened: 0 }) }
    }

    /// Connect if not connected: a readiness check (the broker answers and the topology is
    /// declared).
    pub async fn ping(&self) -> Result<(), Error> {
        self.session().await.map(|_| ())
    }

    async fn session(&self) -> Result<Session> {
        // Held across the connect, so concurrent dispatches share one connection attempt.
        let mut sessions = self.sessions.lock().await;
        if let Some(session) = &sessions.current {
            // A connection lapin already knows is dead is not worth a failed publish.
            if session.channel.status().connected() {
                return Ok(session.clone());
            }
        }
        sessions.current = None;
        let (connection, channel) = open_channel(&self.config, "archlab-publisher", true).await?;
        sessions.opened += 1;
        let session = Session { generation: sessions.opened, channel, _connection: Arc::new(connection) };
        sessions.current = Some(session.clone());
        Ok(session)
    }

    /// Drop `session` if it is still the current one (the next dispatch reconnects).
    async fn forget(&self, session: &Session) {
        let mut sessions = self.sessions.lock().await;
        if sessions.current.as_ref().is_some_and(|s| s.generation == session.generation) {
            sessions.current = None;
        }
    }

    async fn publish(&self, channel: &Channel, message: &Message) -> Result<()> {
        let payload = serde_json::to_vec(&message.payload).map_err(Error::internal)?;
        let properties = BasicProperties::default()
            .with_message_id(message.event_id.to_string().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2); // persistent: survives a broker restart in a durable queue
        // Mandatory: an event no queue is bound for comes back instead of vanishing.
        let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
        let confirm = async {
            channel
                .basic_publish(
                    self.config.exchange.as_str().into(),
                    message.topic.as_str().into(),
                    options,
                    &payload,
                    properties,
                )
                .await?
                .await
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(returned)))) => {
                Err(broker_error(format!("no queue bound for {} ({})", message.topic, returned.reply_text)))
            }
            Ok(Ok(Confirmation::Nack(_))) => Err(broker_error("the broker refused the message (nack)")),
            Ok(Ok(Confirmation::NotRequested)) => Err(broker_error("the channel is not in confirm mode")),
            Ok(Err(e)) => Err(broker_error(e)),
            Err(_) => Err(broker_error(format!("no confirm within {CONFIRM_TIMEOUT:?}"))),
        }
    }
}

#[async_trait]
impl Dispatch for Publisher {
    #[tracing::instrument(name = "broker.publish", skip_all, fields(event_id = %message.event_id, topic = %message.topic), err)]
    async fn dispatch(&self, message: &Message) -> Result<()> {
        let session = self.session().await?;
        let published = self.publish(&session.channel, message).await;
        if published.is_err() {
            self.forget(&session).await;
        }
        published
    }
}

/// Consumes the notifications queue and hands each event to a [`NotificationsApi`].
pub struct Consumer {
    config: BrokerConfig,
    processed: watch::Sender<u64>,
    connected: watch::Sender<bool>,
}

impl Consumer {
    /// A consumer of `config`'s queue; nothing happens until [`run`](Self::run).
    pub fn new(config: BrokerConfig) -> Self {
        Self { config, processed: watch::channel(0).0, connected: watch::channel(false).0 }
    }

    /// Its progress, readable before, while and after it runs.
    pub fn progress(&self) -> ConsumerProgress {
        ConsumerProgress { processed: self.processed.subscribe(), connected: self.connected.subscribe() }
    }

    /// Consume in the caller's task until `stop` is cancelled, reconnecting whenever the
    /// connection is lost; returns once the connection is closed.
    pub async fn run(self, handler: Arc<dyn NotificationsApi>, stop: CancellationToken) {
        let worker = Worker {
            config: self.config,
            handler,
            stop,
            processed: self.processed,
            connected: self.connected,
            retry: Backoff::new(),
        };
        worker.run().await
    }

    /// [`run`](Self::run) in a task of its own.
    pub fn spawn(self, handler: Arc<dyn NotificationsApi>, stop: CancellationToken) -> ConsumerHandle {
        let progress = self.progress();
        ConsumerHandle { progress, task: tokio::spawn(self.run(handler, stop)) }
    }
}

/// A [`Consumer`]'s progress, for tests, the harness and readiness.
#[derive(Clone)]
pub struct ConsumerProgress {
    /// Deliveries acked so far.
    processed: watch::Receiver<u64>,
    /// Whether a consumer is registered with the broker right now.
    connected: watch::Receiver<bool>,
}

impl ConsumerProgress {
    /// Deliveries acked so far (each after its notification committed).
    pub fn processed(&self) -> u64 {
        *self.processed.borrow()
    }

    /// Wait until at least `n` deliveries are acked; false if `timeout` passes first.
    pub async fn wait_processed(&self, n: u64, timeout: Duration) -> bool {
        wait_until(self.processed.clone(), timeout, |acked| *acked >= n).await
    }

    /// Whether the consumer is connected and registered with the broker right now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Wait until the consumer is connected; false if `timeout` passes first.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        wait_until(self.connected.clone(), timeout, |connected| *connected).await
    }

    /// Wait until the consumer has noticed a lost connection; false if `timeout` passes first.
    pub async fn wait_disconnected(&self, timeout: Duration) -> bool {
        wait_until(self.connected.clone(), timeout, |connected| !*connected).await
    }
}

/// A [`Consumer`] running in its own task: its progress, and a way to wait for its end.
pub struct ConsumerHandle {
    progress: ConsumerProgress,
    task: JoinHandle<()>,
}

impl std::ops::Deref for ConsumerHandle {
    type Target = ConsumerProgress;
    fn deref(&self) -> &ConsumerProgress {
        &self.progress
    }
}

impl ConsumerHandle {
    /// Wait for the consumer to finish after its `stop` token was cancelled.
    pub async fn stopped(self) {
        if let Err(e) = self.task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// Wait on a watch channel (no polling) until `done` holds; false on timeout. When the
/// consumer task has ended, its last value is final and decides.
async fn wait_until<T>(mut rx: watch::Receiver<T>, timeout: Duration, done: impl Fn(&T) -> bool) -> bool {
    let reached = tokio::time::timeout(timeout, async { rx.wait_for(|v| done(v)).await.is_ok() }).await;
    match reached {
        Ok(true) => true,
        Ok(false) => done(&rx.borrow()),
        Err(_) => false,
    }
}

/// Exponential back-off from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`].
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self { next: BACKOFF_FIRST }
    }

    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(BACKOFF_MAX);
        wait
    }

    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

/// Sleep for `wait` unless `stop` comes first; true if the whole wait passed.
async fn sleep_unless_stopped(wait: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

/// Why a consumer session ended.
enum Ended {
    /// `stop` was cancelled: leave.
    Stopped,
    /// The connection or channel is gone: connect again.
    Lost(String),
}

/// The consumer task's state.
struct Worker {
    config: BrokerConfig,
    handler: Arc<dyn NotificationsApi>,
    stop: CancellationToken,
    processed: watch::Sender<u64>,
    connected: watch::Sender<bool>,
    /// Back-off between attempts at a delivery that failed transiently.
    retry: Backoff,
}

impl Worker {
    async fn run(mut self) {
        let mut reconnect = Backoff::new();
        loop {
            let opened = tokio::select! {
                _ = self.stop.cancelled() => return,
                opened = self.open() => opened,
            };
            let (connection, channel, deliveries) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    let wait = reconnect.next();
                    tracing::warn!(error = %e, ?wait, "broker consumer cannot connect; retrying");
                    if !sleep_unless_stopped(wait, &self.stop).await {
                        return;
                    }
                    continue;
                }
            };
            reconnect.reset();
            self.connected.send_replace(true);
            tracing::info!(queue = %self.config.queue, "broker consumer connected");
            let ended = self.consume(deliveries).await;
            self.connected.send_replace(false);
            match ended {
                Ended::Stopped => {
                    // Deliveries prefetched but not handled go back to the queue with the close.
                    let close = async {
                        let _ = channel.close(200, "consumer stopped".into()).await;
                        let _ = connection.close(200, "consumer stopped".into()).await;
                    };
                    let _ = tokio::time::timeout(CONNECT_TIMEOUT, close).await;
                    return;
                }
                Ended::Lost(cause) => {
                    tracing::warn!(%cause, "broker consumer lost its connection; reconnecting");
                    if !sleep_unless_stopped(reconnect.next(), &self.stop).await {
                        return;
                    }
                }
            }
        }
    }

    async fn open(&self) -> Result<(Connection, Channel, lapin::Consumer)> {
        let (connection, channel) = open_channel(&self.config, "archlab-consumer", false).await?;
        let consume = async {
            channel.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
            // Manual acks (`no_ack: false`); the broker names the consumer.
            channel
                .basic_consume(
                    self.config.queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, consume).await {
            Ok(Ok(deliveries)) => Ok((connection, channel, deliveries)),
            Ok(Err(e)) => Err(broker_error(e)),
            Err(_) => Err(broker_error(format!("no consumer within {CONNECT_TIMEOUT:?}"))),
        }
    }

    async fn consume(&mut self, mut deliveries: lapin::Consumer) -> Ended {
        loop {
            let next = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ended::Stopped,
                next = deliveries.next() => next,
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => return Ended::Lost(e.to_string()),
                None => return Ended::Lost("the broker cancelled the consumer".into()),
            };
            let span = tracing::info_span!(
                "broker.consume",
                event_id = tracing::field::Empty,
                topic = %delivery.routing_key,
            );
            if let Some(id) = delivery.properties.message_id() {
                span.record("event_id", id.as_str());
            }
            if let Err(ended) = self.handle(delivery).instrument(span).await {
                return ended;
            }
        }
    }

    /// Deliver one message and settle it with the broker.
    async fn handle(&mut self, delivery: Delivery) -> Result<(), Ended> {
        let event: NotificationEvent = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(e) => {
                // A poison message: requeued, it would come back forever.
                tracing::error!(error = %e, "undecodable message rejected without requeue");
                return settled(delivery.acker.reject(BasicRejectOptions { requeue: false }).await);
            }
        };
        tracing::Span::current().record("event_id", tracing::field::display(event.event_id));
        // Not cancelled by `stop`: an unfinished delivery would only be redone after a restart.
        match self.handler.deliver(event).await {
            Ok(_) => {
                // Only now: the notification and its processed-message row have committed.
                settled(delivery.acker.ack(Default::default()).await)?;
                self.retry.reset();
                self.processed.send_modify(|acked| *acked += 1);
                Ok(())
            }
            Err(e) if e.is_transient() => {
                let wait = self.retry.next();
                tracing::warn!(error = %e, ?wait, "delivery failed transiently; requeued after back-off");
                let waited = sleep_unless_stopped(wait, &self.stop).await;
                settled(delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await)?;
                if waited { Ok(()) } else { Err(Ended::Stopped) }
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery failed permanently; rejected without requeue");
                settled(delivery.acker.reject(BasicRejectOptions { requeue: false }).await)
            }
        }
    }
}

/// An ack, nack or reject that did not reach the broker means the channel is gone; the
/// broker requeues the delivery itself when it notices.
fn settled(outcome: lapin::Result<bool>) -> Result<(), Ended> {
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(Ended::Lost("the channel closed before the delivery was settled".into())),
        Err(e) => Err(Ended::Lost(e.to_string())),
    }
}
