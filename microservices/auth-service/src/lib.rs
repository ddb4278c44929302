//! auth-service: credentials and sessions in their own database; signup as a saga.
//!
//! Public routes (`/api/auth/*`) come through the gateway; `AuthApi::verify_session` is
//! served over gRPC and internal HTTP to the gateway and payments. Signup calls users-service
//! (see [`signup_saga`]) and the welcome event leaves through `auth.outbox` and the relay to
//! RabbitMQ. Compare `monolith/src/app.rs` and `monolith/src/signup_tx.rs`.

pub mod signup_saga;

use anyhow::Context;
use archlab_auth::http::AuthRoutes;
use archlab_auth::{AuthService, HashGate, SessionCache};
use archlab_kernel::config::{AbuseArgs, SessionArgs};
use archlab_kernel::faults::admin::AdminListener;
use archlab_kernel::processes::AUTH_SERVICE;
use archlab_kernel::{Addrs, Faults, Server};
use archlab_remote::Relay;
use archlab_remote::broker::BrokerConfig;
use archlab_remote::grpc::GrpcServer;
use archlab_remote::host::{self, Host, Peers, ServiceArgs};
use axum::Router;
use clap::Parser;
use signup_saga::SignupSaga;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const GRPC: archlab_kernel::processes::Listener = AUTH_SERVICE.grpc.expect("auth-service serves gRPC");
const DATABASE: (&str, &str) = AUTH_SERVICE.database.expect("auth-service has a database");
const ADMIN_ADDR_VAR: &str = AUTH_SERVICE.admin_addr_var.expect("auth-service has fault points");

/// auth-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = AUTH_SERVICE.name)]
pub struct Config {
    /// Public and internal HTTP.
    #[arg(long, env = AUTH_SERVICE.http.addr_var, default_value = AUTH_SERVICE.http.default_addr)]
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
    /// Sessions and their cache.
    #[command(flatten)]
    pub sessions: SessionArgs,
    /// RabbitMQ.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// Database server, identity secret, behaviour knobs.
    #[command(flatten)]
    pub common: ServiceArgs,
    /// How it calls the other services.
    #[command(flatten)]
    pub peers: Peers,
    /// Signup and login limits: auth-service applies the per-account one and the hashing
    /// cap; the per-address one is the gateway's, which sees the client's address.
    #[command(flatten)]
    pub limits: AbuseArgs,
}

/// A built auth-service.
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    poll: Duration,
    handle: Handle,
}

/// What tests and the harness may reach inside a running auth-service.
#[derive(Clone)]
pub struct Handle {
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
    /// The outbox relay (publish pending welcomes now).
    pub relay: Relay,
    /// The signup saga (drive its recovery).
    pub saga: Arc<SignupSaga>,
    /// The cap on concurrent password hashes.
    pub hashes: HashGate,
}

impl Server for App {
    type Config = Config;
    type Handle = Handle;
    const NAME: &'static str = AUTH_SERVICE.name;

    /// Create and migrate `archlab_auth`, bind users-service's port, bind both listeners.
    async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_auth::migrate(&pool).await.context("migrating auth")?;
        signup_saga::migrate(&pool).await.context("migrating the signup saga's bookkeeping")?;
        let faults = config.common.behaviour.faults(archlab_auth::faults::ALL)?;
        let cache = SessionCache::connect_optional(config.sessions.redis_url.as_deref()).await;
        let ttl = Duration::from_secs(config.sessions.session_ttl_secs);
        let auth = Arc::new(AuthService::new(pool.clone(), cache, ttl, faults.clone()).with_limits(&config.limits));
        let hashes = auth.hash_gate().clone();
        let me = config.common.identity.service_credentials(Self::NAME);
        let users = config.peers.upstreams.users(&config.peers.client, &me)?;
        let saga = Arc::new(SignupSaga { auth: auth.clone(), users });

        let router = host::service_router(
            archlab_auth::http::router(AuthRoutes { auth: auth.clone(), signup: saga.clone() }),
            archlab_remote::http::auth_routes(auth.clone(), &me),
            &config.common.identity,
            &pool,
        );
        let grpc = GrpcServer::new(&me).auth(auth);
        let relay = archlab_remote::relay::to_broker(pool.clone(), archlab_auth::SCHEMA, &config.broker);
        let admin = AdminListener::bind_optional(config.admin_addr, &faults).await?;
        let host = Host::bind(config.http_addr, config.grpc_addr, &config.common.identity).await?.with_admin(admin);
        let poll = Duration::from_millis(config.common.behaviour.outbox_poll_ms);
        Ok(Self { host, router, grpc, poll, handle: Handle { pool, faults, relay, saga, hashes } })
    }

    fn addrs(&self) -> Addrs {
        self.host.addrs()
    }

    fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serve, relay welcomes, and recover stale signups, until `shutdown` completes.
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = host::stop_on(shutdown);
        let relay = self.handle.relay.spawn(self.poll, stop.clone());
        let recovery = self.handle.saga.clone().spawn_recovery(stop.clone());
        self.host.serve(self.router, self.grpc, stop, vec![relay, recovery]).await
    }
}
