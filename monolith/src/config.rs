//! The monolith's configuration: the shared groups plus its own address and database.

use archlab_kernel::config::{BehaviourArgs, DatabaseArgs, ExternalArgs, SessionArgs};
use clap::Parser;
use std::net::SocketAddr;

/// Everything the monolith reads from its environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "monolith", about = "archlab's modular monolith")]
pub struct Config {
    /// Where the public API listens.
    #[arg(long, env = "MONOLITH_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The one database every module keeps its schema in.
    #[arg(long, env = "MONOLITH_DATABASE", default_value = "archlab_monolith")]
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
}
