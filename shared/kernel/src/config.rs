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

/// The payments reconciler (`archlab_payments::Reconciler`), which the monolith and
/// payments-service run under the same variables: every `RECONCILE_INTERVAL_MS` it settles
/// the payments no flow has touched for `RECONCILE_AFTER_MS` (docs/architecture.md,
/// "Payments left in doubt").
#[derive(Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileArgs {
    /// How often the reconciler looks for payments left in doubt, in milliseconds. `0`: it
    /// never runs (the in-doubt payments stay as they are, for an experiment to show).
    #[arg(long, env = "RECONCILE_INTERVAL_MS", default_value_t = ReconcileArgs::DEFAULT.reconcile_interval_ms)]
    pub reconcile_interval_ms: u64,
    /// How long a payment must be left alone (no purchase attempt working on it) before the
    /// reconciler settles it, in milliseconds; must exceed `EXTERNAL_TIMEOUT_MS`.
    #[arg(long, env = "RECONCILE_AFTER_MS", default_value_t = ReconcileArgs::DEFAULT.reconcile_after_ms)]
    pub reconcile_after_ms: u64,
}

impl ReconcileArgs {
    /// The defaults. The bound, 30 s, is six times the default provider timeout (5 s): a
    /// purchase's charge has answered or timed out long before, with room for the database
    /// steps around it and for a provider slow to finish a request its caller abandoned.
    /// Every 10 s, a payment left in doubt is settled within 40 s of its last attempt.
    pub const DEFAULT: ReconcileArgs = ReconcileArgs { reconcile_interval_ms: 10_000, reconcile_after_ms: 30_000 };

    /// The pause between passes; `None` when the reconciler is off.
    pub fn interval(&self) -> Option<Duration> {
        (self.reconcile_interval_ms > 0).then(|| Duration::from_millis(self.reconcile_interval_ms))
    }

    /// How long a payment is left alone before it is reconciled.
    pub fn after(&self) -> Duration {
        Duration::from_millis(self.reconcile_after_ms)
    }

    /// Refuse a bound that a live purchase's charge could outlast: the reconciler would then
    /// ask the provider while the charge may still be in flight.
    pub fn check(&self, external: &ExternalArgs) -> Result<(), String> {
        if self.interval().is_some() && self.reconcile_after_ms <= external.external_timeout_ms {
            return Err(format!(
                "RECONCILE_AFTER_MS ({}) must exceed EXTERNAL_TIMEOUT_MS ({}): a purchase's charge may take that long",
                self.reconcile_after_ms, external.external_timeout_ms
            ));
        }
        Ok(())
    }
}

impl Default for ReconcileArgs {
    fn default() -> Self {
        Self::DEFAULT
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
    /// Fault points that fail every call from the start, comma-separated (e.g.
    /// `notifications.deliver`); a name outside the registry stops the start, listing the
    /// registered ones (see `crate::faults::points`).
    #[arg(long, env = "ARCHLAB_FAULTS", default_value = "", value_parser = crate::faults::checked_list)]
    pub faults: String,
}

/// The limits that bound abuse of signup and login, read under the same names by both
/// builds (docs/api.md, "Limits", states the numbers). Each build applies a limit where its
/// fact is known: the client's address at the public edge (the monolith, the gateway), the
/// account and the hashing inside the auth domain (the monolith, auth-service). `0` switches
/// a limit off, as the load generator and benchmarks do explicitly.
#[derive(Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbuseArgs {
    /// Signup and login requests one client address may make per minute, together (a burst
    /// of as many, then one more every 60 s / N). `0`: no limit.
    #[arg(long, env = "AUTH_LIMIT_PER_ADDRESS_PER_MINUTE", default_value_t = AbuseArgs::DEFAULT.auth_limit_per_address_per_minute)]
    pub auth_limit_per_address_per_minute: u32,
    /// Signup and login attempts for one e-mail address per hour, together (a burst of as
    /// many, then one more every 3600 s / N). `0`: no limit.
    #[arg(long, env = "AUTH_LIMIT_PER_ACCOUNT_PER_HOUR", default_value_t = AbuseArgs::DEFAULT.auth_limit_per_account_per_hour)]
    pub auth_limit_per_account_per_hour: u32,
    /// Password hashes (argon2id, 19 MiB each) computed at once per process. `0`: no cap.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", default_value_t = AbuseArgs::DEFAULT.password_hash_concurrency)]
    pub password_hash_concurrency: u32,
    /// How long a signup or login may queue for a hashing slot before it is shed with 503, in
    /// milliseconds.
    #[arg(long, env = "PASSWORD_HASH_WAIT_MS", default_value_t = AbuseArgs::DEFAULT.password_hash_wait_ms)]
    pub password_hash_wait_ms: u64,
}

impl AbuseArgs {
    /// The defaults: a person, or a test suite with an instance of its own, never meets them;
    /// a brute-force run does within its first seconds.
    pub const DEFAULT: AbuseArgs = AbuseArgs {
        auth_limit_per_address_per_minute: 120,
        auth_limit_per_account_per_hour: 20,
        password_hash_concurrency: 4,
        password_hash_wait_ms: 1_000,
    };

    /// Every limit off: for load generators and benchmarks, which must say so in their reports.
    pub const OFF: AbuseArgs = AbuseArgs {
        auth_limit_per_address_per_minute: 0,
        auth_limit_per_account_per_hour: 0,
        password_hash_concurrency: 0,
        password_hash_wait_ms: 0,
    };

    /// The hashing queue's bound as a duration.
    pub fn password_hash_wait(&self) -> Duration {
        Duration::from_millis(self.password_hash_wait_ms)
    }
}

impl Default for AbuseArgs {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl BehaviourArgs {
    /// The fault points of a process that reaches the points `here` (its domains'
    /// `faults::ALL`), with those `ARCHLAB_FAULTS` names set to fail every call; an
    /// unregistered name is refused.
    pub fn faults(&self, here: &[&str]) -> anyhow::Result<Faults> {
        let faults = Faults::hosting(here);
        faults.set_list(&self.faults).map_err(|e| anyhow::anyhow!("ARCHLAB_FAULTS: {}", e.message))?;
        Ok(faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn external(external_timeout_ms: u64) -> ExternalArgs {
        ExternalArgs { extsim_url: EXTSIM.http.default_url.to_owned(), external_timeout_ms }
    }

    #[test]
    fn the_reconcile_bound_must_exceed_the_provider_timeout() {
        assert_eq!(ReconcileArgs::DEFAULT.check(&external(5_000)), Ok(()), "the defaults go together");
        let tight = ReconcileArgs { reconcile_interval_ms: 1_000, reconcile_after_ms: 5_000 };
        assert!(tight.check(&external(5_000)).unwrap_err().contains("EXTERNAL_TIMEOUT_MS"));
        assert_eq!(tight.check(&external(4_999)), Ok(()));
        // Off: no bound to keep.
        let off = ReconcileArgs { reconcile_interval_ms: 0, ..tight };
        assert_eq!(off.interval(), None);
        assert_eq!(off.check(&external(60_000)), Ok(()));
    }
}
