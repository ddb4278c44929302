//! The notifications side: a [`Consumer`] takes events off the queue and acks each only
//! after [`NotificationsApi::deliver`] committed it. A message that can never be processed
//! is rejected to the dead-letter queue, counted and logged.

use super::{BrokerConfig, CONNECT_TIMEOUT, DeadLetters, broker_error, open_channel};
use archlab_kernel::{Backoff, Result, Retries};
use archlab_notifications::{NotificationEvent, NotificationsApi};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Deliveries the broker may push to the consumer before it acks any.
const PREFETCH: u16 = 16;
/// Waits between reconnects, and between attempts at a delivery that failed transiently:
/// 100 ms, doubling up to 5 s.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// Consumes the notifications queue and hands each event to a [`NotificationsApi`].
///
/// Build it with [`new`](Self::new), take its [`handle`](Self::handle) if anyone wants to
/// watch its progress, then either await [`run`](Self::run) as part of the service's own
/// lifetime or [`spawn`](Self::spawn) it.
pub struct Consumer {
    config: BrokerConfig,
    /// Deliveries acked so far; every [`ConsumerHandle`] watches it.
    processed: watch::Sender<u64>,
    /// Deliveries rejected as impossible to process (dead-lettered) so far.
    dead_lettered: watch::Sender<u64>,
    /// Whether a consumer is registered with the broker right now.
    connected: watch::Sender<bool>,
}

impl Consumer {
    /// A consumer of `config`'s queue; nothing happens until it runs.
    pub fn new(config: BrokerConfig) -> Self {
        Self {
            config,
            processed: watch::Sender::new(0),
            dead_lettered: watch::Sender::new(0),
            connected: watch::Sender::new(false),
        }
    }

    /// Its progress (for tests, the harness and readiness), available before it runs.
    pub fn handle(&self) -> ConsumerHandle {
        ConsumerHandle {
            processed: self.processed.subscribe(),
            dead_lettered: self.dead_lettered.subscribe(),
            connected: self.connected.subscribe(),
            task: None,
        }
    }

    /// Consume in the caller's task until `stop` is cancelled, reconnecting whenever the
    /// connection is lost. Returns once the delivery in hand is settled and the connection
    /// closed; deliveries prefetched but not yet handled go back to the queue.
    pub async fn run(self, handler: Arc<dyn NotificationsApi>, stop: CancellationToken) {
        let consume = ConsumeLoop {
            config: self.config,
            handler,
            stop,
            processed: self.processed,
            dead_lettered: self.dead_lettered,
            connected: self.connected,
            retry: BACKOFF.retries(),
            dead_letters: DeadLetters::Kept,
        };
        consume.run().await;
    }

    /// [`run`](Self::run) on a task of its own; the handle's [`stopped`](ConsumerHandle::stopped)
    /// awaits that task and passes on its panic.
    pub fn spawn(self, handler: Arc<dyn NotificationsApi>, stop: CancellationToken) -> ConsumerHandle {
        let mut handle = self.handle();
        handle.task = Some(tokio::spawn(self.run(handler, stop)));
        handle
    }
}

/// A [`Consumer`]'s progress, for tests, the harness and readiness.
///
/// A clone watches the same progress but does not own the task ([`stopped`](Self::stopped)
/// on a clone returns at once).
pub struct ConsumerHandle {
    /// Deliveries acked so far.
    processed: watch::Receiver<u64>,
    /// Deliveries rejected to the dead-letter queue so far.
    dead_lettered: watch::Receiver<u64>,
    /// Whether a consumer is registered with the broker right now.
    connected: watch::Receiver<bool>,
    /// The consumer's task, when [`Consumer::spawn`] started it.
    task: Option<JoinHandle<()>>,
}

impl ConsumerHandle {
    /// Deliveries acked so far (each after its notification committed).
    pub fn processed(&self) -> u64 {
        *self.processed.borrow()
    }

    /// Wait until at least `n` deliveries are acked; false if `timeout` passes first.
    pub async fn wait_processed(&self, n: u64, timeout: Duration) -> bool {
        wait_until(self.processed.clone(), timeout, |acked| *acked >= n).await
    }

    /// Deliveries rejected as impossible to process since the consumer started: each one
    /// is in the dead-letter queue ([`BrokerConfig::dead_letter_queue`]) unless the queue
    /// predates dead-lettering (see [`DeadLetters::NotConfigured`]).
    pub fn dead_lettered(&self) -> u64 {
        *self.dead_lettered.borrow()
    }

    /// Wait until at least `n` deliveries are dead-lettered; false if `timeout` passes first.
    pub async fn wait_dead_lettered(&self, n: u64, timeout: Duration) -> bool {
        wait_until(self.dead_lettered.clone(), timeout, |rejected| *rejected >= n).await
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

    /// Wait until the consumer has finished (its `stop` token was cancelled), or was dropped
    /// without running. A panic of a [`spawn`](Consumer::spawn)ed consumer is raised here.
    pub async fn stopped(mut self) {
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        // The consumer's senders are dropped when it ends, which closes the channel.
        while self.processed.changed().await.is_ok() {}
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

/// A running consumer: the loop [`Consumer::run`] drives, and what it keeps between
/// deliveries.
struct ConsumeLoop {
    config: BrokerConfig,
    handler: Arc<dyn NotificationsApi>,
    stop: CancellationToken,
    processed: watch::Sender<u64>,
    dead_lettered: watch::Sender<u64>,
    connected: watch::Sender<bool>,
    /// Back-off between attempts at a delivery that failed transiently.
    retry: Retries,
    /// Whether the queue, as declared on this connection, keeps what is rejected.
    dead_letters: DeadLetters,
}

impl ConsumeLoop {
    async fn run(mut self) {
        let mut reconnect = BACKOFF.retries();
        loop {
            let opened = tokio::select! {
                _ = self.stop.cancelled() => return,
                opened = self.open() => opened,
            };
            let (connection, channel, deliveries, dead_letters) = match opened {
                Ok(opened) => opened,
                Err(e) => {
                    let wait = reconnect.next_wait();
                    tracing::warn!(error = %e, ?wait, "broker consumer cannot connect; retrying");
                    if !sleep_unless_stopped(wait, &self.stop).await {
                        return;
                    }
                    continue;
                }
            };
            reconnect.reset();
            self.dead_letters = dead_letters;
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
                    if !sleep_unless_stopped(reconnect.next_wait(), &self.stop).await {
                        return;
                    }
                }
            }
        }
    }

    async fn open(&self) -> Result<(Connection, Channel, lapin::Consumer, DeadLetters)> {
        let (connection, channel, dead_letters) = open_channel(&self.config, "archlab-consumer", false).await?;
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
            Ok(Ok(deliveries)) => Ok((connection, channel, deliveries, dead_letters)),
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
            // A child of the publisher's span, not a link: each message is one step of the
            // request that caused it, and its waterfall should show it (docs/architecture.md).
            let span = tracing::info_span!(
                "broker.consume",
                otel.kind = "consumer",
                messaging.system = "rabbitmq",
                messaging.operation.type = "process",
                messaging.destination.name = %self.config.queue,
                event_id = tracing::field::Empty,
                topic = %delivery.routing_key,
            );
            archlab_kernel::trace::continue_from(&span, traceparent(&delivery).as_deref());
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
            // A poison message: requeued, it would come back forever.
            Err(e) => return self.dead_letter(delivery, "undecodable message", &e).await,
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
                let wait = self.retry.next_wait();
                tracing::warn!(error = %e, ?wait, "delivery failed transiently; requeued after back-off");
                let waited = sleep_unless_stopped(wait, &self.stop).await;
                settled(delivery.acker.nack(BasicNackOptions { multiple: false, requeue: true }).await)?;
                if waited { Ok(()) } else { Err(Ended::Stopped) }
            }
            Err(e) => self.dead_letter(delivery, "delivery failed permanently", &e).await,
        }
    }

    /// Reject `delivery` without requeue, so the queue's dead-letter exchange takes it; count
    /// it and say where an operator finds it.
    async fn dead_letter(
        &mut self,
        delivery: Delivery,
        what: &str,
        cause: &(dyn std::fmt::Display + Sync),
    ) -> Result<(), Ended> {
        settled(delivery.acker.reject(BasicRejectOptions { requeue: false }).await)?;
        let total = {
            let mut total = 0;
            self.dead_lettered.send_modify(|n| {
                *n += 1;
                total = *n;
            });
            total
        };
        match self.dead_letters {
            DeadLetters::Kept => tracing::error!(
                error = %cause, dead_letter_queue = %self.config.dead_letter_queue(), dead_lettered = total,
                "{what}: rejected to the dead-letter queue"
            ),
            DeadLetters::NotConfigured => tracing::error!(
                error = %cause, queue = %self.config.queue, dead_lettered = total,
                "{what}: rejected; the queue has no dead-letter exchange, so it is dropped unless a policy adds one"
            ),
        }
        Ok(())
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

impl Clone for ConsumerHandle {
    fn clone(&self) -> Self {
        Self {
            processed: self.processed.clone(),
            dead_lettered: self.dead_lettered.clone(),
            connected: self.connected.clone(),
            task: None,
        }
    }
}

/// The `traceparent` AMQP header the publisher wrote, if any.
fn traceparent(delivery: &Delivery) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    let key: lapin::types::ShortString = archlab_kernel::trace::TRACEPARENT.into();
    match headers.inner().get(&key)? {
        lapin::types::AMQPValue::LongString(value) => String::from_utf8(value.as_bytes().to_vec()).ok(),
        _ => None,
    }
}
