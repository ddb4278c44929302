//! Configuration groups both builds share, with the same environment variable names, so
//! every experiment turns the same knobs on either side. Each binary flattens the groups it
//! needs into its own `clap` parser.

use crate::Faults;
use clap::Args;
use std::str::FromStr;
use std::time::Duration;

/// How notifications are delivered (`NOTIFICATION_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationMode {
    /// The request waits for the notification; its failure fails the request.
    Sync,
    /// Outbox + worker or broker: the request succeeds, the notification arrives later.
    Async,
}

impl FromStr for NotificationMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sync" => Ok(Self::Sync),
            "async" => Ok(Self::Async),
            other => Err(format!("must be 'sync' or 'async', not {other:?}")),
        }
    }
}

impl std::fmt::Display for NotificationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sync => "sync",
            Self::Async => "async",
        })
    }
}

/// PostgreSQL server and pool size.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Server URL without a database name; databases are created on it if missing.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_url: String,
    /// Connections per pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
}

impl DatabaseArgs {
    /// Create database `name` on this server if missing and open a pool to it.
    pub async fn open(&self, name: &str) -> Result<sqlx::PgPool, sqlx::Error> {
        crate::db::connect(&self.database_url, name, self.db_max_connections).await
    }
}

/// The simulated third parties.
#[derive(Args, Debug, Clone)]
pub struct ExternalArgs {
    /// extsim's base URL (payment and email APIs).
    #[arg(long, env = "EXTSIM_URL", default_value = "http://127.0.0.1:8090")]
    pub extsim_url: String,
    /// Timeout of each call to a third party, in milliseconds.
    #[arg(long, env = "EXTERNAL_TIMEOUT_MS", default_value_t = 5000)]
    pub external_timeout_ms: u64,
}

impl ExternalArgs {
    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.external_timeout_ms)
    }
}

/// Sessions and their optional cache.
#[derive(Args, Debug, Clone)]
pub struct SessionArgs {
    /// Redis for the session cache (cache-aside); unset means no cache.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Session lifetime in seconds.
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 86_400)]
    pub session_ttl_secs: u64,
}

/// Behaviour knobs shared by both builds.
#[derive(Args, Debug, Clone)]
pub struct BehaviourArgs {
    /// `sync` or `async` notification delivery.
    #[arg(long, env = "NOTIFICATION_MODE", default_value = "async")]
    pub notification_mode: NotificationMode,
    /// Outbox safety-net poll interval in milliseconds (workers are also woken at commit).
    #[arg(long, env = "OUTBOX_POLL_MS", default_value_t = 1000)]
    pub outbox_poll_ms: u64,
    /// Fault points switched on at start-up, comma-separated (e.g. `notifications.deliver`).
    #[arg(long, env = "ARCHLAB_FAULTS", default_value = "")]
    pub faults: String,
}

impl BehaviourArgs {
    /// The fault set these args switch on.
    pub fn faults(&self) -> Faults {
        Faults::from_list(&self.faults)
    }
}
