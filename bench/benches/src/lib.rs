//! What the criterion benchmarks under `benches/` share: the floors, the port under test and
//! the tracing subscriber they toggle. `make bench` runs them; docs/benchmarks.md says what
//! each one measures and what it measured.
//!
//! # Layout
//! - [`pb`]: the bench-only protobuf messages (`proto/bench.proto`): the echo service of the
//!   gRPC floor and wire twins of the payment messages for the `codec` bench.
//! - [`FakeAuth`]: an in-memory `AuthApi`, so `hop` measures the hop and not SQL.
//! - [`serve_auth_grpc`], [`serve_auth_http`]: that port behind archlab-remote's real servers.
//! - [`serve_echo`], [`serve_hello`]: the floors, a bare tonic echo and a bare axum handler.
//! - [`traced`]: the subscriber the binaries install, writing to a sink.
//! - [`drop_database`]: what every bench that created a database calls at its end.

use anyhow::Context;
use archlab_auth::{AuthApi, Session};
use archlab_kernel::{Error, Result};
use archlab_remote::ServiceCredentials;
use archlab_remote::grpc::GrpcServer;
use async_trait::async_trait;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;

/// The bench-only protobuf package `archlab.bench.v1`.
pub mod pb {
    tonic::include_proto!("archlab.bench.v1");
}

/// The `INTERNAL_SECRET` the hop benches' client and server share.
pub const SECRET: &[u8] = b"archlab-bench-secret";

/// The one token [`FakeAuth`] knows (64 lower-case hex characters, the shape auth issues).
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `AuthApi` over a single session held in memory: the port the `hop` bench calls, so that
/// what it measures is the call's way there and back, not a database lookup.
pub struct FakeAuth {
    session: Session,
}

impl Default for FakeAuth {
    fn default() -> Self {
        let expires_at = chrono::DateTime::from_timestamp(4_102_444_800, 0).unwrap_or_default();
        Self { session: Session { user_id: uuid::Uuid::from_u128(0x5eed), expires_at } }
    }
}

impl FakeAuth {
    /// The session [`TOKEN`] stands for.
    pub fn session(&self) -> Session {
        self.session
    }
}

#[async_trait]
impl AuthApi for FakeAuth {
    // The span auth's real service opens, so the traced variants record as many spans.
    #[tracing::instrument(name = "auth.verify_session", skip_all, err)]
    async fn verify_session(&self, token: &str) -> Result<Session> {
        if token == TOKEN { Ok(self.session) } else { Err(Error::unauthorized("unknown token")) }
    }
}

/// Bind `127.0.0.1:0`: every bench server listens on loopback only.
async fn bind_loopback() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.context("bind a loopback port")?;
    let addr = listener.local_addr().context("read the bound address")?;
    Ok((listener, addr))
}

/// Serve `api` as `archlab.auth.v1.Auth` through archlab-remote's [`GrpcServer`] (as
/// auth-service does) in a task of the current runtime; its base URL.
pub async fn serve_auth_grpc(api: Arc<dyn AuthApi>) -> anyhow::Result<String> {
    let (listener, addr) = bind_loopback().await?;
    let host = ServiceCredentials::new(archlab_remote::grpc::AUTH_SERVICE, SECRET);
    let server = GrpcServer::new(&host).auth(api);
    tokio::spawn(server.serve(listener, std::future::pending()));
    Ok(format!("http://{addr}"))
}

/// Serve `api` as `POST /internal/auth/verify-session` through archlab-remote's
/// [`archlab_remote::http::auth_routes`] (as auth-service does); its base URL.
pub async fn serve_auth_http(api: Arc<dyn AuthApi>) -> anyhow::Result<String> {
    let host = ServiceCredentials::new(archlab_remote::grpc::AUTH_SERVICE, SECRET);
    serve_router(archlab_remote::http::auth_routes(api, &host)).await
}

/// Serve `router` on a loopback port in a task of the current runtime; its base URL.
pub async fn serve_router(router: axum::Router) -> anyhow::Result<String> {
    let (listener, addr) = bind_loopback().await?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

/// The HTTP floor: `GET /hello` answering a fixed text, no layers; its base URL.
pub async fn serve_hello() -> anyhow::Result<String> {
    serve_router(axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }))).await
}

/// The echo service: answers what it is sent.
struct Echo;

#[tonic::async_trait]
impl pb::echo_server::Echo for Echo {
    async fn echo(
        &self,
        request: tonic::Request<pb::EchoMessage>,
    ) -> std::result::Result<tonic::Response<pb::EchoMessage>, tonic::Status> {
        Ok(tonic::Response::new(request.into_inner()))
    }
}

/// The gRPC floor: a bare tonic server of [`pb::echo_server::Echo`], no layers; its URL.
pub async fn serve_echo() -> anyhow::Result<String> {
    let (listener, addr) = bind_loopback().await?;
    let server = tonic::transport::Server::builder()
        .add_service(pb::echo_server::EchoServer::new(Echo))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    Ok(format!("http://{addr}"))
}

/// The subscriber every archlab binary installs (archlab-telemetry: `fmt` filtered at
/// `info`), writing to a sink: spans are created, entered and recorded, nothing is printed.
pub fn traced() -> Dispatch {
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("info"))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink).with_ansi(false));
    Dispatch::new(subscriber)
}

/// The name of the database `pool` is connected to.
pub async fn database_name(pool: &sqlx::PgPool) -> anyhow::Result<String> {
    sqlx::query_scalar("SELECT current_database()").fetch_one(pool).await.context("name the database")
}

/// Drop database `name` on the server at `server_url`, closing every connection to it first
/// (`WITH (FORCE)`). Only the `archlab_test_*` databases benches create may be dropped.
pub async fn drop_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::ConnectOptions;
    if !name.starts_with("archlab_test_") || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        anyhow::bail!("refusing to drop {name:?}: benches only drop the archlab_test_* databases they created");
    }
    let mut admin = sqlx::postgres::PgConnectOptions::from_str(server_url)
        .context("parse the database URL")?
        .database("postgres")
        .connect()
        .await
        .context("connect to the postgres database")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .with_context(|| format!("drop database {name}"))?;
    Ok(())
}
