//! Start one build, wait until it is ready, and print what it costs while idle as the JSON
//! of `model::Cost` (load figures left at zero), then stop it.
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo run --release -p archlab-harness --example idle_cost -- monolith target/release [split|shared]
//! ```
//! With `split`, the build's processes are confined to every CPU but the first (see
//! `archlab_harness::placement`) and the placement is printed too.

use anyhow::{Context, bail};
use archlab_harness::cost::{self, Target};
use archlab_harness::placement::{self, Plan, Preset};
use archlab_harness::supervisor::{self, GRACE, Restart, Supervisor};
use archlab_harness::{Kind, Options, Topology};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = match args.first().map(String::as_str) {
        Some("monolith") => Kind::Monolith,
        Some("micro") => Kind::Micro,
        _ => bail!("usage: idle_cost monolith|micro <bin-dir> [split|shared]"),
    };
    let bin_dir = PathBuf::from(args.get(1).context("usage: idle_cost monolith|micro <bin-dir> [split|shared]")?);
    let preset = match args.get(2).map(String::as_str) {
        None | Some("shared") => Preset::Shared,
        Some("split") => Preset::Split,
        Some(other) => bail!("unknown placement {other:?}"),
    };
    let plan = Plan::new(preset, None, None)?;
    if let Some(load) = &plan.load {
        placement::pin_self(load)?;
    }
    let topology = Topology::from_env(kind, Options::default());
    supervisor::check_binaries(&bin_dir, &topology.names())?;
    let started = Instant::now();
    let app_list = plan.app_list();
    let mut children = Supervisor::start_pinned(&topology, &bin_dir, false, app_list.as_deref(), Restart::Off).await?;
    let outcome = async {
        supervisor::wait_ready(&topology.processes, Duration::from_secs(60)).await?;
        let startup_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Let start-up work (migrations, first outbox polls, pool warm-up) pass.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let admin = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let pids = children.pids();
        let target = Target::of(&topology, &pids, &admin, |key| std::env::var(key).ok());
        let mut cost = cost::idle_cost(&topology, &bin_dir, &target).await?;
        cost.startup_ms = startup_ms;
        let calls = cost::scrape_counters(&target.http_urls).await?;
        let app_pid = target.app_pids.first().copied();
        let backend = cost::postgres_backends(&admin, &target.databases).await?.first().copied();
        let placement = placement::observe(preset, app_pid, backend);
        anyhow::Ok(serde_json::json!({ "build": kind.to_string(), "cost": cost, "placement": placement,
            "databases": target.databases, "calls_since_start": calls }))
    }
    .await;
    children.stop(GRACE, std::future::pending()).await;
    println!("{}", serde_json::to_string_pretty(&outcome?)?);
    Ok(())
}
