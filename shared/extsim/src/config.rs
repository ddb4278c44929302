//! Start-up configuration: where to listen and where (if anywhere) to keep the durable log.

use archlab_kernel::processes::EXTSIM;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How to start the simulator; every field is a flag and an environment variable.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = EXTSIM.name, about = "Simulated payment and email APIs for archlab")]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (tests).
    #[arg(long, env = EXTSIM.http.addr_var, default_value = EXTSIM.http.default_addr)]
    pub addr: SocketAddr,
    /// Directory for `charges.jsonl` and `emails.jsonl`; created if missing. Without it the
    /// log lives in memory only.
    #[arg(long, env = "EXTSIM_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
}
