//! `gateway`: read config, start telemetry, bind the session check, build, serve until Ctrl-C
//! or SIGTERM.

use archlab_auth::AuthApi;
use archlab_gateway::{Config, Gateway};
use archlab_remote::Transport;
use archlab_remote::grpc::GrpcAuthClient;
use archlab_remote::http::HttpAuthClient;
use clap::Parser;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = archlab_telemetry::init("gateway");
    let auth: Arc<dyn AuthApi> = match config.client.transport {
        Transport::Grpc => Arc::new(GrpcAuthClient::new(&config.auth_grpc_url, &config.client)?),
        Transport::Http => Arc::new(HttpAuthClient::new(&config.auth_http_url, &config.client)?),
    };
    let gateway = Gateway::build(config, auth).await?;
    tracing::info!(addr = %gateway.local_addr(), "gateway ready");
    gateway.run_until_stopped(archlab_telemetry::shutdown_signal()).await
}
