//! payments-service: the purchase flow with every port across a network.
//!
//! The very `PurchaseService` the monolith runs, with `AuthApi`, `UsersApi` and
//! `NotificationsApi` bound to gRPC or HTTP clients: session → user → charge → record →
//! notify is now four network hops, and in `sync` mode a notifications outage fails the
//! purchase. In `async` mode the receipt goes to `payments.outbox` in the payment's
//! transaction and the relay publishes it to RabbitMQ. The reconciler settles payments a
//! purchase left in doubt, as the monolith's does. Compare `monolith/src/app.rs`.

use anyhow::Context;
use archlab_kernel::config::{ExternalArgs, ReconcileArgs};
use archlab_kernel::faults::admin::AdminListener;
use archlab_kernel::processes::PAYMENTS_SERVICE;
use archlab_kernel::{Addrs, Faults, Server};
use archlab_payments::{ExtsimPayments, PurchasePorts, PurchaseService, Reconciler};
use archlab_remote::Relay;
use archlab_remote::broker::BrokerConfig;
use archlab_remote::grpc::GrpcServer;
use archlab_remote::host::{self, Host, Peers, ServiceArgs};
use axum::Router;
use clap::Parser;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const GRPC: archlab_kernel::processes::Listener = PAYMENTS_SERVICE.grpc.expect("payments-service serves gRPC");
const DATABASE: (&str, &str) = PAYMENTS_SERVICE.database.expect("payments-service has a database");
const ADMIN_ADDR_VAR: &str = PAYMENTS_SERVICE.admin_addr_var.expect("payments-service has fault points");

/// payments-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = PAYMENTS_SERVICE.name)]
pub struct Config {
    /// Public HTTP.
    #[arg(long, env = PAYMENTS_SERVICE.http.addr_var, default_value = PAYMENTS_SERVICE.http.default_addr)]
    pub http_addr: SocketAddr,
    /// gRPC (health only: nothing calls payments).
    #[arg(long, env = GRPC.addr_var, default_value = GRPC.default_addr)]
    pub grpc_addr: SocketAddr,
    /// The fault points' admin endpoint, loopback only; unset, none.
    #[arg(long, env = ADMIN_ADDR_VAR, value_parser = archlab_kernel::faults::admin::loopback_addr)]
    pub admin_addr: Option<SocketAddr>,
    /// This service's own database.
    #[arg(long, env = DATABASE.0, default_value = DATABASE.1)]
    pub database: String,
    /// The payment provider.
    #[command(flatten)]
    pub external: ExternalArgs,
    /// The reconciler of payments left in doubt.
    #[command(flatten)]
    pub reconcile: ReconcileArgs,
    /// RabbitMQ.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// Database server, identity secret, behaviour knobs.
    #[command(flatten)]
    pub common: ServiceArgs,
    /// How it calls the other services.
    #[command(flatten)]
    pub peers: Peers,
}

/// A built payments-service.
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    poll: Duration,
    reconcile_every: Option<Duration>,
    handle: Handle,
}

/// What tests and the harness may reach inside a running payments-service.
#[derive(Clone)]
pub struct Handle {
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
    /// The outbox relay (publish pending receipts now).
    pub relay: Relay,
    /// Settles payments left in doubt (it also runs on its own, every `RECONCILE_INTERVAL_MS`).
    pub reconciler: Reconciler,
}

impl Server for App {
    type Config = Config;
    type Handle = Handle;
    const NAME: &'static str = PAYMENTS_SERVICE.name;

    /// Create and migrate `archlab_payments`, bind the remote ports, bind both listeners.
    async fn build(config: Config) -> anyhow::Result<Self> {
        config.reconcile.check(&config.external).map_err(anyhow::Error::msg)?;
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_payments::migrate(&pool).await.context("migrating payments")?;
        let faults = config.common.behaviour.faults(archlab_payments::faults::ALL)?;

        // The same ports the monolith binds in-process, bound to remote clients that sign
        // every call as payments-service.
        let me = config.common.identity.service_credentials(Self::NAME);
        let (peers, client) = (&config.peers.upstreams, &config.peers.client);
        let ports = PurchasePorts {
            auth: peers.auth(client, &me)?,
            users: peers.users(client, &me)?,
            provider: Arc::new(ExtsimPayments::new(&config.external.extsim_url, config.external.timeout())),
            notifications: peers.notifications(client, &me)?,
        };
        let purchases = Arc::new(PurchaseService::new(
            pool.clone(),
            ports,
            config.common.behaviour.notification_mode,
            faults.clone(),
        ));
        let reconciler = Reconciler::new(purchases.clone(), config.reconcile.after());

        // Nothing calls payments, so it has no internal routes.
        let router = host::service_router(
            archlab_payments::http::router(purchases),
            Router::new(),
            &config.common.identity,
            &pool,
        );
        let relay = archlab_remote::relay::to_broker(pool.clone(), archlab_payments::SCHEMA, &config.broker);
        // Health only: nothing calls payments.
        let grpc = GrpcServer::new(&me);
        let admin = AdminListener::bind_optional(config.admin_addr, &faults).await?;
        let host = Host::bind(config.http_addr, config.grpc_addr, &config.common.identity).await?.with_admin(admin);
        let poll = Duration::from_millis(config.common.behaviour.outbox_poll_ms);
        let reconcile_every = config.reconcile.interval();
        Ok(Self { host, router, grpc, poll, reconcile_every, handle: Handle { pool, faults, relay, reconciler } })
    }

    fn addrs(&self) -> Addrs {
        self.host.addrs()
    }

    fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serve, relay receipts and reconcile payments left in doubt until `shutdown` completes.
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = host::stop_on(shutdown);
        let mut background = vec![self.handle.relay.spawn(self.poll, stop.clone())];
        if let Some(every) = self.reconcile_every {
            background.push(self.handle.reconciler.clone().spawn(every, stop.clone()));
        }
        self.host.serve(self.router, self.grpc, stop, background).await
    }
}
