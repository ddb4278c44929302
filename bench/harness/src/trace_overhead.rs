//! `archlab trace-overhead`: what exporting every span costs a build in throughput, and
//! whether every request's trace arrives whole.
//!
//! For each build it runs each scenario flat out (an open-loop flood over a fixed number of
//! connections, as `archlab compare` measures maximum throughput) twice over:
//! - **off**, the processes' default: spans get trace ids (every response names its trace)
//!   but nothing is queued or exported;
//! - **on**: sampler `always_on` and every span exported over OTLP/gRPC, with the lab's
//!   batch settings, to a receiver inside this process. The receiver runs on the load
//!   generator's CPUs, as a collector on another machine would: the build pays for making
//!   and sending its spans, not for keeping them.
//!
//! Runs go off, on, on, off in each round, so a machine that drifts weighs on both alike.
//! Every run starts the build afresh on fresh databases and stops it after.
//!
//! With tracing on, each scenario run is also counted: the requests the generator sent
//! (warm-up included); the traces received whose root is an API request, and how many of
//! those are complete ([`archlab_traces::census`]); and the spans each process ended,
//! exported, failed to export and dropped, from its `/metrics` (`archlab_spans_total`), read
//! once the receiver has gone quiet.

use crate::compare::{self, Build, Running};
use crate::load::{self, Plan, Scenario};
use crate::model::{LoadReport, Offered, RunMeta};
use crate::placement;
use crate::topology::NotificationMode;
use anyhow::Context;
use archlab_traces::{Census, Receiver, SpanRecord};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The goal issue 8 states: tracing every request costs at most this share of throughput.
pub const GOAL_COST: f64 = 0.05;

/// Spans the receiver may hold: far above a run's (a flood of purchases on the
/// microservices makes about 30 spans a request), so none is evicted before it is counted.
const RECEIVER_KEEP: usize = 4_000_000;

/// How long without a new span means every process has flushed (they export every second).
const QUIET: Duration = Duration::from_secs(3);

/// Arguments of `archlab trace-overhead`.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceOverheadArgs {
    /// Builds to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Build::Monolith, Build::MicroGrpc, Build::MicroHttp])]
    pub builds: Vec<Build>,
    /// Scenarios to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scenario::Browse, Scenario::Purchase])]
    pub scenarios: Vec<Scenario>,
    /// Rounds of off, on, on, off per build.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub rounds: u32,
    /// Measured seconds of each run.
    #[arg(long, default_value_t = 8.0)]
    pub duration_s: f64,
    /// Warm-up seconds before each run's window (sent and counted, not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup_s: f64,
    /// Connections the flood keeps busy.
    #[arg(long, default_value_t = 64)]
    pub connections: u32,
    /// Notification mode of the builds.
    #[arg(long, value_enum, default_value_t = NotificationMode::Async)]
    pub mode: NotificationMode,
    /// Where the generator (with the receiver) and the builds run, as for `archlab compare`.
    #[command(flatten)]
    pub placement: placement::PlacementArgs,
    /// Directory for trace-overhead.md and trace-overhead.json.
    #[arg(long, default_value = "target/trace-overhead")]
    pub out: PathBuf,
    /// Directory holding the binaries [default: the directory of this `archlab`].
    #[arg(long, env = "ARCHLAB_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// PostgreSQL server URL without a database (the builds' `DATABASE_URL`).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_url: String,
    /// Measure nothing: write the report of an earlier run again from its trace-overhead.json.
    #[arg(long, value_name = "JSON")]
    pub render: Option<PathBuf>,
}

/// Everything one `archlab trace-overhead` run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverheadReport {
    pub meta: RunMeta,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connections: u32,
    pub rounds: u32,
    pub results: Vec<ScenarioOverhead>,
}

/// One build and scenario: its runs with tracing off and on, and what the traced runs
/// delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioOverhead {
    pub build: String,
    pub scenario: String,
    pub off: Vec<LoadReport>,
    pub on: Vec<LoadReport>,
    /// One per traced run.
    pub delivery: Vec<Delivery>,
}

/// What one traced run's spans became.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Requests the generator sent, warm-up included.
    pub requests_sent: u64,
    /// The traces received, counted.
    pub census: Census,
    /// Summed over the build's processes, during the run.
    pub spans: SpanFlow,
    /// Spans the receiver itself evicted (0 unless its bound was too small).
    pub receiver_evicted: u64,
}

/// The span pipeline's counts over one run, summed over processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanFlow {
    pub ended: u64,
    pub exported: u64,
    pub export_failed: u64,
    /// `ended − exported − export_failed`: lost on a full queue.
    pub dropped: u64,
}

impl ScenarioOverhead {
    /// Mean throughput of the runs with tracing off and on, requests/s.
    pub fn means(&self) -> (f64, f64) {
        let mean = |runs: &[LoadReport]| {
            if runs.is_empty() { 0.0 } else { runs.iter().map(|r| r.throughput_per_s).sum::<f64>() / runs.len() as f64 }
        };
        (mean(&self.off), mean(&self.on))
    }

    /// The share of throughput tracing costs: `1 − on/off` (negative when on was faster).
    pub fn cost(&self) -> f64 {
        let (off, on) = self.means();
        if off > 0.0 { 1.0 - on / off } else { 0.0 }
    }

    /// The cost of each pair of runs that ran next to each other (the `k`-th off and the
    /// `k`-th on: off, on | on, off in every round), lowest and highest: how far the machine
    /// moved the estimate.
    pub fn pair_range(&self) -> Option<(f64, f64)> {
        let costs: Vec<f64> = self
            .off
            .iter()
            .zip(&self.on)
            .filter(|(off, _)| off.throughput_per_s > 0.0)
            .map(|(off, on)| 1.0 - on.throughput_per_s / off.throughput_per_s)
            .collect();
        let low = costs.iter().copied().reduce(f64::min)?;
        let high = costs.iter().copied().reduce(f64::max)?;
        Some((low, high))
    }
}

/// Run `archlab trace-overhead`.
pub async fn run(args: TraceOverheadArgs) -> anyhow::Result<()> {
    if let Some(json) = &args.render {
        let text = std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
        let report: OverheadReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a trace-overhead report", json.display()))?;
        return write(&report, &args.out);
    }
    anyhow::ensure!(args.duration_s > 0.0 && args.duration_s <= 120.0, "--duration-s must be in (0, 120]");
    anyhow::ensure!(args.warmup_s >= 0.0 && args.warmup_s <= 60.0, "--warmup-s must be in [0, 60]");
    anyhow::ensure!((1..=1024).contains(&args.connections), "--connections must be in 1..=1024");
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => crate::up::default_bin_dir()?,
    };
    let cpus = args.placement.apply()?;
    let report = measure(&args, &bin_dir, &cpus).await?;
    write(&report, &args.out)
}

/// Every build, every round, every scenario.
async fn measure(args: &TraceOverheadArgs, bin_dir: &Path, cpus: &placement::Plan) -> anyhow::Result<OverheadReport> {
    let (receiver, receiver_addr) =
        Receiver::start_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), RECEIVER_KEEP, None).await?;
    let traced_env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), format!("http://{receiver_addr}")),
        ("OTEL_TRACES_SAMPLER".to_owned(), "always_on".to_owned()),
    ];
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let run_id = format!("{:08x}", rand::random::<u32>());
    let app_cpus = cpus.app_list();
    let mut results: Vec<ScenarioOverhead> = Vec::new();
    let mut observed = None;
    for &build in &args.builds {
        let first = results.len();
        for &scenario in &args.scenarios {
            results.push(ScenarioOverhead {
                build: build.name().to_owned(),
                scenario: scenario.to_string(),
                off: Vec::new(),
                on: Vec::new(),
                delivery: Vec::new(),
            });
        }
        let mut n = 0;
        for round in 1..=args.rounds {
            for traced in [false, true, true, false] {
                n += 1;
                let label = if traced { "on" } else { "off" };
                println!("archlab trace-overhead: {} round {round}, tracing {label}", build.name());
                let env = if traced { traced_env.clone() } else { Vec::new() };
                let id = format!("{run_id}{n}");
                let mut running =
                    Running::start(build, args.mode, &id, &args.database_url, bin_dir, app_cpus.as_deref(), &env)
                        .await
                        .with_context(|| format!("starting {}", build.name()))?;
                if observed.is_none() {
                    observed = Some(crate::compare::observe(args.placement.placement, &running).await);
                }
                let urls = running.target.http_urls.clone();
                let public = running.topology.public_url.clone();
                let outcome = running.watch(measure_started(args, &public, &urls, traced.then_some(&receiver))).await;
                let stopped = running.stop().await;
                let runs = outcome.with_context(|| format!("measuring {} with tracing {label}", build.name()))?;
                stopped?;
                for (slot, (report, delivery)) in results[first..].iter_mut().zip(runs) {
                    if traced {
                        slot.on.push(report);
                        slot.delivery.extend(delivery);
                    } else {
                        slot.off.push(report);
                    }
                }
            }
        }
    }
    receiver.stop();
    let mut settings = BTreeMap::from([
        ("NOTIFICATION_MODE".to_owned(), args.mode.to_string()),
        ("traced: OTEL_TRACES_SAMPLER".to_owned(), "always_on".to_owned()),
        (
            "traced: batch queue / batch / delay".to_owned(),
            format!(
                "{} spans / {} spans / {} ms",
                archlab_telemetry::MAX_QUEUE_SIZE,
                archlab_telemetry::MAX_EXPORT_BATCH_SIZE,
                archlab_telemetry::SCHEDULED_DELAY.as_millis()
            ),
        ),
    ]);
    settings.extend(compare::child_settings(args.mode));
    Ok(OverheadReport {
        meta: RunMeta {
            started_at,
            profile: compare::build_profile(bin_dir),
            profile_name: "trace-overhead".to_owned(),
            placement: observed.unwrap_or_else(|| placement::observe(args.placement.placement, None, None)),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            settings,
            ..compare::machine_meta()
        },
        duration_s: args.duration_s,
        warmup_s: args.warmup_s,
        connections: args.connections,
        rounds: args.rounds,
        results,
    })
}

/// Seed, then flood each scenario in turn on a build that is up; with a receiver, count
/// what each run's spans became.
async fn measure_started(
    args: &TraceOverheadArgs,
    public_url: &str,
    http_urls: &[String],
    receiver: Option<&Receiver>,
) -> anyhow::Result<Vec<(LoadReport, Option<Delivery>)>> {
    let seeded = load::seed(public_url, Scenario::Mixed, 64).await.context("seeding users")?;
    let mut out = Vec::new();
    for &scenario in &args.scenarios {
        let plan = Plan {
            target: public_url.to_owned(),
            scenario,
            offered: Offered::Open { rate_per_s: 100_000.0 },
            connections: args.connections,
            warmup: Duration::from_secs_f64(args.warmup_s),
            duration: Duration::from_secs_f64(args.duration_s),
            max_requests: u64::MAX,
            timeout: Duration::from_secs(5),
            progress: false,
        };
        let Some(receiver) = receiver else {
            let report = load::run(&plan, &seeded).await?;
            println!("  {scenario:>8} off: {}", line(&report));
            out.push((report, None));
            continue;
        };
        // Start from an empty store: the seeding's traces and the last run's are not this run's.
        receiver.wait_quiet(QUIET, Duration::from_secs(60)).await;
        receiver.take();
        let evicted_before = receiver.stats().dropped;
        let before = span_flow(http_urls).await?;
        let report = load::run(&plan, &seeded).await?;
        let settled = receiver.wait_quiet(QUIET, Duration::from_secs(120)).await;
        anyhow::ensure!(settled, "spans were still arriving two minutes after the run");
        let after = span_flow(http_urls).await?;
        let spans = receiver.take();
        let delivery = Delivery {
            requests_sent: report.sent_total,
            census: archlab_traces::census(&spans, is_api_request),
            spans: after.minus(before),
            receiver_evicted: receiver.stats().dropped - evicted_before,
        };
        println!(
            "  {scenario:>8} on:  {}; {} sent, {} traces complete, {} spans dropped",
            line(&report),
            delivery.requests_sent,
            delivery.census.complete,
            delivery.spans.dropped
        );
        out.push((report, Some(delivery)));
    }
    Ok(out)
}

/// A root span that is one of the generator's requests (not a `/ready` or `/metrics` probe).
fn is_api_request(root: &SpanRecord) -> bool {
    root.kind == "server" && root.name.contains(" /api/")
}

impl SpanFlow {
    /// The counts between two readings.
    fn minus(self, before: SpanFlow) -> SpanFlow {
        let ended = self.ended.saturating_sub(before.ended);
        let exported = self.exported.saturating_sub(before.exported);
        let export_failed = self.export_failed.saturating_sub(before.export_failed);
        SpanFlow { ended, exported, export_failed, dropped: ended.saturating_sub(exported + export_failed) }
    }
}

/// `archlab_spans_total` summed over the processes at `http_urls`.
async fn span_flow(http_urls: &[String]) -> anyhow::Result<SpanFlow> {
    let mut flow = SpanFlow::default();
    for text in crate::cost::scrape_metrics(http_urls).await? {
        let spans = archlab_kernel::metrics::parse_spans(&text);
        flow.ended += spans.ended;
        flow.exported += spans.exported;
        flow.export_failed += spans.export_failed;
    }
    Ok(flow)
}

/// One progress line; a flood's corrected latency is its backlog, so this shows service time.
fn line(report: &LoadReport) -> String {
    format!(
        "{:>7.0} req/s, service time p50 {:.2} ms, p99 {:.2} ms, errors {:.2} %",
        report.throughput_per_s,
        report.service_time.p50_us as f64 / 1000.0,
        report.service_time.p99_us as f64 / 1000.0,
        report.error_rate() * 100.0
    )
}

/// trace-overhead.json and trace-overhead.md under `dir`.
fn write(report: &OverheadReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join("trace-overhead.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = dir.join("trace-overhead.md");
    let text = markdown(report);
    std::fs::write(&md, &text).with_context(|| format!("writing {}", md.display()))?;
    println!("\n{text}\narchlab trace-overhead: wrote {} and {}", md.display(), json.display());
    Ok(())
}

/// The report as Markdown: the throughput table with the goal, then what arrived.
pub fn markdown(report: &OverheadReport) -> String {
    let meta = &report.meta;
    let mut out = String::new();
    let _ = writeln!(out, "# Tracing overhead\n");
    let _ = writeln!(
        out,
        "Each scenario flat out ({} connections, {} s measured after {} s of warm-up), tracing off \
         (no exporter: the default) and on (every span exported, sampler `always_on`), {} round(s) of \
         off, on, on, off, each run on a freshly started build. {} build; git {}; {} ({} cores); \
         generator and receiver on CPUs {}, the build on CPUs {}.\n",
        report.connections,
        report.duration_s,
        report.warmup_s,
        report.rounds,
        meta.profile,
        meta.git_revision,
        meta.cpu_model,
        meta.cores,
        meta.placement.load_cpus,
        meta.placement.app_cpus,
    );
    let _ = writeln!(out, "Command: `{}`\n", meta.command);
    let _ = writeln!(
        out,
        "The cost is one minus the ratio of the mean throughputs; beside it, the lowest and highest cost \
         of the pairs of runs that ran next to each other, which shows how much of it is the machine.\n"
    );
    let _ =
        writeln!(out, "## Throughput, tracing off vs on (goal: tracing costs at most {:.0} %)\n", GOAL_COST * 100.0);
    let _ = writeln!(
        out,
        "| build | scenario | off, req/s | on, req/s | cost | cost, pair by pair | goal | service time p99, off → on, ms | errors on |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|---:|---:|");
    for r in &report.results {
        let (off, on) = r.means();
        let cost = r.cost();
        let verdict = if cost <= GOAL_COST {
            "met".to_owned()
        } else {
            format!("missed by {:.1} points", (cost - GOAL_COST) * 100.0)
        };
        let p99 = |runs: &[LoadReport]| {
            runs.iter().map(|r| r.service_time.p99_us as f64 / 1000.0).sum::<f64>() / runs.len().max(1) as f64
        };
        let errors = r.on.iter().map(|r| r.requests - r.ok).sum::<u64>();
        let range = r
            .pair_range()
            .map_or_else(|| "-".to_owned(), |(low, high)| format!("{:+.1} to {:+.1} %", low * 100.0, high * 100.0));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:+.1} % | {} | {} | {:.1} → {:.1} | {} |",
            r.build,
            r.scenario,
            off,
            on,
            cost * 100.0,
            range,
            verdict,
            p99(&r.off),
            p99(&r.on),
            errors
        );
    }
    let _ = writeln!(out, "\nRuns: {}\n", runs_line(report));
    let _ = writeln!(out, "## What arrived, tracing on (sum over the traced runs)\n");
    let _ = writeln!(
        out,
        "| build | scenario | requests sent | traces | complete | with orphans | rootless | spans ended | exported | failed | dropped |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &report.results {
        let sum = |f: &dyn Fn(&Delivery) -> u64| r.delivery.iter().map(f).sum::<u64>();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.build,
            r.scenario,
            sum(&|d| d.requests_sent),
            sum(&|d| d.census.request_traces),
            sum(&|d| d.census.complete),
            sum(&|d| d.census.with_orphans),
            sum(&|d| d.census.rootless),
            sum(&|d| d.spans.ended),
            sum(&|d| d.spans.exported),
            sum(&|d| d.spans.export_failed),
            sum(&|d| d.spans.dropped),
        );
    }
    let _ = writeln!(
        out,
        "\nService time is measured from the actual send: in a flood the latency from the intended \
         send time is only the backlog.\n\nA trace is complete when no span's parent is missing and it has at least the usual number of \
         spans for its request (the most common count): {}.",
        usual_line(report)
    );
    out
}

/// Each run's throughput in the order it ran, per build and scenario.
fn runs_line(report: &OverheadReport) -> String {
    report
        .results
        .iter()
        .map(|r| {
            let list = |runs: &[LoadReport]| {
                runs.iter().map(|x| format!("{:.0}", x.throughput_per_s)).collect::<Vec<_>>().join(", ")
            };
            format!("{} {}: off {}; on {}", r.build, r.scenario, list(&r.off), list(&r.on))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The usual span count of each request, per build.
fn usual_line(report: &OverheadReport) -> String {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &report.results {
        for d in &r.delivery {
            for (name, n) in &d.census.usual_spans {
                seen.insert((r.build.clone(), name.clone()), *n);
            }
        }
    }
    seen.iter().map(|((build, name), n)| format!("{build} `{name}` {n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood(throughput: f64) -> LoadReport {
        serde_json::from_value(serde_json::json!({
            "scenario": "browse", "target": "http://127.0.0.1:1", "offered": {"kind": "open", "rate_per_s": 100000.0},
            "connections": 64, "warmup_s": 2.0, "duration_s": 8.0, "requests": 800, "sent_total": 1000,
            "ok": 800, "errors": {}, "unsent": 0, "throughput_per_s": throughput,
            "latency": {"count": 800, "mean_us": 1000.0, "p50_us": 1000, "p90_us": 2000, "p99_us": 3000, "p999_us": 4000, "max_us": 5000},
            "service_time": {"count": 800, "mean_us": 1000.0, "p50_us": 1000, "p90_us": 2000, "p99_us": 3000, "p999_us": 4000, "max_us": 5000},
            "by_step": {}
        }))
        .expect("a load report")
    }

    #[test]
    fn the_cost_is_one_minus_the_ratio_of_the_means() {
        let r = ScenarioOverhead {
            build: "monolith".into(),
            scenario: "browse".into(),
            off: vec![flood(1000.0), flood(1200.0)],
            on: vec![flood(990.0), flood(1100.0)],
            delivery: Vec::new(),
        };
        assert_eq!(r.means(), (1100.0, 1045.0));
        assert!((r.cost() - 0.05).abs() < 1e-9, "{}", r.cost());
        // Pairs: 1000 → 990 (1 %) and 1200 → 1100 (8.3 %).
        let (low, high) = r.pair_range().expect("two pairs");
        assert!((low - 0.01).abs() < 1e-9 && (high - 100.0 / 1200.0).abs() < 1e-9, "{low} {high}");
    }

    #[test]
    fn dropped_spans_are_what_was_ended_and_neither_exported_nor_failed() {
        let before = SpanFlow { ended: 10, exported: 8, export_failed: 0, dropped: 2 };
        let after = SpanFlow { ended: 110, exported: 95, export_failed: 5, dropped: 0 };
        assert_eq!(after.minus(before), SpanFlow { ended: 100, exported: 87, export_failed: 5, dropped: 8 });
    }
}
