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
//!
//! [`hybrid::HybridStack`] is the same for the hybrid: the gateway, the hybrid core and the
//! one extracted service (`archlab up hybrid --extract <module>`).

pub mod hybrid;

use archlab_kernel::server::{self, Running};
use archlab_kernel::{Addrs, NotificationMode, Server};
use archlab_remote::broker::ConsumerHandle;
use archlab_remote::{Relay, Transport};
use archlab_testkit::Extsim;
use archlab_testkit::traced::{self, ProcessThread};
use clap::Parser;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The names the second and third payments-service replicas go by in [`Stack::addrs`] and
/// [`Stack::stop`].
pub const REPLICA_NAMES: [&str; 2] = ["payments-service-2", "payments-service-3"];

/// The `INTERNAL_SECRET` every process of a stack shares.
pub const SECRET: &str = "system-tests-secret";

/// How to start a stack.
#[derive(Debug, Clone)]
pub struct Options {
    /// `NOTIFICATION_MODE` of every service.
    pub mode: NotificationMode,
    /// `INTERNAL_TRANSPORT` of every client.
    pub transport: Transport,
    /// Switch the signup and login limits off (`AbuseArgs::OFF`), for a client that sends
    /// far more signups and logins than a person would (the schemathesis run).
    pub limits_off: bool,
    /// `REDIS_URL` of auth-service: the session cache at this Redis; `None`, no cache.
    pub redis_url: Option<String>,
    /// Export every service's spans over OTLP to this endpoint, each process on a thread,
    /// runtime and tracer provider of its own so its spans carry its own `service.name`
    /// (see `archlab_testkit::traced`); `None`, no telemetry.
    pub otlp_endpoint: Option<String>,
    /// payments-service with the provider timeout and the reconciler settings of
    /// `archlab_conformance::in_doubt` (short enough to wait out), instead of the defaults.
    pub quick_reconcile: bool,
    /// How many payments-service replicas, over the one database, balanced by the gateway
    /// (`archlab_remote::replicas`).
    pub payments_replicas: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: NotificationMode::Async,
            transport: Transport::Grpc,
            limits_off: false,
            redis_url: None,
            otlp_endpoint: None,
            quick_reconcile: false,
            payments_replicas: 1,
        }
    }
}

/// One running process of the stack (each kind has its own handle type).
enum Service {
    Auth(Running<archlab_auth_service::Handle>),
    Users(Running<archlab_users_service::Handle>),
    Payments(Running<archlab_payments_service::Handle>),
    Notifications(Running<archlab_notifications_service::Handle>),
    Gateway(Running<()>),
}

impl Service {
    fn addrs(&self) -> &Addrs {
        match self {
            Service::Auth(r) => &r.addrs,
            Service::Users(r) => &r.addrs,
            Service::Payments(r) => &r.addrs,
            Service::Notifications(r) => &r.addrs,
            Service::Gateway(r) => &r.addrs,
        }
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Service::Auth(r) => r.stop().await,
            Service::Users(r) => r.stop().await,
            Service::Payments(r) => r.stop().await,
            Service::Notifications(r) => r.stop().await,
            Service::Gateway(r) => r.stop().await,
        }
    }
}

/// Build and run `S` from `--flag value` pairs, exactly as its binary parses its environment;
/// with an OTLP endpoint, on a thread of its own (kept in `threads`) exporting its spans there.
async fn spawn<S: Server>(
    list: &[(impl AsRef<str>, String)],
    otlp: Option<&str>,
    threads: &mut Vec<ProcessThread>,
) -> Running<S::Handle>
where
    S::Config: 'static,
{
    let config = <S::Config as Parser>::try_parse_from(args(list)).unwrap_or_else(|e| panic!("{}: {e}", S::NAME));
    let Some(endpoint) = otlp else {
        return server::spawn::<S>(config).await.unwrap_or_else(|e| panic!("build {}: {e:#}", S::NAME));
    };
    let (running, thread) =
        traced::spawn::<S>(config, endpoint).await.unwrap_or_else(|e| panic!("build {}: {e:#}", S::NAME));
    threads.push(thread);
    running
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
    /// auth-service's cap on concurrent password hashes.
    pub auth_hashes: archlab_auth::HashGate,
    /// notifications-service's consumer progress.
    pub consumer: ConsumerHandle,
    /// The broker settings the services share (unique exchange and queue per stack).
    pub broker: archlab_remote::broker::BrokerConfig,
    services: HashMap<&'static str, Service>,
    _threads: Vec<ProcessThread>,
}

/// Parse one flattenable group of arguments on its own.
#[derive(Parser)]
struct Only<T: clap::Args> {
    #[command(flatten)]
    inner: T,
}

fn parse<T: clap::Args>(list: &[(impl AsRef<str>, String)]) -> T {
    Only::<T>::try_parse_from(args(list)).expect("valid arguments").inner
}

fn args(list: &[(impl AsRef<str>, String)]) -> Vec<String> {
    let flags = list.iter().flat_map(|(k, v)| [format!("--{}", k.as_ref()), v.clone()]);
    std::iter::once("test".to_owned()).chain(flags).collect()
}

/// One `--flag value` pair of a process's command line.
type Flag = (&'static str, String);

/// The flag groups the processes of a test deployment are started with, from its
/// [`Options`]: each process takes the groups it reads.
#[derive(Clone)]
struct Flags {
    db_url: String,
    mode: NotificationMode,
    /// RabbitMQ, with an exchange and a queue of this deployment's own.
    broker: Vec<Flag>,
    /// `INTERNAL_TRANSPORT`.
    client: Vec<Flag>,
    /// `INTERNAL_SECRET`.
    secret: Vec<Flag>,
    /// The session cache, if any.
    sessions: Vec<Flag>,
    /// `EXTSIM_URL`.
    extsim: Vec<Flag>,
    /// The quick reconciler settings, if asked for.
    reconcile: Vec<Flag>,
    /// The signup and login limits off, if asked for.
    limits: Vec<Flag>,
}

impl Flags {
    fn new(options: &Options, db_url: String, amqp_url: &str, extsim_url: &str) -> Self {
        let tag = &Uuid::new_v4().simple().to_string()[..12];
        let reconcile = match options.quick_reconcile {
            true => {
                use archlab_conformance::in_doubt;
                vec![
                    ("external-timeout-ms", in_doubt::EXTERNAL_TIMEOUT_MS.to_string()),
                    ("reconcile-after-ms", in_doubt::RECONCILE_AFTER_MS.to_string()),
                    ("reconcile-interval-ms", in_doubt::RECONCILE_INTERVAL_MS.to_string()),
                ]
            }
            false => Vec::new(),
        };
        let limits = match options.limits_off {
            true => vec![
                ("auth-limit-per-address-per-minute", "0".to_owned()),
                ("auth-limit-per-account-per-hour", "0".to_owned()),
                ("password-hash-concurrency", "0".to_owned()),
            ],
            false => Vec::new(),
        };
        Self {
            db_url,
            mode: options.mode,
            broker: vec![
                ("amqp-url", amqp_url.to_owned()),
                ("amqp-exchange", format!("archlab_test_{tag}.events")),
                ("amqp-queue", format!("archlab_test_{tag}.notifications")),
                ("amqp-queue-expires-ms", "60000".to_owned()),
            ],
            client: vec![("transport", options.transport.to_string())],
            secret: vec![("internal-secret", SECRET.to_owned())],
            sessions: options.redis_url.iter().map(|url| ("redis-url", url.clone())).collect(),
            extsim: vec![("extsim-url", extsim_url.to_owned())],
            reconcile,
            limits,
        }
    }

    /// What every process with a database reads: the database, loopback port-0 listeners,
    /// a fault admin endpoint, the notification mode.
    fn common(&self, db: &str) -> Vec<Flag> {
        vec![
            ("database-url", self.db_url.clone()),
            ("db-max-connections", "5".to_owned()),
            ("database", db.to_owned()),
            ("http-addr", "127.0.0.1:0".to_owned()),
            ("grpc-addr", "127.0.0.1:0".to_owned()),
            ("admin-addr", "127.0.0.1:0".to_owned()),
            ("notification-mode", self.mode.to_string()),
        ]
    }
}

/// A service's two URLs as its callers' flags, e.g. `--users-grpc-url` and `--users-http-url`.
fn urls(grpc_flag: &'static str, http_flag: &'static str, addrs: &Addrs) -> Vec<Flag> {
    vec![(grpc_flag, addrs.grpc_url().expect("a service serves gRPC")), (http_flag, addrs.http_url())]
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
        // The four databases are created side by side before the services start; each
        // service would otherwise create its own in turn as it starts (about 0.2 s each,
        // four times per test), then finds it there and migrates it.
        let [users_db, notifications_db, auth_db, payments_db] =
            ["users", "notifications", "auth", "payments"].map(archlab_testkit::fresh_database_name);
        let create = archlab_kernel::db::ensure_database;
        tokio::try_join!(
            create(&db_url, &users_db),
            create(&db_url, &notifications_db),
            create(&db_url, &auth_db),
            create(&db_url, &payments_db)
        )
        .unwrap_or_else(|e| panic!("cannot create the test databases on {db_url}: {e}"));
        let flags = Flags::new(&options, db_url, amqp_url, &extsim.url);
        let common = |db: &String| flags.common(db);
        let Flags { broker, client, secret, sessions, extsim: extsim_args, reconcile, limits, .. } = flags.clone();
        let otlp = options.otlp_endpoint.as_deref();
        let mut threads = Vec::new();
        let users =
            spawn::<archlab_users_service::App>(&[common(&users_db), secret.clone()].concat(), otlp, &mut threads)
                .await;
        let notifications = spawn::<archlab_notifications_service::App>(
            &[common(&notifications_db), secret.clone(), broker.clone(), extsim_args.clone()].concat(),
            otlp,
            &mut threads,
        )
        .await;
        let users_urls = urls("users-grpc-url", "users-http-url", &users.addrs);
        let notifications_urls = urls("notifications-grpc-url", "notifications-http-url", &notifications.addrs);
        let auth = spawn::<archlab_auth_service::App>(
            &[
                common(&auth_db),
                secret.clone(),
                broker.clone(),
                client.clone(),
                users_urls.clone(),
                sessions,
                limits.clone(),
            ]
            .concat(),
            otlp,
            &mut threads,
        )
        .await;
        let auth_urls = urls("auth-grpc-url", "auth-http-url", &auth.addrs);
        let payments_flags = [
            common(&payments_db),
            secret.clone(),
            broker.clone(),
            client.clone(),
            extsim_args,
            reconcile,
            auth_urls.clone(),
            users_urls.clone(),
            notifications_urls.clone(),
        ]
        .concat();
        let payments = spawn::<archlab_payments_service::App>(&payments_flags, otlp, &mut threads).await;
        let mut replicas = Vec::new();
        assert!(
            options.payments_replicas <= REPLICA_NAMES.len() + 1,
            "at most {} payments replicas",
            REPLICA_NAMES.len() + 1
        );
        for _ in 1..options.payments_replicas.max(1) {
            replicas.push(spawn::<archlab_payments_service::App>(&payments_flags, otlp, &mut threads).await);
        }
        let every_payments = std::iter::once(&payments).chain(&replicas).map(|r| r.addrs.http_url());
        let payments_url = vec![("payments-http-url", every_payments.collect::<Vec<_>>().join(","))];
        let gateway = spawn::<archlab_gateway::App>(
            &[
                vec![("addr", "127.0.0.1:0".to_owned())],
                limits,
                auth_urls,
                users_urls,
                payments_url,
                notifications_urls,
                client,
                secret,
            ]
            .concat(),
            otlp,
            &mut threads,
        )
        .await;

        let broker_config: archlab_remote::broker::BrokerConfig = parse(&broker);
        let (a, u, p, n) = (&auth.handle, &users.handle, &payments.handle, &notifications.handle);
        Stack {
            gateway_url: gateway.addrs.http_url(),
            extsim,
            auth_db: a.pool.clone(),
            users_db: u.pool.clone(),
            payments_db: p.pool.clone(),
            notifications_db: n.pool.clone(),
            users_faults: u.faults.clone(),
            notifications_faults: n.faults.clone(),
            auth_relay: a.relay.clone(),
            payments_relay: p.relay.clone(),
            saga: a.saga.clone(),
            auth_hashes: a.hashes.clone(),
            consumer: n.consumer.clone(),
            broker: broker_config,
            services: HashMap::from([
                (archlab_kernel::processes::USERS_SERVICE.name, Service::Users(users)),
                (archlab_kernel::processes::NOTIFICATIONS_SERVICE.name, Service::Notifications(notifications)),
                (archlab_kernel::processes::AUTH_SERVICE.name, Service::Auth(auth)),
                (archlab_kernel::processes::PAYMENTS_SERVICE.name, Service::Payments(payments)),
                (archlab_kernel::processes::GATEWAY.name, Service::Gateway(gateway)),
            ])
            .into_iter()
            .chain(REPLICA_NAMES.into_iter().zip(replicas.into_iter().map(Service::Payments)))
            .collect(),
            _threads: threads,
        }
    }

    /// Where the running process `name` listens (to call a service directly, past the gateway;
    /// each service has a fault admin endpoint, the gateway none).
    pub fn addrs(&self, name: &str) -> Addrs {
        *self.services.get(name).unwrap_or_else(|| panic!("no running service {name}")).addrs()
    }

    /// Stop one service (as if its process died) and wait until it no longer serves.
    pub async fn stop(&mut self, name: &str) {
        let running = self.services.remove(name).unwrap_or_else(|| panic!("no running service {name}"));
        running.stop().await.expect("service stopped cleanly");
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
        let mut expected = published(&self.auth_db, "auth").await?;
        expected.extend(published(&self.payments_db, "payments").await?);
        wait_consumed(&expected, &self.notifications_db, &self.consumer, deadline, limit).await
    }
}

/// The events `<schema>.outbox` in `pool` has published to the broker.
async fn published(pool: &PgPool, schema: &'static str) -> Result<Vec<Uuid>, String> {
    let sql = format!("SELECT event_id FROM {schema}.outbox WHERE published_at IS NOT NULL");
    // `schema` is one of the lab's own, never input.
    sqlx::query_scalar::<_, Uuid>(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.map_err(|e| e.to_string())
}

/// Wait — on the consumer's ack counter, never by sleeping — until the notifications
/// database `notifications_db` has processed every event of `expected`, or `deadline` passes.
async fn wait_consumed(
    expected: &[Uuid],
    notifications_db: &PgPool,
    consumer: &ConsumerHandle,
    deadline: Instant,
    limit: Duration,
) -> Result<(), String> {
    loop {
        // Read the ack counter before counting, so an ack in between is not missed.
        let seen = consumer.processed();
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications.processed_messages WHERE event_id = ANY($1)")
                .bind(expected)
                .fetch_one(notifications_db)
                .await
                .map_err(|e| e.to_string())?;
        if done as usize == expected.len() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !consumer.wait_processed(seen + 1, left).await {
            return Err(format!("{} of {} published events processed after {limit:?}", done, expected.len()));
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
