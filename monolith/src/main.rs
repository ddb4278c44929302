//! `monolith`: read config, start telemetry, build, serve until Ctrl-C or SIGTERM.

use archlab_monolith::{Application, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = archlab_telemetry::init("monolith");
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "monolith ready");
    app.run_until_stopped(archlab_telemetry::shutdown_signal()).await
}
