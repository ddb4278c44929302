//! The hybrid: the modular monolith with one module extracted into its own service.
//!
//! The first move of a strangler fig. The extracted module runs as its very microservice
//! (`notifications-service` or `payments-service`, unchanged, with its own database); the
//! other three run here, in one process over the monolith's own database, with signup still
//! one ACID transaction. Nothing in the domain crates changes: only bindings do.
//!
//! - The extracted module's ports are bound to the remote clients (`archlab_remote`), as in
//!   the microservices build.
//! - The ports the extracted service calls back (`AuthApi`, `UsersApi`, and `NotificationsApi`
//!   when payments is the one out) are hosted here over gRPC and internal HTTP, each answering
//!   to the name of the service it stands in for, so the extracted service runs with nothing
//!   but its peers' URLs pointed here.
//! - Events: whichever side holds notifications delivers them. With notifications extracted,
//!   the auth and payments outboxes here relay to RabbitMQ (as auth-service and
//!   payments-service do); with payments extracted, the auth outbox is delivered in-process
//!   (as in the monolith) and payments-service's receipts arrive through the broker, consumed
//!   here.
//! - The front door is the gateway, unchanged: its route table sends the extracted module's
//!   routes to the service and every other route here, by URL alone. That is the strangler
//!   fig's facade, and it means this process serves its public routes the way a service does
//!   (trusting the gateway's signed identity), which is why it sits behind the gateway rather
//!   than being the front door itself.
//!
//! Only notifications and payments can be extracted: auth and users share signup's
//! transaction, and taking either out means the signup saga (auth-service's), which is the
//! microservices build. docs/evolution.md walks through the moves.
//!
//! Compare `monolith/src/app.rs` (every port in-process) and the services' `lib.rs` (every
//! port remote).

use anyhow::Context;
use archlab_auth::http::AuthRoutes;
use archlab_auth::{AuthApi, AuthService, HashGate, SessionCache};
use archlab_kernel::config::{AbuseArgs, ExternalArgs, ReconcileArgs, SessionArgs};
use archlab_kernel::faults::admin::AdminListener;
use archlab_kernel::outbox::{Outbox, Worker};
pub use archlab_kernel::processes::Module;
use archlab_kernel::processes::{self, HYBRID};
use archlab_kernel::{Addrs, Faults, Server};
use archlab_monolith::events::InProcessDelivery;
use archlab_monolith::signup_tx::OneTransactionSignup;
use archlab_notifications::{ExtsimEmail, NotificationsApi, NotificationsService};
use archlab_payments::{ExtsimPayments, PurchasePorts, PurchaseService, Reconciler};
use archlab_remote::broker::{BrokerConfig, Consumer, ConsumerHandle};
use archlab_remote::grpc::GrpcServer;
use archlab_remote::host::{self, Host, Peers, ServiceArgs};
use archlab_users::{UsersApi, UsersService};
use axum::Router;
use clap::Parser;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const GRPC: processes::Listener = HYBRID.grpc.expect("the hybrid's core serves gRPC");
const DATABASE: (&str, &str) = HYBRID.database.expect("the hybrid's core has a database");
const ADMIN_ADDR_VAR: &str = HYBRID.admin_addr_var.expect("the hybrid's core has fault points");

/// The hybrid core's environment: the monolith's, plus what a service reads to be called and
/// to call (gRPC address, identity secret, peers, broker).
#[derive(Parser, Debug, Clone)]
#[command(name = HYBRID.name, about = "archlab's modular monolith with one module extracted")]
pub struct Config {
    /// The module that runs as its own service; the other three run here.
    #[arg(long, env = "EXTRACT")]
    pub extract: Module,
    /// Public (behind the gateway) and internal HTTP.
    #[arg(long, env = HYBRID.http.addr_var, default_value = HYBRID.http.default_addr)]
    pub http_addr: SocketAddr,
    /// gRPC: the ports the extracted service calls back.
    #[arg(long, env = GRPC.addr_var, default_value = GRPC.default_addr)]
    pub grpc_addr: SocketAddr,
    /// The fault points' admin endpoint, loopback only; unset, none.
    #[arg(long, env = ADMIN_ADDR_VAR, value_parser = archlab_kernel::faults::admin::loopback_addr)]
    pub admin_addr: Option<SocketAddr>,
    /// The monolith's own database, less the extracted module's schema.
    #[arg(long, env = DATABASE.0, default_value = DATABASE.1)]
    pub database: String,
    /// Third parties.
    #[command(flatten)]
    pub external: ExternalArgs,
    /// Sessions.
    #[command(flatten)]
    pub sessions: SessionArgs,
    /// The per-account limit and the hashing cap (the per-address one is the gateway's).
    #[command(flatten)]
    pub limits: AbuseArgs,
    /// The payments reconciler, when payments runs here.
    #[command(flatten)]
    pub reconcile: ReconcileArgs,
    /// RabbitMQ.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// Database server, identity secret, behaviour knobs.
    #[command(flatten)]
    pub common: ServiceArgs,
    /// Where the extracted service is, and how to call it.
    #[command(flatten)]
    pub peers: Peers,
}

/// A built hybrid core.
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    consumer: Option<(Consumer, Arc<dyn NotificationsApi>)>,
    poll: Duration,
    reconcile_every: Option<Duration>,
    handle: Handle,
}

/// What tests and the harness may reach inside a running hybrid core.
#[derive(Clone)]
pub struct Handle {
    /// Which module is out.
    pub extract: Module,
    /// The monolith's database, as the three modules here use it.
    pub pool: PgPool,
    /// Fault points of the modules here.
    pub faults: Faults,
    /// The outbox workers here: relays to the broker, or in-process delivery.
    pub outboxes: Vec<Worker>,
    /// The broker consumer of payments-service's receipts, when notifications runs here.
    pub consumer: Option<ConsumerHandle>,
    /// The cap on concurrent password hashes.
    pub hashes: HashGate,
    /// Settles payments left in doubt, when payments runs here.
    pub reconciler: Option<Reconciler>,
}

impl Handle {
    /// Deliver or publish every pending event of the outboxes here now; how many went.
    pub async fn process_pending(&self) -> archlab_kernel::Result<usize> {
        let mut n = 0;
        for worker in &self.outboxes {
            n += worker.process_pending().await?;
        }
        Ok(n)
    }
}

impl Server for App {
    type Config = Config;
    type Handle = Handle;
    const NAME: &'static str = HYBRID.name;

    /// Create and migrate the three modules' schemas, bind the extracted module's ports to
    /// its service, host the ports it calls back, bind both listeners.
    async fn build(config: Config) -> anyhow::Result<Self> {
        let extract = config.extract;
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_auth::migrate(&pool).await.context("migrating auth")?;
        archlab_users::migrate(&pool).await.context("migrating users")?;
        let mut here = [archlab_auth::faults::ALL, archlab_users::faults::ALL].concat();
        match extract {
            Module::Notifications => {
                config.reconcile.check(&config.external).map_err(anyhow::Error::msg)?;
                archlab_payments::migrate(&pool).await.context("migrating payments")?;
                here.extend_from_slice(archlab_payments::faults::ALL);
            }
            Module::Payments => {
                archlab_notifications::migrate(&pool).await.context("migrating notifications")?;
                here.extend_from_slice(archlab_notifications::faults::ALL);
            }
        }
        let faults = config.common.behaviour.faults(&here)?;

        let cache = SessionCache::connect_optional(config.sessions.redis_url.as_deref()).await;
        let ttl = Duration::from_secs(config.sessions.session_ttl_secs);
        let auth = Arc::new(AuthService::new(pool.clone(), cache, ttl, faults.clone()).with_limits(&config.limits));
        let hashes = auth.hash_gate().clone();
        let users = Arc::new(UsersService::new(pool.clone(), faults.clone()));
        let signup = Arc::new(OneTransactionSignup { auth: auth.clone(), users: users.clone() });
        let public = Router::new()
            .merge(archlab_auth::http::router(AuthRoutes { auth: auth.clone(), signup }))
            .merge(archlab_users::http::router(users.clone()));

        // Every port hosted here answers to the service it stands in for.
        let identity = &config.common.identity;
        let as_auth = identity.service_credentials(processes::AUTH_SERVICE.name);
        let as_users = identity.service_credentials(processes::USERS_SERVICE.name);
        let internal = Router::new()
            .merge(archlab_remote::http::auth_routes(auth.clone(), &as_auth))
            .merge(archlab_remote::http::users_routes(users.clone(), &as_users));
        let grpc = GrpcServer::new(&as_auth).auth(auth.clone()).hosting_as(&as_users).users(users.clone());
        let me = identity.service_credentials(Self::NAME);
        let outbox = |schema, dispatch| Worker::new(Outbox::new(pool.clone(), schema), dispatch);

        let (public, internal, grpc, outboxes, consumer, reconciler) = match extract {
            Module::Notifications => {
                let (peers, client) = (&config.peers.upstreams, &config.peers.client);
                let ports = PurchasePorts {
                    auth: auth.clone() as Arc<dyn AuthApi>,
                    users: users.clone() as Arc<dyn UsersApi>,
                    provider: Arc::new(ExtsimPayments::new(&config.external.extsim_url, config.external.timeout())),
                    notifications: peers.notifications(client, &me)?,
                };
                let mode = config.common.behaviour.notification_mode;
                let purchases = Arc::new(PurchaseService::new(pool.clone(), ports, mode, faults.clone()));
                let reconciler = Reconciler::new(purchases.clone(), config.reconcile.after());
                let to_broker = |schema| archlab_remote::relay::to_broker(pool.clone(), schema, &config.broker);
                let relays = vec![to_broker(archlab_auth::SCHEMA), to_broker(archlab_payments::SCHEMA)];
                let public = public.merge(archlab_payments::http::router(purchases));
                (public, internal, grpc, relays, None, Some(reconciler))
            }
            Module::Payments => {
                let email = Arc::new(ExtsimEmail::new(&config.external.extsim_url, config.external.timeout()));
                let notifications = Arc::new(NotificationsService::new(pool.clone(), email, faults.clone()));
                let as_notifications = identity.service_credentials(processes::NOTIFICATIONS_SERVICE.name);
                let internal = internal
                    .merge(archlab_remote::http::notifications_routes(notifications.clone(), &as_notifications));
                let grpc = grpc.hosting_as(&as_notifications).notifications(notifications.clone());
                // Welcomes stay a function call; receipts come from payments-service's relay.
                let welcomes = outbox(archlab_auth::SCHEMA, Arc::new(InProcessDelivery(notifications.clone())));
                let consumer = Consumer::new(config.broker.clone());
                let public = public.merge(archlab_notifications::http::router(notifications.clone()));
                (public, internal, grpc, vec![welcomes], Some((consumer, notifications as _)), None)
            }
        };

        let router = host::service_router(public, internal, identity, &pool);
        let admin = AdminListener::bind_optional(config.admin_addr, &faults).await?;
        let host = Host::bind(config.http_addr, config.grpc_addr, identity).await?.with_admin(admin);
        tracing::info!(%extract, mode = %config.common.behaviour.notification_mode, "hybrid built");
        let handle = Handle {
            extract,
            pool,
            faults,
            outboxes,
            consumer: consumer.as_ref().map(|(c, _): &(Consumer, _)| c.handle()),
            hashes,
            reconciler,
        };
        Ok(Self {
            host,
            router,
            grpc,
            consumer,
            poll: Duration::from_millis(config.common.behaviour.outbox_poll_ms),
            reconcile_every: config.reconcile.interval(),
            handle,
        })
    }

    fn addrs(&self) -> Addrs {
        self.host.addrs()
    }

    fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serve, run the outboxes, the consumer and the reconciler (those this side has) until
    /// `shutdown` completes.
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = host::stop_on(shutdown);
        let mut background: Vec<_> = self.handle.outboxes.iter().map(|w| w.spawn(self.poll, stop.clone())).collect();
        if let Some((consumer, notifications)) = self.consumer {
            background.push(tokio::spawn(consumer.run(notifications, stop.clone())));
        }
        if let (Some(reconciler), Some(every)) = (&self.handle.reconciler, self.reconcile_every) {
            background.push(reconciler.clone().spawn(every, stop.clone()));
        }
        self.host.serve(self.router, self.grpc, stop, background).await
    }
}
