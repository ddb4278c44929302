//! notifications-service: the notifications domain alone, fed two ways.
//!
//! In `async` mode events arrive from RabbitMQ (published by the auth and payments outbox
//! relays) and are consumed idempotently: the processed-message row commits with the
//! notification, and the message is acked only after that commit. In `sync` mode payments
//! calls `NotificationsApi::deliver` over gRPC or HTTP inside the purchase. Compare
//! `monolith/src/events.rs`, where the outbox worker calls the same service in-process.

use anyhow::Context;
use archlab_kernel::Faults;
use archlab_kernel::config::ExternalArgs;
use archlab_notifications::{ExtsimEmail, NotificationsService};
use archlab_remote::broker::{BrokerConfig, Consumer, ConsumerHandle};
use archlab_remote::grpc::GrpcServer;
use archlab_remote::host::{self, Host, ServiceArgs};
use axum::Router;
use clap::Parser;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// notifications-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "notifications-service")]
pub struct Config {
    /// Public and internal HTTP.
    #[arg(long, env = "NOTIFICATIONS_HTTP_ADDR", default_value = "127.0.0.1:8004")]
    pub http_addr: SocketAddr,
    /// gRPC.
    #[arg(long, env = "NOTIFICATIONS_GRPC_ADDR", default_value = "127.0.0.1:9004")]
    pub grpc_addr: SocketAddr,
    /// This service's own database.
    #[arg(long, env = "NOTIFICATIONS_DATABASE", default_value = "archlab_notifications")]
    pub database: String,
    /// The email provider.
    #[command(flatten)]
    pub external: ExternalArgs,
    /// RabbitMQ.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// Database server, identity secret, behaviour knobs.
    #[command(flatten)]
    pub common: ServiceArgs,
}

/// A built notifications-service; its broker consumer already runs.
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    stop: CancellationToken,
    consumer: Option<ConsumerHandle>,
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
}

impl App {
    /// Create and migrate `archlab_notifications`, bind both ports, start consuming.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_notifications::migrate(&pool).await.context("migrating notifications")?;
        let faults = config.common.behaviour.faults();
        let email = Arc::new(ExtsimEmail::new(&config.external.extsim_url, config.external.timeout()));
        let notifications = Arc::new(NotificationsService::new(pool.clone(), email, faults.clone()));

        let router = host::service_router(
            archlab_notifications::http::router(notifications.clone()),
            archlab_remote::http::notifications_routes(notifications.clone()),
            &config.common.identity,
            &pool,
        );
        let grpc = GrpcServer::new().notifications(notifications.clone());
        let host = Host::bind(config.http_addr, config.grpc_addr).await?;
        let stop = CancellationToken::new();
        let consumer = Some(Consumer::new(config.broker.clone()).spawn(notifications, stop.clone()));
        Ok(Self { host, router, grpc, stop, consumer, pool, faults })
    }

    /// Bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.host.http_addr()
    }

    /// Bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    /// Take the broker consumer's handle (its progress, for tests and the harness); the
    /// consumer keeps running and still stops with the service.
    pub fn take_consumer(&mut self) -> Option<ConsumerHandle> {
        self.consumer.take()
    }

    /// Serve until `stop` is cancelled; the consumer stops with it.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let own = self.stop.clone();
        let linked = stop.clone();
        tokio::spawn(async move {
            linked.cancelled().await;
            own.cancel();
        });
        let served = self.host.serve(self.router, self.grpc, self.stop, Vec::new()).await;
        if let Some(consumer) = self.consumer {
            consumer.stopped().await;
        }
        served
    }
}
