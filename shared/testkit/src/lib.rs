//! Test support shared by every crate's tests: real services, fresh databases, extsim.
//!
//! Tests use the machine's real PostgreSQL, Redis and RabbitMQ, found through the same
//! environment variables the binaries read (`DATABASE_URL`, `REDIS_URL`, `AMQP_URL`), with
//! the standard local defaults. Each test gets a database of its own, created fresh, so tests
//! run in parallel without seeing each other's rows.
//!
//! With the `containers` feature, when a URL is not given and a Docker engine is reachable,
//! the services are started in containers instead (testcontainers), once per test process.
//!
//! # Layout
//! - this file: the services' URLs, fresh databases, [`extsim`] (a simulator on a loopback
//!   port; any archlab process starts the same way, with `archlab_kernel::server::spawn`).
//! - [`proxy`]: [`TcpProxy`], a loopback TCP fault proxy a test cuts and restores, or loads
//!   with Toxiproxy's toxics (latency, timeout, reset_peer, ...), to break or slow a
//!   connection (to the database, the broker, a service) on purpose; [`proxy::api`] serves
//!   Toxiproxy's HTTP API over such proxies.
//! - `process`: [`process::Child`], a workspace binary as a real child process, and its
//!   CPU time and resident memory read from `/proc`.
//! - `traced`: [`traced::spawn`], a server on a thread, runtime, subscriber and tracer
//!   provider of its own, so its spans leave under its own `service.name`.
//! - `containers` (feature `containers`): the services in testcontainers.

#[cfg(feature = "containers")]
mod containers;
pub mod process;
pub mod proxy;
pub mod traced;

use archlab_kernel::server::Running;
pub use proxy::TcpProxy;
use std::net::SocketAddr;

/// Default PostgreSQL server (no database name).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432";
/// Default Redis.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Default RabbitMQ.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn service_url(var: &str, default: &str, _which: &str) -> String {
    if let Ok(url) = std::env::var(var) {
        return url;
    }
    #[cfg(feature = "containers")]
    if let Some(url) = containers::url(_which).await {
        return url;
    }
    default.to_owned()
}

/// The PostgreSQL server tests use: `DATABASE_URL`, a container, or the local default.
pub async fn database_url() -> String {
    service_url("DATABASE_URL", DEFAULT_DATABASE_URL, "postgres").await
}

/// The Redis tests use: `REDIS_URL`, a container, or the local default.
pub async fn redis_url() -> String {
    service_url("REDIS_URL", DEFAULT_REDIS_URL, "redis").await
}

/// The RabbitMQ tests use: `AMQP_URL`, a container, or the local default.
pub async fn amqp_url() -> String {
    service_url("AMQP_URL", DEFAULT_AMQP_URL, "rabbitmq").await
}

/// A database name no other test uses: `archlab_test_<prefix>_<random>`.
pub fn fresh_database_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("archlab_test_{prefix}_{}", &id[..16])
}

/// A pool on a freshly created, empty database (migrations are the caller's business).
pub async fn fresh_pool(prefix: &str) -> sqlx::PgPool {
    let url = database_url().await;
    let name = fresh_database_name(prefix);
    archlab_kernel::db::connect(&url, &name, 5)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name} on {url}: {e} (is PostgreSQL running? see deploy/local/ensure-services.sh)"))
}

/// An extsim serving on a loopback port for the life of this value.
pub struct Extsim {
    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// A client for its logs and admin API.
    pub client: archlab_extsim::Client,
    /// Its address.
    pub addr: SocketAddr,
    /// Stops it when dropped.
    _server: Running<archlab_extsim::AppState>,
}

/// Start an extsim on `127.0.0.1:0`.
pub async fn extsim() -> Extsim {
    let server = archlab_extsim::spawn_local().await.expect("start extsim");
    let url = server.addrs.http_url();
    Extsim { client: archlab_extsim::Client::new(url.clone()), url, addr: server.addrs.http, _server: server }
}
