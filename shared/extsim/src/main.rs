//! `extsim`: reads its config, starts logging, serves until Ctrl-C or SIGTERM.

use anyhow::Context;
use archlab_extsim::{Config, ExtSim};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = archlab_telemetry::init("extsim");
    let sim = ExtSim::build(config).await.context("starting extsim")?;
    sim.run_until_stopped(archlab_telemetry::shutdown_signal()).await
}
