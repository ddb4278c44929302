//! payments-service: the purchase flow with every port across a network.
//!
//! The very `PurchaseService` the monolith runs, with `AuthApi`, `UsersApi` and
//! `NotificationsApi` bound to gRPC or HTTP clients: session → user → charge → record →
//! notify is now four network hops, and in `sync` mode a notifications outage fails the
//! purchase. In `async` mode the receipt goes to `payments.outbox` in the payment's
//! transaction and the relay publishes it to RabbitMQ. Compare `monolith/src/app.rs`.

use anyhow::Context;
use archlab_kernel::config::{BehaviourArgs, DatabaseArgs, ExternalArgs};
use archlab_kernel::health::{PgCheck, ReadyCheck};
use archlab_kernel::http::{edge, with_authenticator};
use archlab_kernel::{Faults, db};
use archlab_payments::{ExtsimPayments, PurchasePorts, PurchaseService};
use archlab_remote::broker::BrokerConfig;
use archlab_remote::grpc::GrpcServer;
use archlab_remote::identity::{IdentityArgs, SignedIdentityAuthenticator};
use archlab_remote::{ClientConfig, Host, Relay, Upstreams};
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
    /// PostgreSQL.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The payment provider.
    #[command(flatten)]
    pub external: ExternalArgs,
    /// Transport and limits of calls to other services.
    #[command(flatten)]
    pub client: ClientConfig,
    /// Where the other services are.
    #[command(flatten)]
    pub upstreams: Upstreams,
    /// RabbitMQ.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// The gateway's identity signature.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Notification mode, fault points.
    #[command(flatten)]
    pub behaviour: BehaviourArgs,
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
        let pool = db::connect(&config.db.database_url, &config.database, config.db.db_max_connections)
            .await
            .with_context(|| format!("connecting to {}", config.database))?;
        archlab_payments::migrate(&pool).await.context("migrating payments")?;
        let faults = config.behaviour.faults();

        // The same ports the monolith binds in-process, bound to remote clients.
        let ports = PurchasePorts {
            auth: config.upstreams.auth(&config.client)?,
            users: config.upstreams.users(&config.client)?,
            provider: Arc::new(ExtsimPayments::new(&config.external.extsim_url, config.external.timeout())),
            notifications: config.upstreams.notifications(&config.client)?,
        };
        let purchases =
            Arc::new(PurchaseService::new(pool.clone(), ports, config.behaviour.notification_mode, faults.clone()));

        let authn = Arc::new(SignedIdentityAuthenticator::new(config.identity.internal_secret.as_bytes()));
        let public = with_authenticator(archlab_payments::http::router(purchases), authn);
        let checks: Vec<Arc<dyn ReadyCheck>> = vec![Arc::new(PgCheck { name: "postgres".into(), pool: pool.clone() })];
        let router = edge(public.merge(archlab_kernel::health::router(checks)));
        let relay = Relay::new(pool.clone(), archlab_payments::SCHEMA, &config.broker);
        let host = Host::bind(config.http_addr, config.grpc_addr).await?;
        Ok(Self { host, router, relay, poll: Duration::from_millis(config.behaviour.outbox_poll_ms), pool, faults })
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
