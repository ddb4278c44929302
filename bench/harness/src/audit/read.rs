//! Reading a build's databases and extsim's logs into a [`Snapshot`].
//!
//! The order is part of the audit's correctness: the clock is read first (`now`), then the
//! databases, then extsim. Every promise the checks test runs the same way in time — a
//! payment row before its charge, a charge before its `succeeded`, an email before its
//! notification, credentials before a profile — so whatever the databases show as done was
//! already done at extsim when extsim is read after them, and anything that began after
//! `now` is younger than any settle bound and left alone. Each database is read in one
//! read-only, repeatable-read transaction: the monolith's four schemas are one consistent
//! picture, the microservices' four databases four pictures taken one after another.

use super::check::{Compensation, Credential, Notification, Payment, Profile, Snapshot};
use crate::topology::{Kind, Module};
use anyhow::Context;
use archlab_kernel::processes::{self, ProcessSpec};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// How long one connection or one call to extsim may take before the audit gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Which database holds each domain's tables: one for all four in the monolith, one each in
/// the microservices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Databases {
    /// `auth.*` (and, in the microservices, `saga.*`).
    pub auth: String,
    /// `users.*`.
    pub users: String,
    /// `payments.*`.
    pub payments: String,
    /// `notifications.*`.
    pub notifications: String,
}

/// Database names given on the command line, each overriding the topology's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The monolith's one database.
    pub monolith: Option<String>,
    /// auth-service's.
    pub auth: Option<String>,
    /// users-service's.
    pub users: Option<String>,
    /// payments-service's.
    pub payments: Option<String>,
    /// notifications-service's.
    pub notifications: Option<String>,
}

impl Databases {
    /// The databases of `kind` as its processes would name them: the override, else the
    /// variable the process reads (`MONOLITH_DATABASE`, `AUTH_DATABASE`, ...) through `env`,
    /// else the process's default (`shared/kernel/src/processes.rs`).
    pub fn resolve(kind: Kind, overrides: &Overrides, env: impl Fn(&str) -> Option<String>) -> Self {
        let name = |spec: ProcessSpec, given: &Option<String>| {
            let (var, default) = spec.database.expect("every process named here has a database");
            given.clone().or_else(|| env(var).filter(|v| !v.is_empty())).unwrap_or_else(|| default.to_owned())
        };
        match kind {
            Kind::Monolith => {
                let one = name(processes::MONOLITH, &overrides.monolith);
                Self { auth: one.clone(), users: one.clone(), payments: one.clone(), notifications: one }
            }
            Kind::Micro => Self {
                auth: name(processes::AUTH_SERVICE, &overrides.auth),
                users: name(processes::USERS_SERVICE, &overrides.users),
                payments: name(processes::PAYMENTS_SERVICE, &overrides.payments),
                notifications: name(processes::NOTIFICATIONS_SERVICE, &overrides.notifications),
            },
            // The core keeps the monolith's database; which module is out, `EXTRACT` says,
            // as it tells the core.
            Kind::Hybrid => {
                let core = name(processes::HYBRID, &overrides.monolith);
                let mut databases =
                    Self { auth: core.clone(), users: core.clone(), payments: core.clone(), notifications: core };
                match env("EXTRACT")
                    .and_then(|v| <Module as clap::ValueEnum>::from_str(&v, false).ok())
                    .unwrap_or(Module::Notifications)
                {
                    Module::Notifications => {
                        databases.notifications = name(processes::NOTIFICATIONS_SERVICE, &overrides.notifications)
                    }
                    Module::Payments => databases.payments = name(processes::PAYMENTS_SERVICE, &overrides.payments),
                }
                databases
            }
        }
    }

    /// Each distinct database once, with the domains it holds, in reading order.
    fn grouped(&self) -> Vec<(&str, Vec<Domain>)> {
        let mut groups: Vec<(&str, Vec<Domain>)> = Vec::new();
        for (name, domain) in [
            (&self.auth, Domain::Auth),
            (&self.users, Domain::Users),
            (&self.payments, Domain::Payments),
            (&self.notifications, Domain::Notifications),
        ] {
            match groups.iter_mut().find(|(n, _)| *n == name.as_str()) {
                Some((_, domains)) => domains.push(domain),
                None => groups.push((name.as_str(), vec![domain])),
            }
        }
        groups
    }

    /// The distinct names, for messages.
    pub fn names(&self) -> Vec<&str> {
        self.grouped().into_iter().map(|(name, _)| name).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    Auth,
    Users,
    Payments,
    Notifications,
}

/// Read `kind`'s databases on the server at `database_url`, then extsim at `extsim_url`.
pub async fn snapshot(
    kind: Kind,
    database_url: &str,
    databases: &Databases,
    extsim_url: &str,
) -> anyhow::Result<Snapshot> {
    let now = Utc::now();
    let mut snapshot = Snapshot::empty(now);
    for (name, domains) in databases.grouped() {
        read_database(kind, database_url, name, &domains, &mut snapshot)
            .await
            .with_context(|| format!("reading database {name}"))?;
    }
    let extsim = archlab_extsim::Client::new(extsim_url);
    snapshot.charges = tokio::time::timeout(CALL_TIMEOUT, extsim.charges())
        .await
        .context("extsim did not answer in time")?
        .with_context(|| format!("reading the charges at {extsim_url}/v1/charges"))?;
    snapshot.emails = tokio::time::timeout(CALL_TIMEOUT, extsim.emails())
        .await
        .context("extsim did not answer in time")?
        .with_context(|| format!("reading the emails at {extsim_url}/v1/emails"))?;
    Ok(snapshot)
}

async fn read_database(
    kind: Kind,
    database_url: &str,
    name: &str,
    domains: &[Domain],
    into: &mut Snapshot,
) -> anyhow::Result<()> {
    // Never created here: a database that is missing is a wrong name, not an empty build.
    let options = PgConnectOptions::from_str(database_url)
        .with_context(|| format!("DATABASE_URL {database_url:?} is not a PostgreSQL URL"))?
        .database(name);
    let mut conn: PgConnection = tokio::time::timeout(CALL_TIMEOUT, options.connect())
        .await
        .context("connecting took too long")?
        .context("connecting (is the build's database named so? see `archlab audit --help`)")?;
    let mut tx = conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    for domain in domains {
        match domain {
            Domain::Auth => {
                into.credentials = credentials(&mut tx).await?;
                // The saga's bookkeeping exists in auth-service's database only.
                if kind == Kind::Micro {
                    into.compensations = compensations(&mut tx).await?;
                }
            }
            Domain::Users => into.profiles = profiles(&mut tx).await?,
            Domain::Payments => into.payments = payments(&mut tx).await?,
            Domain::Notifications => into.notifications = notifications(&mut tx).await?,
        }
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(())
}

/// A stored status as its domain enum; the migrations' CHECK constraints make anything else
/// a schema the audit does not know.
fn status<T: serde::de::DeserializeOwned>(table: &str, stored: &str) -> anyhow::Result<T> {
    archlab_kernel::wire::parse(stored).with_context(|| format!("{table} holds an unknown status {stored:?}"))
}

async fn credentials(conn: &mut PgConnection) -> anyhow::Result<Vec<Credential>> {
    let rows: Vec<(Uuid, String, DateTime<Utc>)> =
        sqlx::query_as("SELECT user_id, status, created_at FROM auth.credentials").fetch_all(conn).await?;
    rows.into_iter()
        .map(|(user_id, stored, created_at)| {
            Ok(Credential { user_id, status: status("auth.credentials", &stored)?, created_at })
        })
        .collect()
}

async fn compensations(conn: &mut PgConnection) -> anyhow::Result<Vec<Compensation>> {
    let rows: Vec<(Uuid, DateTime<Utc>, i32, Option<String>)> =
        sqlx::query_as("SELECT user_id, created_at, attempts, last_error FROM saga.signup_compensations")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(user_id, created_at, attempts, last_error)| Compensation { user_id, created_at, attempts, last_error })
        .collect())
}

async fn profiles(conn: &mut PgConnection) -> anyhow::Result<Vec<Profile>> {
    let rows: Vec<(Uuid, DateTime<Utc>)> =
        sqlx::query_as("SELECT user_id, created_at FROM users.profiles").fetch_all(conn).await?;
    Ok(rows.into_iter().map(|(user_id, created_at)| Profile { user_id, created_at }).collect())
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    payment_id: Uuid,
    user_id: Uuid,
    idempotency_key: String,
    amount_cents: i64,
    currency: String,
    status: String,
    provider_charge_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn payments(conn: &mut PgConnection) -> anyhow::Result<Vec<Payment>> {
    let rows: Vec<PaymentRow> = sqlx::query_as(
        "SELECT payment_id, user_id, idempotency_key, amount_cents, currency, status, provider_charge_id,
                created_at, updated_at
         FROM payments.payments",
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Payment {
                payment_id: r.payment_id,
                user_id: r.user_id,
                idempotency_key: r.idempotency_key,
                amount_cents: r.amount_cents,
                currency: r.currency,
                status: status("payments.payments", &r.status)?,
                provider_charge_id: r.provider_charge_id,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    notification_id: Uuid,
    event_id: Uuid,
    user_id: Uuid,
    kind: String,
    payment_id: Option<Uuid>,
    email_id: Option<String>,
    created_at: DateTime<Utc>,
}

async fn notifications(conn: &mut PgConnection) -> anyhow::Result<Vec<Notification>> {
    let rows: Vec<NotificationRow> = sqlx::query_as(
        "SELECT notification_id, event_id, user_id, kind, payment_id, email_id, created_at
         FROM notifications.notifications",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Notification {
            notification_id: r.notification_id,
            event_id: r.event_id,
            user_id: r.user_id,
            kind: r.kind,
            payment_id: r.payment_id,
            email_id: r.email_id,
            created_at: r.created_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn database_names_default_as_the_processes_do() {
        let mono = Databases::resolve(Kind::Monolith, &Overrides::default(), env(&[]));
        assert_eq!(mono.names(), ["archlab_monolith"], "the monolith: one database for the four domains");
        let micro = Databases::resolve(Kind::Micro, &Overrides::default(), env(&[]));
        assert_eq!(micro.names(), ["archlab_auth", "archlab_users", "archlab_payments", "archlab_notifications"]);
    }

    #[test]
    fn a_flag_beats_the_variable_which_beats_the_default() {
        let vars = env(&[("MONOLITH_DATABASE", "from_env"), ("USERS_DATABASE", "users_env"), ("AUTH_DATABASE", "")]);
        let overrides = Overrides { users: Some("users_flag".into()), ..Overrides::default() };
        let mono = Databases::resolve(Kind::Monolith, &overrides, &vars);
        assert_eq!(mono.names(), ["from_env"]);
        let micro = Databases::resolve(Kind::Micro, &overrides, &vars);
        // An empty variable counts as unset, as it does for the binaries.
        assert_eq!(micro.names(), ["archlab_auth", "users_flag", "archlab_payments", "archlab_notifications"]);
    }
}
