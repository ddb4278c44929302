//! `archlab audit`: a consistency checker across a build's databases and the third parties,
//! in the manner of Jepsen's bank and queue checkers.
//!
//! After a load or a chaos experiment it reads every database of the build (the monolith's
//! one database with a schema per module, or the microservices' database per service) and
//! extsim's charge and email logs, and reports every broken promise: lost, double, orphan and
//! uncharged payments, payments in doubt, orphan credentials and profiles, stalled signups
//! and unpaid saga compensations, missing, duplicate and orphan notifications, and missing
//! or duplicate emails. It exits 1 on any violation and 0 when the build is clean.
//!
//! `read` takes the [`check::Snapshot`]; `check` holds the rules as pure functions over it.
//! docs/audit.md describes each rule and what the settle bound means for it.

pub mod check;
pub mod read;

use crate::topology::Kind;
use anyhow::bail;
use archlab_kernel::processes::EXTSIM;
use check::{Snapshot, Violation, ViolationKind};
use chrono::{DateTime, Utc};
use read::{Databases, Overrides};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Arguments of `archlab audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Which build's databases to read.
    #[arg(value_enum)]
    pub build: Kind,
    /// The hybrid's extracted module, whose rows are in its service's database
    /// [default: EXTRACT, else notifications].
    #[arg(long, value_enum, env = "EXTRACT")]
    pub extract: Option<crate::topology::Module>,
    /// PostgreSQL server URL without a database (the builds' `DATABASE_URL`).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_url: String,
    /// The monolith's database [default: MONOLITH_DATABASE, else archlab_monolith].
    #[arg(long, value_name = "NAME")]
    pub monolith_database: Option<String>,
    /// auth-service's database [default: AUTH_DATABASE, else archlab_auth].
    #[arg(long, value_name = "NAME")]
    pub auth_database: Option<String>,
    /// users-service's database [default: USERS_DATABASE, else archlab_users].
    #[arg(long, value_name = "NAME")]
    pub users_database: Option<String>,
    /// payments-service's database [default: PAYMENTS_DATABASE, else archlab_payments].
    #[arg(long, value_name = "NAME")]
    pub payments_database: Option<String>,
    /// notifications-service's database [default: NOTIFICATIONS_DATABASE, else archlab_notifications].
    #[arg(long, value_name = "NAME")]
    pub notifications_database: Option<String>,
    /// extsim, whose charge and email logs are the third parties' side of the books.
    #[arg(long, env = EXTSIM.http.url_var, default_value = EXTSIM.http.default_url)]
    pub extsim_url: String,
    /// Seconds a record must have existed before something missing about it counts: a
    /// pending payment, a receipt or welcome not yet delivered, a saga not yet finished.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub settle_s: f64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How many records of each kind the audit read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    /// Credentials (auth).
    pub credentials: usize,
    /// Profiles (users).
    pub profiles: usize,
    /// Owed profile deletes (the microservices' saga).
    pub compensations: usize,
    /// Payments.
    pub payments: usize,
    /// Notifications.
    pub notifications: usize,
    /// Charges at extsim.
    pub charges: usize,
    /// Emails at extsim.
    pub emails: usize,
}

impl Read {
    fn of(s: &Snapshot) -> Self {
        Self {
            credentials: s.credentials.len(),
            profiles: s.profiles.len(),
            compensations: s.compensations.len(),
            payments: s.payments.len(),
            notifications: s.notifications.len(),
            charges: s.charges.len(),
            emails: s.emails.len(),
        }
    }
}

/// What `archlab audit` found: the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `monolith` or `micro`.
    pub build: String,
    /// The databases read.
    pub databases: Vec<String>,
    /// extsim's URL.
    pub extsim_url: String,
    /// The settle bound, in seconds.
    pub settle_s: f64,
    /// When reading began; ages are measured from it.
    pub now: DateTime<Utc>,
    /// What was read.
    pub read: Read,
    /// Violations per kind, every kind listed.
    pub counts: BTreeMap<ViolationKind, usize>,
    /// Every violation, by kind then id.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Run every check over `snapshot`.
    pub fn new(build: Kind, databases: &Databases, extsim_url: &str, settle: Duration, snapshot: &Snapshot) -> Self {
        let violations = check::audit(snapshot, settle);
        Self {
            build: build.to_string(),
            databases: databases.names().into_iter().map(str::to_owned).collect(),
            extsim_url: extsim_url.to_owned(),
            settle_s: settle.as_secs_f64(),
            now: snapshot.now,
            read: Read::of(snapshot),
            counts: check::counts(&violations),
            violations,
        }
    }

    /// The report for a person: what was read, each violation, the count per kind.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let r = &self.read;
        let _ = writeln!(
            out,
            "archlab audit: {} (databases {}; extsim {}; settle {} s)",
            self.build,
            self.databases.join(", "),
            self.extsim_url,
            self.settle_s
        );
        let _ = writeln!(
            out,
            "read {} credentials, {} profiles, {} owed compensations, {} payments, {} notifications, {} charges, {} emails",
            r.credentials, r.profiles, r.compensations, r.payments, r.notifications, r.charges, r.emails
        );
        for v in &self.violations {
            let related = if v.related.is_empty() { String::new() } else { format!(" [{}]", v.related.join(", ")) };
            let _ = writeln!(out, "  {:<20} {} {}{related}: {}", v.kind.name(), v.kind.subject(), v.id, v.detail);
        }
        let _ = writeln!(out, "violations per kind:");
        for (kind, n) in &self.counts {
            let _ = writeln!(out, "  {:<20} {n}", kind.name());
        }
        match self.violations.len() {
            0 => out.push_str("clean: no violation\n"),
            n => {
                let _ = writeln!(out, "{n} violation(s)");
            }
        }
        out
    }
}

/// Read `build`'s databases and the extsim at `extsim_url`, and check them: the whole audit,
/// for a caller such as a chaos experiment that wants the report rather than the exit code.
pub async fn audit(
    build: Kind,
    database_url: &str,
    databases: &Databases,
    extsim_url: &str,
    settle: Duration,
) -> anyhow::Result<Report> {
    let snapshot = read::snapshot(build, database_url, databases, extsim_url).await?;
    Ok(Report::new(build, databases, extsim_url, settle, &snapshot))
}

/// `archlab audit`: read, check, print; an error (exit 1) when anything is violated.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let settle = crate::load::seconds("--settle-s", args.settle_s)?;
    let overrides = Overrides {
        monolith: args.monolith_database,
        auth: args.auth_database,
        users: args.users_database,
        payments: args.payments_database,
        notifications: args.notifications_database,
    };
    let extract = args.extract.map(|m| m.to_string());
    let env = |key: &str| if key == "EXTRACT" { extract.clone() } else { std::env::var(key).ok() };
    let databases = Databases::resolve(args.build, &overrides, env);
    let report = audit(args.build, &args.database_url, &databases, &args.extsim_url, settle).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    match report.violations.len() {
        0 => Ok(()),
        n => bail!("the audit found {n} violation(s)"),
    }
}
