//! The figures the lab measures, as plain serialisable data.
//!
//! `archlab load` writes a [`LoadReport`]; `archlab compare` gathers them into a
//! [`CompareReport`] together with each build's [`Cost`] and the criterion figures, and the
//! report renderers read nothing else. The raw JSON committed under docs/results/ is a
//! [`CompareReport`] as serde writes it, so a field renamed here changes that format: keep
//! names stable and add rather than rename.
//!
//! Units are in the field names: `_us` microseconds, `_ms` milliseconds, `_s` seconds,
//! `_bytes` bytes, `_per_s` per second.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of values recorded.
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// How the load was offered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Offered {
    /// Open loop: requests scheduled at a constant arrival rate, latency measured from each
    /// request's intended send time (corrected for coordinated omission).
    Open { rate_per_s: f64 },
    /// Closed loop: `users` each send a request, wait for the answer, think, and repeat;
    /// latency measured from the actual send.
    Closed { users: u32, think_time_ms: u64 },
}

/// One `archlab load` run against one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    /// `signup`, `login`, `browse`, `purchase` or `mixed`.
    pub scenario: String,
    /// The public URL the requests went to (always loopback).
    pub target: String,
    pub offered: Offered,
    /// TCP connections the generator held (open loop); users (closed loop).
    pub connections: u32,
    /// Warm-up excluded from every figure below.
    pub warmup_s: f64,
    /// The measured window's length, as it actually ran.
    pub duration_s: f64,
    /// Requests completed (any answer or error) inside the measured window.
    pub requests: u64,
    /// Requests sent in all, warm-up included; each was answered or failed before the run
    /// returned (what a trace count compares with).
    #[serde(default)]
    pub sent_total: u64,
    /// Of those, answers with the status the scenario expects.
    pub ok: u64,
    /// Everything else by cause: an unexpected status as its number (`"503"`), or
    /// `"timeout"`, `"connect"`, `"io"`.
    pub errors: BTreeMap<String, u64>,
    /// Requests that were due inside the window but never sent because the run ended
    /// first (open loop only): a generator or server that fell behind shows up here.
    pub unsent: u64,
    /// `requests / duration_s`.
    pub throughput_per_s: f64,
    /// From the intended send time (open loop) or the actual send (closed loop).
    pub latency: Percentiles,
    /// From the actual send, as a closed-loop tool would measure it: the gap between this
    /// and `latency` is the coordinated omission the correction removes.
    pub service_time: Percentiles,
    /// Per scenario step, for `mixed` (and a single entry otherwise).
    pub by_step: BTreeMap<String, Percentiles>,
}

impl LoadReport {
    /// Errors as a share of completed requests, 0.0..=1.0.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { (self.requests - self.ok) as f64 / self.requests as f64 }
    }
}

/// Where the processes of a run were allowed to run, as `Cpus_allowed_list` spells it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// `split`, `shared`, or `custom` (see `archlab compare --help`).
    pub name: String,
    /// CPUs of the load generator.
    pub load_cpus: String,
    /// CPUs of the system under test's own processes (and extsim).
    pub app_cpus: String,
    /// Where PostgreSQL's postmaster and RabbitMQ ran, read from their processes (the
    /// harness does not move them).
    pub postgres_cpus: String,
    pub rabbitmq_cpus: String,
    /// Where the build's own PostgreSQL backends ran (pinned with the build when it is);
    /// empty in reports made before this was recorded.
    #[serde(default)]
    pub postgres_backend_cpus: String,
}

/// What one run of a build cost, measured on the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Processes the build runs (extsim not counted: it stands for the outside world).
    pub processes: u32,
    /// Each binary and its size on disk.
    pub binaries: BTreeMap<String, u64>,
    pub binaries_total_bytes: u64,
    /// Resident memory of the build's processes summed, after start-up, before any load.
    pub rss_idle_bytes: u64,
    /// The same, sampled at the end of the heaviest load step.
    pub rss_load_bytes: u64,
    /// CPU-seconds (user + system) per 1,000 requests under load, for the build's own
    /// processes, its PostgreSQL backends, and RabbitMQ.
    pub cpu_s_per_1k_app: f64,
    pub cpu_s_per_1k_postgres: f64,
    pub cpu_s_per_1k_rabbitmq: f64,
    /// Connections to PostgreSQL held by the build, from `pg_stat_activity`, idle and at the
    /// end of the heaviest step.
    pub db_connections_idle: u32,
    pub db_connections_load: u32,
    /// Calls that cross a process boundary per user request, by kind (`internal_rpc`,
    /// `database`, `broker_publish`, `third_party`), counted over one measured step.
    pub network_calls_per_request: BTreeMap<String, f64>,
    /// From the first process spawned to every process answering `/ready`.
    pub startup_ms: u64,
    /// Non-blank, non-comment lines of the deployment configuration this build needs
    /// (deploy/compose), and which files they were counted from.
    pub deploy_config_lines: u32,
    pub deploy_config_files: Vec<String>,
}

/// One step of a saturation search: a fixed offered rate and what it gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub rate_per_s: f64,
    pub report: LoadReport,
    /// Whether p99 stayed under the objective and errors under the budget.
    pub within_objective: bool,
}

/// The highest offered rate that met the objective, if any did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    pub rate_per_s: f64,
    pub throughput_per_s: f64,
    pub p99_us: u64,
    pub error_rate: f64,
}

/// Everything measured for one build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildResult {
    /// `monolith`, `micro-grpc`, `micro-http` (or `baseline`).
    pub name: String,
    /// `async` or `sync`.
    pub mode: String,
    /// The stepped, open-loop load of the saturation search, lowest rate first.
    pub steps: Vec<Step>,
    pub saturation: Option<Saturation>,
    /// Each scenario on its own at the common rate (`CompareReport::common_rate_per_s`).
    pub at_common_rate: Vec<LoadReport>,
    /// The headline rounds: the saturation scenario at the common rate, one run per round,
    /// with every build up at once and the builds taking turns (`compare::headline_rounds`).
    /// The headline's p50 and p99 are their medians, and its ratios the medians of the
    /// round-by-round ratios (empty in reports from before there were rounds).
    #[serde(default)]
    pub headline_runs: Vec<LoadReport>,
    /// CPU-seconds per 1,000 requests of each headline run (app, PostgreSQL and RabbitMQ
    /// together), in the same order.
    #[serde(default)]
    pub headline_cpu_s_per_1k: Vec<f64>,
    /// The headline rounds' floods: the saturation scenario offered far above any build's
    /// capacity, one run per round, so the connections run back to back and the throughput
    /// is the most the build answers. The headline's throughput ratio is the median of the
    /// round-by-round ratios of these (empty in reports from before there were floods).
    #[serde(default)]
    pub headline_floods: Vec<LoadReport>,
    /// The latency of every request of `headline_runs` together (their histograms merged):
    /// the headline's p50 and p99, and the p99 ratio. A p99 over one short run is decided by
    /// whether the machine stalled during it; over every round's requests it is decided by
    /// how often it stalls, which the builds taking turns share. `None` in reports from
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline_latency: Option<Percentiles>,
    /// Closed-loop runs of the users search, and the most users held at the objective.
    pub user_runs: Vec<LoadReport>,
    pub users_at_objective: Option<u32>,
    /// Open-loop runs far above capacity, so every connection runs back to back: the most
    /// the build answers on `profile`, the figure the baseline goal compares.
    #[serde(default)]
    pub max_throughput: Vec<LoadReport>,
    pub cost: Cost,
}

/// A stated goal and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub name: String,
    /// What was required, in words (`≥ 0.90× the baseline's throughput`).
    pub target: String,
    /// What was measured, in words, with the figure.
    pub measured: String,
    pub met: bool,
}

/// One criterion benchmark's figure (its mean, with the confidence interval criterion
/// reports), read from `target/criterion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchFigure {
    /// Criterion's group and function id, `hop/grpc`.
    pub id: String,
    pub mean_ns: f64,
    pub lower_ns: f64,
    pub upper_ns: f64,
}

/// Where and how a report was made, so anyone can run it again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// `git rev-parse HEAD`, with `-dirty` when the tree had changes.
    pub git_revision: String,
    /// UTC, RFC 3339.
    pub started_at: String,
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cores: u32,
    pub memory_bytes: u64,
    /// Cargo profile of the binaries measured (`release`).
    pub profile: String,
    /// `quick` or `full`.
    pub profile_name: String,
    pub placement: Placement,
    /// The command line that made this report.
    pub command: String,
    /// Settings the children ran with that differ from their defaults (the abuse limits
    /// are switched off for load, and the report says so).
    pub settings: BTreeMap<String, String>,
    /// What the hypervisor took from the CPUs during the headline rounds (absent in
    /// reports from before it was recorded, and without rounds).
    #[serde(default)]
    pub headline_steal: Option<Steal>,
}

/// Steal time: of the time some CPUs had work, the share the hypervisor gave to someone
/// else (`/proc/stat`). A virtual machine whose neighbours got busy shows it here, and
/// latency and throughput measured meanwhile move with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Steal {
    /// On the CPUs the builds ran on.
    pub app_cpus: f64,
    /// On the load generator's CPUs.
    pub load_cpus: f64,
}

/// A whole `archlab compare` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    pub meta: RunMeta,
    /// The latency objective of the saturation search and the error budget.
    pub objective_p99_ms: f64,
    pub error_budget: f64,
    /// The scenario stepped up to saturation.
    pub saturation_scenario: String,
    /// The rate at which every scenario is run on its own, for the percentile bars.
    pub common_rate_per_s: f64,
    pub think_time_ms: u64,
    pub builds: Vec<BuildResult>,
    /// The hand-written axum + sqlx handler doing `GET /api/users/me`'s SQL, stepped the
    /// same way as the builds' `browse` (None when skipped).
    pub baseline: Option<BuildResult>,
    pub goals: Vec<Goal>,
    pub benches: Vec<BenchFigure>,
}
