//! `archlab-baseline`: read the flags, build, serve until Ctrl-C. No telemetry, on purpose:
//! the baseline is the floor without it.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = archlab_baseline::Config::parse();
    let baseline = archlab_baseline::Baseline::build(config).await?;
    println!("archlab-baseline listening on http://{}", baseline.addr()?);
    baseline
        .run_until_stopped(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
