//! `hybrid`: the shape every archlab binary shares (see `archlab_kernel::server`): read
//! config, start telemetry, build, serve until Ctrl-C or SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    archlab_telemetry::serve::<archlab_hybrid::App>().await
}
