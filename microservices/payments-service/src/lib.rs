//! payments-service: the purchase flow with every port across a network.
//!
//! The very `PurchaseService` the monolith runs, with `AuthApi`, `UsersApi` and
//! `NotificationsApi` bound to gRPC or HTTP clients: session → user → charge → record →
//! notify is now four network hops, and in `sync` mode a notifications outage fails the
//! purchase. In `async` mode the receipt goes to `payments.outbox` in the payment's
//! transaction and the relay publishes it to RabbitMQ. Compare `monolith/src/app.rs`.

use anyhow::Context;
use archlab_kernel::Faults;
use archlab_kernel::config::ExternalArgs;
use archlab_payments::{ExtsimPayments, PurchasePorts, PurchaseService};
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
use tokio_util::sync::CancellationToken;

/// payments-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "payments-service")]
pub struct Config {
    /// Public HTTP.
    #[arg(long, env = "PAYMENTS_HTTP_ADDR", default_value = "127.0.0.1:8003")]
    pub http_addr: SocketAddr,
    /// gRPC (health only: nothing calls payments).
    #[arg(long, env = "PAYMENTS_GRPC_ADDR", default_value = "127.0.0.1:9003")]
    pub grpc_addr: SocketAddr,
    /// This service's own database.
    #[arg(long, env = "PAYMENTS_DATABASE", default_value = "archlab_payments")]
    pub database: String,
    /// The payment provider.
    #[command(flatten)]
    pub external: ExternalArgs,
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
    relay: Relay,
    poll: Duration,
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
}

impl App {
    /// Create and migrate `archlab_payments`, bind the remote ports, bind both listeners.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_payments::migrate(&pool).await.context("migrating payments")?;
        let faults = config.common.behaviour.faults();

        // The same ports the monolith binds in-process, bound to remote clients.
        let ports = PurchasePorts {
            auth: config.peers.upstreams.auth(&config.peers.client)?,
            users: config.peers.upstreams.users(&config.peers.client)?,
            provider: Arc::new(ExtsimPayments::new(&config.external.extsim_url, config.external.timeout())),
            notifications: config.peers.upstreams.notifications(&config.peers.client)?,
        };
        let purchases = Arc::new(PurchaseService::new(
            pool.clone(),
            ports,
            config.common.behaviour.notification_mode,
            faults.clone(),
        ));

        // Nothing calls payments, so it has no internal routes.
        let router = host::service_router(
            archlab_payments::http::router(purchases),
            Router::new(),
            &config.common.identity,
            &pool,
        );
        let relay = archlab_remote::relay::to_broker(pool.clone(), archlab_payments::SCHEMA, &config.broker);
        let host = Host::bind(config.http_addr, config.grpc_addr).await?;
        Ok(Self {
            host,
            router,
            relay,
            poll: Duration::from_millis(config.common.behaviour.outbox_poll_ms),
            pool,
            faults,
        })
    }

    /// Bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.host.http_addr()
    }

    /// Bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    /// The outbox relay (tests and the harness publish pending receipts through it).
    pub fn relay(&self) -> Relay {
        self.relay.clone()
    }

    /// Serve and relay until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let relay = self.relay.spawn(self.poll, stop.clone());
        self.host.serve(self.router, GrpcServer::new(), stop, vec![relay]).await
    }
}
