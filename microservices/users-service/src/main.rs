//! `users-service`: read config, start telemetry, build, serve until Ctrl-C or SIGTERM.

use archlab_users_service::{App, Config};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = archlab_telemetry::init("users-service");
    let app = App::build(config).await?;
    tracing::info!(http = %app.http_addr(), grpc = %app.grpc_addr(), "users-service ready");
    let stop = tokio_util::sync::CancellationToken::new();
    archlab_remote::host::cancel_on(archlab_telemetry::shutdown_signal(), &stop);
    app.run(stop).await
}
