//! The broker adapters against the real RabbitMQ: publish, consume, redeliver, break.
//!
//! Every test declares its own exchange and queue (`archlab_test_<uuid>`, queue `x-expires`
//! one minute, and the same for its dead-letter queue) so tests run in parallel without
//! seeing each other's messages. Nothing sleeps
//! in place of synchronisation: tests wait on the consumer's watch channels or on the test
//! handler's own channel, with a generous timeout that only a failure ever reaches.

use archlab_kernel::outbox::{Dispatch, Message};
use archlab_kernel::{Error, ErrorKind, Faults, Result};
use archlab_notifications::{Delivery, ExtsimEmail, NotificationEvent, NotificationsApi, NotificationsService, TOPIC};
use archlab_remote::broker::{BrokerConfig, Consumer, ConsumerHandle, Publisher};
use archlab_testkit::TcpProxy;
use async_trait::async_trait;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Long enough for a reconnect back-off or two; reached only when something is wrong.
const PATIENCE: Duration = Duration::from_secs(30);

/// A config on the test RabbitMQ with an exchange and a queue no other test uses.
async fn fresh_config() -> BrokerConfig {
    let name = format!("archlab_test_{}", Uuid::new_v4().simple());
    BrokerConfig {
        url: archlab_testkit::amqp_url().await,
        exchange: name.clone(),
        queue: name,
        queue_expires_ms: Some(60_000),
    }
}

/// `config` reaching RabbitMQ through a fresh proxy instead of directly.
async fn through_proxy(config: &BrokerConfig) -> (BrokerConfig, TcpProxy) {
    let mut uri: AMQPUri = config.url.parse().expect("AMQP_URL parses");
    let upstream = tokio::net::lookup_host((uri.authority.host.as_str(), uri.authority.port))
        .await
        .expect("resolve the broker")
        .next()
        .expect("the broker has an address");
    let proxy = TcpProxy::start(upstream).await.expect("start proxy");
    uri.authority.host = proxy.addr().ip().to_string();
    uri.authority.port = proxy.addr().port();
    (BrokerConfig { url: uri.to_string(), ..config.clone() }, proxy)
}

/// Delete the test's exchanges and queues (the queues' `x-expires` covers a failed test).
async fn cleanup(config: &BrokerConfig) {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    for queue in [config.queue.clone(), config.dead_letter_queue()] {
        channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    }
    for exchange in [config.exchange.clone(), config.dead_letter_exchange()] {
        channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await.unwrap();
    }
    connection.close(200, "done".into()).await.unwrap();
}

/// Publish raw bytes with `topic` to the test's exchange and wait for the broker's confirm.
async fn publish_raw(config: &BrokerConfig, body: &[u8]) {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
    let confirm = channel
        .basic_publish(config.exchange.as_str().into(), TOPIC.into(), options, body, BasicProperties::default())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(confirm, lapin::Confirmation::Ack(None), "the broker took and routed the raw message");
    connection.close(200, "done".into()).await.unwrap();
}

/// Every message in `queue` now, taken off it (bodies and headers), read through AMQP as an
/// operator's tool would.
async fn drain(config: &BrokerConfig, queue: &str) -> Vec<(Vec<u8>, FieldTable)> {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut messages = Vec::new();
    while let Some(got) = channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.unwrap() {
        let headers = got.delivery.properties.headers().clone().unwrap_or_default();
        messages.push((got.delivery.data, headers));
    }
    connection.close(200, "done".into()).await.unwrap();
    messages
}

/// Messages ready in `queue` (it must exist).
async fn ready(config: &BrokerConfig, queue: &str) -> u32 {
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::durable() };
    let declared = channel.queue_declare(queue.into(), passive, FieldTable::default()).await.unwrap();
    connection.close(200, "done".into()).await.unwrap();
    declared.message_count()
}

/// A text header RabbitMQ set on a dead letter.
fn header(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn welcome() -> NotificationEvent {
    let user_id = Uuid::new_v4();
    NotificationEvent::welcome(user_id, &format!("{}@example.com", user_id.simple()), "Ada")
}

/// The outbox row the relay would hand the publisher for `event`.
fn message(event: &NotificationEvent) -> Message {
    Message {
        id: 1,
        event_id: event.event_id,
        topic: TOPIC.to_owned(),
        payload: serde_json::to_value(event).unwrap(),
        attempts: 0,
        trace_context: None,
    }
}

/// A handler that records every call, fails transiently for its first `failures` calls,
/// refuses the event `refuse` names for good, and sends each event it accepts down a channel.
struct Recorder {
    failures: u32,
    refuse: Option<Uuid>,
    calls: Mutex<Vec<Uuid>>,
    accepted: mpsc::UnboundedSender<NotificationEvent>,
}

impl Recorder {
    fn new(failures: u32) -> (Arc<Self>, mpsc::UnboundedReceiver<NotificationEvent>) {
        Self::with(failures, None)
    }

    /// One that refuses `event_id` with a permanent error.
    fn refusing(event_id: Uuid) -> (Arc<Self>, mpsc::UnboundedReceiver<NotificationEvent>) {
        Self::with(0, Some(event_id))
    }

    fn with(failures: u32, refuse: Option<Uuid>) -> (Arc<Self>, mpsc::UnboundedReceiver<NotificationEvent>) {
        let (accepted, rx) = mpsc::unbounded_channel();
        (Arc::new(Self { failures, refuse, calls: Mutex::new(Vec::new()), accepted }), rx)
    }

    fn calls(&self) -> Vec<Uuid> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl NotificationsApi for Recorder {
    async fn deliver(&self, event: NotificationEvent) -> Result<Delivery> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(event.event_id);
            calls.len()
        };
        if call <= self.failures as usize {
            return Err(Error::unavailable("database", "not yet"));
        }
        if self.refuse == Some(event.event_id) {
            return Err(Error::validation("this event can never be delivered"));
        }
        self.accepted.send(event).unwrap();
        Ok(Delivery { notification_id: Uuid::new_v4(), duplicate: false })
    }
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<NotificationEvent>) -> NotificationEvent {
    tokio::time::timeout(PATIENCE, rx.recv()).await.expect("an event within the patience").expect("handler alive")
}

async fn stop(token: CancellationToken, handle: ConsumerHandle) {
    token.cancel();
    tokio::time::timeout(PATIENCE, handle.stopped()).await.expect("consumer stops");
}

#[tokio::test]
async fn a_published_event_reaches_the_handler_unchanged() {
    let config = fresh_config().await;
    let publisher = Publisher::new(config.clone());
    let event = welcome();
    // Published before any consumer exists: the publisher declared the queue too.
    publisher.dispatch(&message(&event)).await.expect("publish");

    let (recorder, mut rx) = Recorder::new(0);
    let token = CancellationToken::new();
    let handle = Consumer::new(config.clone()).spawn(recorder.clone(), token.clone());

    assert_eq!(next_event(&mut rx).await, event);
    assert!(handle.wait_processed(1, PATIENCE).await, "the delivery was never acked");
    assert_eq!(handle.processed(), 1);
    assert_eq!(recorder.calls(), vec![event.event_id]);
    stop(token, handle).await;
    cleanup(&config).await;
}

#[tokio::test]
async fn run_consumes_in_the_callers_task_and_returns_once_stopped() {
    let config = fresh_config().await;
    let (recorder, mut rx) = Recorder::new(0);
    let token = CancellationToken::new();
    let consumer = Consumer::new(config.clone());
    // Taken before the consumer runs, as a service that awaits `run` itself would.
    let handle = consumer.handle();
    let event = welcome();
    let drive = async {
        Publisher::new(config.clone()).dispatch(&message(&event)).await.expect("publish");
        assert_eq!(next_event(&mut rx).await, event);
        assert!(handle.wait_processed(1, PATIENCE).await, "the delivery was never acked");
        token.cancel();
    };
    let ran = tokio::time::timeout(PATIENCE, async { tokio::join!(consumer.run(recorder, token.clone()), drive) });
    ran.await.expect("run returns once stop is cancelled");
    assert_eq!(handle.processed(), 1);
    assert!(!handle.is_connected(), "run closed its connection before returning");
    tokio::time::timeout(PATIENCE, handle.stopped()).await.expect("the handle sees the consumer gone");
    cleanup(&config).await;
}

#[tokio::test]
async fn a_redelivered_event_is_recorded_and_emailed_once() {
    let config = fresh_config().await;
    let pool = archlab_testkit::fresh_pool("broker").await;
    archlab_notifications::migrate(&pool).await.unwrap();
    let extsim = archlab_testkit::extsim().await;
    let email = Arc::new(ExtsimEmail::new(&extsim.url, Duration::from_secs(5)));
    let service = Arc::new(NotificationsService::new(pool.clone(), email, Faults::default()));
    let token = CancellationToken::new();
    let handle = Consumer::new(config.clone()).spawn(service, token.clone());

    let event = welcome();
    let publisher = Publisher::new(config.clone());
    // The relay publishing twice, e.g. after a lost confirm: the broker delivers both.
    publisher.dispatch(&message(&event)).await.unwrap();
    publisher.dispatch(&message(&event)).await.unwrap();

    assert!(handle.wait_processed(2, PATIENCE).await, "both deliveries acked");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.notifications WHERE event_id = $1")
        .bind(event.event_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "one notification for one event");
    let to = event.email_to.clone().unwrap();
    assert_eq!(extsim.client.emails_to(&to).await.unwrap().len(), 1, "one email for one event");
    stop(token, handle).await;
    cleanup(&config).await;
}

#[tokio::test]
async fn the_publisher_fails_while_the_broker_is_cut_off_and_reconnects_after() {
    let config = fresh_config().await;
    let (proxied, proxy) = through_proxy(&config).await;
    let publisher = Publisher::new(proxied);
    publisher.ping().await.expect("connect through the proxy");
    assert_eq!(proxy.open_connections(), 1);

    let (recorder, mut rx) = Recorder::new(0);
    let token = CancellationToken::new();
    let handle = Consumer::new(config.clone()).spawn(recorder, token.clone());

    proxy.cut().await;
    let lost = welcome();
    let error = publisher.dispatch(&message(&lost)).await.expect_err("publish during the cut");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains("broker"), "names the broker: {error}");

    proxy.restore();
    let event = welcome();
    publisher.dispatch(&message(&event)).await.expect("publish after restore");
    assert_eq!(proxy.open_connections(), 1, "reconnected through the proxy");

    assert_eq!(next_event(&mut rx).await, event);
    assert!(handle.wait_processed(1, PATIENCE).await);
    stop(token, handle).await;
    cleanup(&config).await;
}

#[tokio::test]
async fn the_consumer_reconnects_after_a_cut_and_processes_each_event_once() {
    let config = fresh_config().await;
    let (proxied, proxy) = through_proxy(&config).await;
    let (recorder, mut rx) = Recorder::new(0);
    let token = CancellationToken::new();
    let handle = Consumer::new(proxied).spawn(recorder.clone(), token.clone());
    assert!(handle.wait_connected(PATIENCE).await, "consumer connects through the proxy");

    proxy.cut().await;
    assert!(handle.wait_disconnected(PATIENCE).await, "consumer notices the cut");
    let publisher = Publisher::new(config.clone());
    let events: Vec<NotificationEvent> = (0..5).map(|_| welcome()).collect();
    for event in &events {
        publisher.dispatch(&message(event)).await.unwrap();
    }
    // Nothing can reach the consumer while it is cut off.
    assert_eq!(handle.processed(), 0);

    proxy.restore();
    assert!(handle.wait_processed(5, PATIENCE).await, "all five processed after the restore");
    assert!(handle.is_connected());
    let mut received = Vec::new();
    for _ in 0..5 {
        received.push(next_event(&mut rx).await.event_id);
    }
    let mut calls: HashMap<Uuid, usize> = HashMap::new();
    for id in recorder.calls() {
        *calls.entry(id).or_default() += 1;
    }
    for event in &events {
        assert_eq!(calls.get(&event.event_id), Some(&1), "{} handled exactly once", event.event_id);
        assert!(received.contains(&event.event_id));
    }
    assert_eq!(handle.processed(), 5);
    stop(token, handle).await;
    cleanup(&config).await;
}

#[tokio::test]
async fn a_transient_failure_is_retried_until_it_succeeds() {
    let config = fresh_config().await;
    let (recorder, mut rx) = Recorder::new(2);
    let token = CancellationToken::new();
    let handle = Consumer::new(config.clone()).spawn(recorder.clone(), token.clone());

    let event = welcome();
    Publisher::new(config.clone()).dispatch(&message(&event)).await.unwrap();

    assert_eq!(next_event(&mut rx).await, event);
    assert!(handle.wait_processed(1, PATIENCE).await);
    assert_eq!(recorder.calls(), vec![event.event_id; 3], "two failures, then success");
    assert_eq!(handle.processed(), 1, "acked once");
    stop(token, handle).await;
    cleanup(&config).await;
}

#[tokio::test]
async fn an_undecodable_message_goes_to_the_dead_letter_queue_and_the_next_one_is_processed() {
    let config = fresh_config().await;
    let publisher = Publisher::new(config.clone());
    publisher.ping().await.unwrap(); // declares the queue, so the raw publish below is routed
    // Confirmed before the good event is published, so it is ahead of it in the queue.
    publish_raw(&config, b"not json").await;
    let event = welcome();
    publisher.dispatch(&message(&event)).await.unwrap();

    let (recorder, mut rx) = Recorder::new(0);
    let token = CancellationToken::new();
    let handle = Consumer::new(config.clone()).spawn(recorder.clone(), token.clone());
    assert_eq!(next_event(&mut rx).await, event, "the good event behind the poison one");
    assert!(handle.wait_processed(1, PATIENCE).await);
    assert!(handle.wait_dead_lettered(1, PATIENCE).await, "the poison message was not counted");
    assert_eq!(recorder.calls(), vec![event.event_id], "the poison message never reached the handler");
    stop(token, handle).await;

    // Had it been requeued, stopping the consumer would have put it back as ready.
    assert_eq!(ready(&config, &config.queue).await, 0, "the poison message is gone from the queue");
    let dead = drain(&config, &config.dead_letter_queue()).await;
    assert_eq!(dead.len(), 1, "one dead letter");
    let (body, headers) = &dead[0];
    assert_eq!(body.as_slice(), b"not json", "kept as it was published");
    assert_eq!(header(headers, "x-first-death-queue").as_deref(), Some(config.queue.as_str()), "{headers:?}");
    assert_eq!(header(headers, "x-first-death-reason").as_deref(), Some("rejected"), "{headers:?}");
    cleanup(&config).await;
}

#[tokio::test]
async fn a_delivery_refused_for_good_is_dead_lettered_not_retried() {
    let config = fresh_config().await;
    let publisher = Publisher::new(config.clone());
    let (refused, good) = (welcome(), welcome());
    publisher.dispatch(&message(&refused)).await.unwrap();
    publisher.dispatch(&message(&good)).await.unwrap();

    let (recorder, mut rx) = Recorder::refusing(refused.event_id);
    let token = CancellationToken::new();
    let handle = Consumer::new(config.clone()).spawn(recorder.clone(), token.clone());
    assert_eq!(next_event(&mut rx).await, good);
    assert!(handle.wait_processed(1, PATIENCE).await);
    assert!(handle.wait_dead_lettered(1, PATIENCE).await);
    stop(token, handle).await;

    assert_eq!(recorder.calls(), vec![refused.event_id, good.event_id], "the refused event was tried once");
    let dead = drain(&config, &config.dead_letter_queue()).await;
    assert_eq!(dead.len(), 1);
    let kept: NotificationEvent = serde_json::from_slice(&dead[0].0).expect("the dead letter is the event");
    assert_eq!(kept, refused);
    cleanup(&config).await;
}

#[tokio::test]
async fn a_queue_declared_before_dead_lettering_is_still_published_to_and_consumed() {
    let config = fresh_config().await;
    // The queue as an earlier version declared it: no `x-dead-letter-exchange` argument.
    let connection = Connection::connect(&config.url, ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut old_arguments = FieldTable::default();
    old_arguments.insert("x-expires".into(), AMQPValue::LongLongInt(60_000));
    channel.queue_declare(config.queue.as_str().into(), QueueDeclareOptions::durable(), old_arguments).await.unwrap();
    connection.close(200, "done".into()).await.unwrap();

    let publisher = Publisher::new(config.clone());
    let event = welcome();
    publisher.dispatch(&message(&event)).await.expect("the publisher uses the existing queue");
    publish_raw(&config, b"not json").await;
    let (recorder, mut rx) = Recorder::new(0);
    let token = CancellationToken::new();
    let handle = Consumer::new(config.clone()).spawn(recorder, token.clone());

    assert_eq!(next_event(&mut rx).await, event, "the consumer uses the existing queue");
    assert!(handle.wait_processed(1, PATIENCE).await);
    assert!(handle.wait_dead_lettered(1, PATIENCE).await, "the poison message is still counted");
    stop(token, handle).await;
    // Without the argument (or an operator's policy) the broker has nowhere to put it.
    assert_eq!(ready(&config, &config.queue).await, 0);
    assert_eq!(ready(&config, &config.dead_letter_queue()).await, 0);
    cleanup(&config).await;
}

#[tokio::test]
async fn an_event_no_queue_is_bound_for_is_an_error_not_a_loss() {
    let config = fresh_config().await;
    let publisher = Publisher::new(config.clone());
    let mut unroutable = message(&welcome());
    unroutable.topic = "nobody.listens".to_owned();

    let error = publisher.dispatch(&unroutable).await.expect_err("returned by the broker");
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains("no queue bound for nobody.listens"), "{error}");
    // The failure dropped the connection; the next event goes through on a new one.
    publisher.dispatch(&message(&welcome())).await.expect("publish after the failure");
    cleanup(&config).await;
}
