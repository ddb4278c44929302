//! auth-service: credentials and sessions in their own database; signup as a saga.
//!
//! Public routes (`/api/auth/*`) come through the gateway; `AuthApi::verify_session` is
//! served over gRPC and internal HTTP to the gateway and payments. Signup calls users-service
//! (see [`signup_saga`]) and the welcome event leaves through `auth.outbox` and the relay to
//! RabbitMQ. Compare `monolith/src/app.rs` and `monolith/src/signup_tx.rs`.

pub mod signup_saga;

use anyhow::Context;
use archlab_auth::http::AuthRoutes;
use archlab_auth::{AuthService, SessionCache};
use archlab_kernel::Faults;
use archlab_kernel::config::SessionArgs;
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
use tokio_util::sync::CancellationToken;

/// auth-service's environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "auth-service")]
pub struct Config {
    /// Public and internal HTTP.
    #[arg(long, env = "AUTH_HTTP_ADDR", default_value = "127.0.0.1:8001")]
    pub http_addr: SocketAddr,
    /// gRPC.
    #[arg(long, env = "AUTH_GRPC_ADDR", default_value = "127.0.0.1:9001")]
    pub grpc_addr: SocketAddr,
    /// This service's own database.
    #[arg(long, env = "AUTH_DATABASE", default_value = "archlab_auth")]
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
}

/// A built auth-service.
pub struct App {
    host: Host,
    router: Router,
    grpc: GrpcServer,
    relay: Relay,
    saga: Arc<SignupSaga>,
    poll: Duration,
    /// Its database.
    pub pool: PgPool,
    /// Its fault points.
    pub faults: Faults,
}

impl App {
    /// Create and migrate `archlab_auth`, bind users-service's port, bind both listeners.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = host::open_database(&config.common.db, &config.database).await?;
        archlab_auth::migrate(&pool).await.context("migrating auth")?;
        signup_saga::migrate(&pool).await.context("migrating the signup saga's bookkeeping")?;
        let faults = config.common.behaviour.faults();
        let cache = SessionCache::connect_optional(config.sessions.redis_url.as_deref()).await;
        let ttl = Duration::from_secs(config.sessions.session_ttl_secs);
        let auth = Arc::new(AuthService::new(pool.clone(), cache, ttl, faults.clone()));
        let saga =
            Arc::new(SignupSaga { auth: auth.clone(), users: config.peers.upstreams.users(&config.peers.client)? });

        let router = host::service_router(
            archlab_auth::http::router(AuthRoutes { auth: auth.clone(), signup: saga.clone() }),
            archlab_remote::http::auth_routes(auth.clone()),
            &config.common.identity,
            &pool,
        );
        let grpc = GrpcServer::new().auth(auth);
        let relay = archlab_remote::relay::to_broker(pool.clone(), archlab_auth::SCHEMA, &config.broker);
        let host = Host::bind(config.http_addr, config.grpc_addr).await?;
        let poll = Duration::from_millis(config.common.behaviour.outbox_poll_ms);
        Ok(Self { host, router, grpc, relay, saga, poll, pool, faults })
    }

    /// Bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.host.http_addr()
    }

    /// Bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.host.grpc_addr()
    }

    /// The outbox relay (tests and the harness publish pending welcomes through it).
    pub fn relay(&self) -> Relay {
        self.relay.clone()
    }

    /// The signup saga (tests drive its recovery).
    pub fn saga(&self) -> Arc<SignupSaga> {
        self.saga.clone()
    }

    /// Serve, relay, and recover stale signups in the background, until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let relay = self.relay.spawn(self.poll, stop.clone());
        let recovery = self.saga.clone().spawn_recovery(stop.clone());
        self.host.serve(self.router, self.grpc, stop, vec![relay, recovery]).await
    }
}
