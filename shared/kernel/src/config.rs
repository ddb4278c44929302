//! Configuration groups both builds share, with the same environment variable names, so
//! every experiment turns the same knobs on either side. Each binary flattens the groups it
//! needs into its own `clap` parser.

use crate::Faults;
use crate::processes::EXTSIM;
use clap::Args;
use std::str::FromStr;
use std::time::Duration;

/// How notifications are delivered (`NOTIFICATION_MODE`), in both builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NotificationMode {
    /// The request waits for the notification; its failure fails the request.
    Sync,
    /// Outbox + worker or broker: the request succeeds, the notification arrives later.
    #[default]
    Async,
}

/// How the microservices call each other (`INTERNAL_TRANSPORT`); the monolith has no
/// internal calls and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transport {
    /// tonic over HTTP/2 (the default).
    #[default]
    Grpc,
    /// JSON over HTTP/1.1 (reqwest and axum).
    Http,
}

/// The one spelling of a [`clap::ValueEnum`] value: what `--help` lists, what the
/// variables accept, what `Display` prints and `FromStr` parses.
macro_rules! spelled_by_clap {
    ($($ty:ty),*) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let value = clap::ValueEnum::to_possible_value(self).expect("no value is skipped");
                f.write_str(value.get_name())
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <Self as clap::ValueEnum>::from_str(s, false)
            }
        }
    )*};
}
spelled_by_clap!(NotificationMode, Transport);

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
    #[arg(long, env = EXTSIM.http.url_var, default_value = EXTSIM.http.default_url)]
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
    #[arg(long, env = "NOTIFICATION_MODE", value_enum, default_value_t)]
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
