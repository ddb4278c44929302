//! Toxiproxy's HTTP API on loopback, for a person or a tool that speaks it:
//! `cargo run -p archlab-testkit --example toxiproxy -- [port]` (default 8474, Toxiproxy's).
//! Create proxies and toxics with any Toxiproxy client or curl; see docs/operations.md.

use archlab_testkit::proxy::api::ControlApi;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port = match std::env::args().nth(1) {
        Some(port) => port.parse().map_err(|_| anyhow::anyhow!("port must be a number, got {port}"))?,
        None => 8474,
    };
    let api = ControlApi::start(port).await?;
    println!("Toxiproxy API on http://{} (Ctrl-C to stop)", api.addr());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
