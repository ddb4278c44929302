//! The producing side: a [`Publisher`] is the outbox relay's [`Dispatch`], one confirmed
//! publish per event.

use super::{BrokerConfig, broker_error, open_channel};
use archlab_kernel::outbox::{Dispatch, Message};
use archlab_kernel::{Error, Result};
use async_trait::async_trait;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long a publish may wait for the broker's confirm. The outbox worker holds its claim
/// transaction meanwhile, so a broker that accepts bytes but never answers must not hang it.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

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
        let (connection, channel, _) = open_channel(&self.config, "archlab-publisher", true).await?;
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
        archlab_kernel::metrics::BROKER_PUBLISH.inc();
        let payload = serde_json::to_vec(&message.payload).map_err(Error::internal)?;
        let properties = BasicProperties::default()
            .with_message_id(message.event_id.to_string().into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2) // persistent: survives a broker restart in a durable queue
            .with_headers(trace_headers());
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

/// The AMQP headers carrying the current span's `traceparent`, for the consumer to continue.
fn trace_headers() -> FieldTable {
    let mut headers = FieldTable::default();
    if let Some(traceparent) = archlab_kernel::trace::current_traceparent() {
        headers.insert(archlab_kernel::trace::TRACEPARENT.into(), AMQPValue::LongString(traceparent.into()));
    }
    headers
}

#[async_trait]
impl Dispatch for Publisher {
    #[tracing::instrument(
        name = "broker.publish",
        skip_all,
        fields(otel.kind = "producer", messaging.system = "rabbitmq", messaging.operation.type = "send",
               messaging.destination.name = %self.config.exchange, event_id = %message.event_id, topic = %message.topic),
        err
    )]
    async fn dispatch(&self, message: &Message) -> Result<()> {
        let session = self.session().await?;
        let published = self.publish(&session.channel, message).await;
        if published.is_err() {
            self.forget(&session).await;
        }
        published
    }
}
