//! The monolith's configuration: the shared groups plus its own address and database.

use archlab_kernel::config::{AbuseArgs, BehaviourArgs, DatabaseArgs, ExternalArgs, ReconcileArgs, SessionArgs};
use archlab_kernel::processes::MONOLITH;
use clap::Parser;
use std::net::SocketAddr;

const DATABASE: (&str, &str) = MONOLITH.database.expect("the monolith has a database");
const ADMIN_ADDR_VAR: &str = MONOLITH.admin_addr_var.expect("the monolith has fault points");

/// Everything the monolith reads from its environment.
#[derive(Parser, Debug, Clone)]
#[command(name = MONOLITH.name, about = "archlab's modular monolith")]
pub struct Config {
    /// Where the public API listens.
    #[arg(long, env = MONOLITH.http.addr_var, default_value = MONOLITH.http.default_addr)]
    pub addr: SocketAddr,
    /// The fault points' admin endpoint, loopback only; unset, none.
    #[arg(long, env = ADMIN_ADDR_VAR, value_parser = archlab_kernel::faults::admin::loopback_addr)]
    pub admin_addr: Option<SocketAddr>,
    /// The one database every module keeps its schema in.
    #[arg(long, env = DATABASE.0, default_value = DATABASE.1)]
    pub database: String,
    /// PostgreSQL.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Third parties.
    #[command(flatten)]
    pub external: ExternalArgs,
    /// Sessions.
    #[command(flatten)]
    pub sessions: SessionArgs,
    /// Notification mode, fault points.
    #[command(flatten)]
    pub behaviour: BehaviourArgs,
    /// Signup and login limits, all three applied here: per address at this edge, per
    /// account and the hashing cap in the auth module.
    #[command(flatten)]
    pub limits: AbuseArgs,
    /// The payments reconciler.
    #[command(flatten)]
    pub reconcile: ReconcileArgs,
}
