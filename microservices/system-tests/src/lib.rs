//! The whole microservices build inside one test process.
//!
//! [`Stack::start`] builds the four services and the gateway exactly as their binaries do
//! (each from its own `Config`, with its own freshly created database), on loopback ports,
//! talking to each other over real gRPC or HTTP and to the real RabbitMQ, with an extsim of
//! its own. Only the process boundary is missing, which the harness (`archlab up micro`)
//! provides; what crosses the network here crosses it for real.
//!
//! [`Stack::settle`] is the "deliver what is pending now" call for the tests: it drains both
//! outbox relays and then waits — on the consumer's ack counter, never by sleeping — until
//! notifications-service has processed every event they published.

use archlab_kernel::NotificationMode;
use archlab_remote::broker::ConsumerHandle;
use archlab_remote::{ClientConfig, Relay, Transport, Upstreams};
use archlab_testkit::Extsim;
use clap::Parser;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const SECRET: &str = "system-tests-secret";

/// How to start a stack.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `NOTIFICATION_MODE` of every service.
    pub mode: NotificationMode,
    /// `INTERNAL_TRANSPORT` of every client.
    pub transport: Transport,
}

impl Default for Options {
    fn default() -> Self {
        Self { mode: NotificationMode::Async, transport: Transport::Grpc }
    }
}

/// One running service: its stop switch and its task.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The four services, the gateway and an extsim, running.
pub struct Stack {
    /// The gateway's public URL.
    pub gateway_url: String,
    /// The third parties.
    pub extsim: Extsim,
    /// auth-service's database.
    pub auth_db: PgPool,
    /// users-service's database.
    pub users_db: PgPool,
    /// payments-service's database.
    pub payments_db: PgPool,
    /// notifications-service's database.
    pub notifications_db: PgPool,
    /// users-service's fault points.
    pub users_faults: archlab_kernel::Faults,
    /// notifications-service's fault points.
    pub notifications_faults: archlab_kernel::Faults,
    /// auth-service's outbox relay (welcomes).
    pub auth_relay: Relay,
    /// payments-service's outbox relay (receipts).
    pub payments_relay: Relay,
    /// The signup saga, to drive its recovery.
    pub saga: std::sync::Arc<archlab_auth_service::signup_saga::SignupSaga>,
    /// notifications-service's consumer progress.
    pub consumer: ConsumerHandle,
    /// The broker settings the services share (unique exchange and queue per stack).
    pub broker: archlab_remote::broker::BrokerConfig,
    services: HashMap<&'static str, Running>,
}

/// Parse one flattenable group of arguments on its own.
#[derive(Parser)]
struct Only<T: clap::Args> {
    #[command(flatten)]
    inner: T,
}

fn parse<T: clap::Args>(list: &[(&str, String)]) -> T {
    Only::<T>::try_parse_from(args(list)).expect("valid arguments").inner
}

fn args(list: &[(&str, String)]) -> Vec<String> {
    std::iter::once("test".to_owned()).chain(list.iter().flat_map(|(k, v)| [format!("--{k}"), v.clone()])).collect()
}

impl Stack {
    /// Start everything with the machine's PostgreSQL and RabbitMQ.
    pub async fn start(options: Options) -> Stack {
        let amqp = archlab_testkit::amqp_url().await;
        Self::start_with_broker(options, &amqp).await
    }

    /// Start everything, reaching RabbitMQ at `amqp_url` (e.g. through a `TcpProxy`).
    pub async fn start_with_broker(options: Options, amqp_url: &str) -> Stack {
        let extsim = archlab_testkit::extsim().await;
        let db_url = archlab_testkit::database_url().await;
        let tag = &Uuid::new_v4().simple().to_string()[..12];
        let common = |db: &str| {
            vec![
                ("database-url", db_url.clone()),
                ("db-max-connections", "5".to_owned()),
                ("database", archlab_testkit::fresh_database_name(db)),
                ("http-addr", "127.0.0.1:0".to_owned()),
                ("grpc-addr", "127.0.0.1:0".to_owned()),
                ("notification-mode", options.mode.to_string()),
            ]
        };
        let broker = vec![
            ("amqp-url", amqp_url.to_owned()),
            ("amqp-exchange", format!("archlab_test_{tag}.events")),
            ("amqp-queue", format!("archlab_test_{tag}.notifications")),
            ("amqp-queue-expires-ms", "60000".to_owned()),
        ];
        let client = vec![("transport", options.transport.to_string())];
        let secret = vec![("internal-secret", SECRET.to_owned())];
        let extsim_args = vec![("extsim-url", extsim.url.clone())];

        let users = archlab_users_service::App::build(
            archlab_users_service::Config::try_parse_from(args(&[common("users"), secret.clone()].concat())).unwrap(),
        )
        .await
        .expect("build users-service");
        let mut notifications = archlab_notifications_service::App::build(
            archlab_notifications_service::Config::try_parse_from(args(
                &[common("notifications"), secret.clone(), broker.clone(), extsim_args.clone()].concat(),
            ))
            .unwrap(),
        )
        .await
        .expect("build notifications-service");
        let url = |addr: std::net::SocketAddr| format!("http://{addr}");
        let users_urls = vec![("users-grpc-url", url(users.grpc_addr())), ("users-http-url", url(users.http_addr()))];
        let notifications_urls = vec![
            ("notifications-grpc-url", url(notifications.grpc_addr())),
            ("notifications-http-url", url(notifications.http_addr())),
        ];
        let auth = archlab_auth_service::App::build(
            archlab_auth_service::Config::try_parse_from(args(
                &[common("auth"), secret.clone(), broker.clone(), client.clone(), users_urls.clone()].concat(),
            ))
            .unwrap(),
        )
        .await
        .expect("build auth-service");
        let auth_urls = vec![("auth-grpc-url", url(auth.grpc_addr())), ("auth-http-url", url(auth.http_addr()))];
        let payments = archlab_payments_service::App::build(
            archlab_payments_service::Config::try_parse_from(args(
                &[
                    common("payments"),
                    secret.clone(),
                    broker.clone(),
                    client.clone(),
                    extsim_args,
                    auth_urls.clone(),
                    users_urls.clone(),
                    notifications_urls.clone(),
                ]
                .concat(),
            ))
            .unwrap(),
        )
        .await
        .expect("build payments-service");
        let gateway_config = archlab_gateway::Config::try_parse_from(args(
            &[
                vec![
                    ("addr", "127.0.0.1:0".to_owned()),
                    ("auth-http-url", url(auth.http_addr())),
                    ("users-http-url", url(users.http_addr())),
                    ("payments-http-url", url(payments.http_addr())),
                    ("notifications-http-url", url(notifications.http_addr())),
                    ("auth-grpc-url", url(auth.grpc_addr())),
                ],
                client.clone(),
                secret,
            ]
            .concat(),
        ))
        .unwrap();
        let upstreams: Upstreams = parse(&auth_urls);
        let client_config: ClientConfig = parse(&client);
        let gateway_auth = upstreams.auth(&client_config).expect("auth client");
        let gateway = archlab_gateway::Gateway::build(gateway_config, gateway_auth).await.expect("build gateway");

        let consumer = notifications.take_consumer().expect("consumer handle");
        let broker_config: archlab_remote::broker::BrokerConfig = parse(&broker);
        let mut stack = Stack {
            gateway_url: format!("http://{}", gateway.local_addr()),
            extsim,
            auth_db: auth.pool.clone(),
            users_db: users.pool.clone(),
            payments_db: payments.pool.clone(),
            notifications_db: notifications.pool.clone(),
            users_faults: users.faults.clone(),
            notifications_faults: notifications.faults.clone(),
            auth_relay: auth.relay(),
            payments_relay: payments.relay(),
            saga: auth.saga(),
            consumer,
            broker: broker_config,
            services: HashMap::new(),
        };
        stack.run("users-service", |stop| users.run(stop));
        stack.run("notifications-service", |stop| notifications.run(stop));
        stack.run("auth-service", |stop| auth.run(stop));
        stack.run("payments-service", |stop| payments.run(stop));
        stack.run("gateway", |stop| async move { gateway.run_until_stopped(stop.cancelled_owned()).await });
        stack
    }

    fn run<F: Future<Output = anyhow::Result<()>> + Send + 'static>(
        &mut self,
        name: &'static str,
        serve: impl FnOnce(CancellationToken) -> F,
    ) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(stop.clone()));
        self.services.insert(name, Running { stop, task });
    }

    /// Stop one service (as if its process died) and wait until it no longer serves.
    pub async fn stop(&mut self, name: &str) {
        let running = self.services.remove(name).unwrap_or_else(|| panic!("no running service {name}"));
        running.stop.cancel();
        running.task.await.expect("service task").expect("service stopped cleanly");
    }

    /// Publish everything pending and wait until notifications-service has processed every
    /// event ever published; panics after 20 s, naming what is missing.
    pub async fn settle(&self) {
        if let Err(e) = self.settle_within(Duration::from_secs(20)).await {
            panic!("{e}");
        }
    }

    /// [`Stack::settle`] with a deadline, returning what is missing instead of panicking.
    pub async fn settle_within(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        self.auth_relay.process_pending().await.map_err(|e| e.to_string())?;
        self.payments_relay.process_pending().await.map_err(|e| e.to_string())?;
        let published = |pool: &PgPool, sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::query_scalar::<_, Uuid>(sql).fetch_all(&pool).await.map_err(|e| e.to_string()) }
        };
        let mut expected =
            published(&self.auth_db, "SELECT event_id FROM auth.outbox WHERE published_at IS NOT NULL").await?;
        expected.extend(
            published(&self.payments_db, "SELECT event_id FROM payments.outbox WHERE published_at IS NOT NULL").await?,
        );
        loop {
            // Read the ack counter before counting, so an ack in between is not missed.
            let seen = self.consumer.processed();
            let done: i64 =
                sqlx::query_scalar("SELECT count(*) FROM notifications.processed_messages WHERE event_id = ANY($1)")
                    .bind(&expected)
                    .fetch_one(&self.notifications_db)
                    .await
                    .map_err(|e| e.to_string())?;
            if done as usize == expected.len() {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.consumer.wait_processed(seen + 1, left).await {
                return Err(format!("{} of {} published events processed after {limit:?}", done, expected.len()));
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for running in self.services.values() {
            running.stop.cancel();
        }
    }
}

impl archlab_conformance::Target for Stack {
    fn base_url(&self) -> &str {
        &self.gateway_url
    }
    fn extsim_url(&self) -> &str {
        &self.extsim.url
    }
    async fn settle(&self) {
        Stack::settle(self).await
    }
}
