//! users-service: the users domain alone, behind its own database and two ports.
//!
//! Public routes (`/api/users/*`, reached through the gateway) trust the gateway's signed
//! identity header; other services call `UsersApi` over gRPC or internal HTTP. Compare
//! `monolith/src/app.rs`, where the same `UsersService` is called in-process.

use anyhow::Context;
use archlab_kernel::Faults;
use archlab_remote::grpc::GrpcServer;
use archlab_remote::host::{self, Host, ServiceArgs};
use archlab_users::UsersService;
use axum::Router;
use clap::Parser;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// users-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "users-service")]
pub struct Config {
    /// Public and internal HTTP.
    #[arg(long, env = "USERS_HTTP_ADDR", default_value = "127.0.0.1:8002")]
    pub http_addr: SocketAddr,
    /// gRPC.
    #[arg(long, env = "USERS_GRPC_ADDR", default_value = "127.0.0.1:9002")]
    pub grpc_addr: SocketAddr,
    /// This service's own database.
    #[arg(long, env = "USERS_DATABASE", default_value = "archlab_users")]
    pub database: String,
    /// Database server, identity secret, behaviour knobs.
    #[command(flatten)]
    pub common: ServiceArgs,
}

/// A built users-service.
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
}

impl App {
    /// Create and migrate `archlab_users`, bind both ports, wire the routes.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_users::migrate(&pool).await.context("migrating users")?;
        let faults = config.common.behaviour.faults();
        let users = Arc::new(UsersService::new(pool.clone(), faults.clone()));

        let router = host::service_router(
            archlab_users::http::router(users.clone()),
            archlab_remote::http::users_routes(users.clone()),
            &config.common.identity,
            &pool,
        );
        let grpc = GrpcServer::new().users(users);
        let host = Host::bind(config.http_addr, config.grpc_addr).await?;
        Ok(Self { host, router, grpc, pool, faults })
    }

    /// Bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.host.http_addr()
    }

    /// Bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    /// Serve until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        self.host.serve(self.router, self.grpc, stop, Vec::new()).await
    }
}
