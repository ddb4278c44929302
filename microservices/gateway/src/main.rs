//! `gateway`: the shape every archlab binary shares (see `archlab_kernel::server`): read
//! config, start telemetry, build (binding the session check to auth-service), serve until
//! Ctrl-C or SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    archlab_telemetry::serve::<archlab_gateway::App>().await
}
