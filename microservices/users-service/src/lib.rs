//! users-service: the users domain alone, behind its own database and two ports.
//!
//! Public routes (`/api/users/*`, reached through the gateway) trust the gateway's signed
//! identity header; other services call `UsersApi` over gRPC or internal HTTP. Compare
//! `monolith/src/app.rs`, where the same `UsersService` is called in-process.

use anyhow::Context;
use archlab_kernel::faults::admin::AdminListener;
use archlab_kernel::processes::USERS_SERVICE;
use archlab_kernel::{Addrs, Faults, Server};
use archlab_remote::grpc::GrpcServer;
use archlab_remote::host::{self, Host, ServiceArgs};
use archlab_users::UsersService;
use axum::Router;
use clap::Parser;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;

const GRPC: archlab_kernel::processes::Listener = USERS_SERVICE.grpc.expect("users-service serves gRPC");
const DATABASE: (&str, &str) = USERS_SERVICE.database.expect("users-service has a database");
const ADMIN_ADDR_VAR: &str = USERS_SERVICE.admin_addr_var.expect("users-service has fault points");

/// users-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = USERS_SERVICE.name)]
pub struct Config {
    /// Public and internal HTTP.
    #[arg(long, env = USERS_SERVICE.http.addr_var, default_value = USERS_SERVICE.http.default_addr)]
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
    /// Database server, identity secret, behaviour knobs.
    #[command(flatten)]
    pub common: ServiceArgs,
}

/// A built users-service.
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    handle: Handle,
}

/// What tests may reach inside a running users-service.
#[derive(Clone)]
pub struct Handle {
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
}

impl Server for App {
    type Config = Config;
    type Handle = Handle;
    const NAME: &'static str = USERS_SERVICE.name;

    /// Create and migrate `archlab_users`, bind both ports, wire the routes.
    async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_users::migrate(&pool).await.context("migrating users")?;
        let faults = config.common.behaviour.faults(archlab_users::faults::ALL)?;
        let users = Arc::new(UsersService::new(pool.clone(), faults.clone()));

        let me = config.common.identity.service_credentials(Self::NAME);
        let router = host::service_router(
            archlab_users::http::router(users.clone()),
            archlab_remote::http::users_routes(users.clone(), &me),
            &config.common.identity,
            &pool,
        );
        let grpc = GrpcServer::new(&me).users(users);
        let admin = AdminListener::bind_optional(config.admin_addr, &faults).await?;
        let host = Host::bind(config.http_addr, config.grpc_addr, &config.common.identity).await?.with_admin(admin);
        Ok(Self { host, router, grpc, handle: Handle { pool, faults } })
    }

    fn addrs(&self) -> Addrs {
        self.host.addrs()
    }

    fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serve until `shutdown` completes.
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.host.serve(self.router, self.grpc, host::stop_on(shutdown), Vec::new()).await
    }
}
