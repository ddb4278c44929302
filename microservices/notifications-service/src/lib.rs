//! notifications-service: the notifications domain alone, fed two ways.
//!
//! In `async` mode events arrive from RabbitMQ (published by the auth and payments outbox
//! relays) and are consumed idempotently: the processed-message row commits with the
//! notification, and the message is acked only after that commit. In `sync` mode payments
//! calls `NotificationsApi::deliver` over gRPC or HTTP inside the purchase. Compare
//! `monolith/src/events.rs`, where the outbox worker calls the same service in-process.
//! The consumer runs for exactly as long as the servers: it starts and stops with
//! `run_until_stopped`.

use anyhow::Context;
use archlab_kernel::config::ExternalArgs;
use archlab_kernel::faults::admin::AdminListener;
use archlab_kernel::processes::NOTIFICATIONS_SERVICE;
use archlab_kernel::{Addrs, Faults, Server};
use archlab_notifications::{ExtsimEmail, NotificationsService};
use archlab_remote::broker::{BrokerConfig, Consumer, ConsumerHandle};
use archlab_remote::grpc::GrpcServer;
use archlab_remote::host::{self, Host, ServiceArgs};
use axum::Router;
use clap::Parser;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;

const GRPC: archlab_kernel::processes::Listener =
    NOTIFICATIONS_SERVICE.grpc.expect("notifications-service serves gRPC");
const DATABASE: (&str, &str) = NOTIFICATIONS_SERVICE.database.expect("notifications-service has a database");
const ADMIN_ADDR_VAR: &str = NOTIFICATIONS_SERVICE.admin_addr_var.expect("notifications-service has fault points");

/// notifications-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = NOTIFICATIONS_SERVICE.name)]
pub struct Config {
    /// Public and internal HTTP.
    #[arg(long, env = NOTIFICATIONS_SERVICE.http.addr_var, default_value = NOTIFICATIONS_SERVICE.http.default_addr)]
    pub http_addr: SocketAddr,
    /// gRPC.
    #[arg(long, env = GRPC.addr_var, default_value = GRPC.default_addr)]
    pub grpc_addr: SocketAddr,
    /// The fault points' admin endpoint, loopback only; unset, none.
    #[arg(long, env = ADMIN_ADDR_VAR, value_parser = archlab_kernel::faults::admin::loopback_addr)]
    pub admin_addr: Option<SocketAddr>,
    /// This service's own database.
    #[arg(long, env = DATABASE.0, default_value = DATABASE.1)]
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

/// A built notifications-service; its broker consumer starts with [`Server::run_until_stopped`].
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    consumer: Consumer,
    notifications: Arc<NotificationsService>,
    handle: Handle,
}

/// What tests and the harness may reach inside a running notifications-service.
#[derive(Clone)]
pub struct Handle {
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
    /// The broker consumer's progress (acks, connection).
    pub consumer: ConsumerHandle,
}

impl Server for App {
    type Config = Config;
    type Handle = Handle;
    const NAME: &'static str = NOTIFICATIONS_SERVICE.name;

    /// Create and migrate `archlab_notifications`, bind both ports; nothing consumes yet.
    async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_notifications::migrate(&pool).await.context("migrating notifications")?;
        let faults = config.common.behaviour.faults(archlab_notifications::faults::ALL)?;
        let email = Arc::new(ExtsimEmail::new(&config.external.extsim_url, config.external.timeout()));
        let notifications = Arc::new(NotificationsService::new(pool.clone(), email, faults.clone()));

        let me = config.common.identity.service_credentials(Self::NAME);
        let router = host::service_router(
            archlab_notifications::http::router(notifications.clone()),
            archlab_remote::http::notifications_routes(notifications.clone(), &me),
            &config.common.identity,
            &pool,
        );
        let grpc = GrpcServer::new(&me).notifications(notifications.clone());
        let admin = AdminListener::bind_optional(config.admin_addr, &faults).await?;
        let host = Host::bind(config.http_addr, config.grpc_addr, &config.common.identity).await?.with_admin(admin);
        let consumer = Consumer::new(config.broker.clone());
        let handle = Handle { pool, faults, consumer: consumer.handle() };
        Ok(Self { host, router, grpc, consumer, notifications, handle })
    }

    fn addrs(&self) -> Addrs {
        self.host.addrs()
    }

    fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serve and consume the broker's queue until `shutdown` completes; the consumer lives
    /// exactly as long as the servers.
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = host::stop_on(shutdown);
        let consumer = tokio::spawn(self.consumer.run(self.notifications, stop.clone()));
        self.host.serve(self.router, self.grpc, stop, vec![consumer]).await
    }
}
