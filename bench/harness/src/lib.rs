//! `archlab`, the lab bench: it runs both builds of archlab on one machine so they can be
//! measured side by side.
//!
//! Its commands: `up` starts a build's processes behind name-prefixed output, waits until
//! each answers `/ready` and stops them all on Ctrl-C; `load` drives a running build's public
//! API (open loop, corrected for coordinated omission); `compare` runs every build in turn
//! under the same stepped load and writes a side-by-side report; `calibrate` checks the
//! load generator against wrk; `traces` receives and shows traces; `trace-overhead` measures
//! what exporting spans costs; `audit` checks a build's databases against each other and
//! against the third parties' logs; `chaos` runs fault experiments written as files under
//! load and judges their steady-state hypothesis.
//!
//! # Layout
//!
//! Start with [`topology`]: the processes of each build, their addresses and what they are
//! told, as plain data. Then [`supervisor`], which spawns, watches, restarts (per its policy), polls and stops them, and
//! [`up`], the command that strings the two together. [`logs`] prefixes children's lines.
//! [`model`] holds every figure as data; [`load`] produces [`model::LoadReport`]s, [`cost`]
//! and [`placement`] measure what a build costs and where it ran, [`compare`] strings them
//! into a [`model::CompareReport`], and [`report`] renders it. [`criterion`] reads the
//! benches' figures for the report. [`audit`] reads a build's data and reports what is
//! inconsistent. [`chaos`] strings the supervisor, the load engine and the audit into
//! experiments.

pub mod audit;
pub mod calibrate;
pub mod chaos;
pub mod compare;
pub mod cost;
pub mod criterion;
pub mod load;
pub mod logs;
pub mod migrate;
pub mod model;
pub mod placement;
pub mod ports;
pub mod report;
pub mod supervisor;
pub mod topology;
pub mod trace_overhead;
pub mod traces;
pub mod up;

pub use topology::{Kind, NotificationMode, Options, Process, Topology, Transport};
pub use up::UpArgs;

/// The `archlab` command line.
#[derive(Debug, clap::Parser)]
#[command(name = "archlab", version, about = "Run, load, compare and break archlab's two builds")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `archlab`'s subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start a build's processes, wait until all are ready, and stop them all on Ctrl-C.
    Up(UpArgs),
    /// Run every build in turn under the same stepped load and write a side-by-side report.
    Compare(compare::CompareArgs),
    /// Load a running build's public API: open loop at a rate, or closed-loop users.
    Load(load::LoadArgs),
    /// Check `archlab load` against wrk on tiny in-process servers (a benchmark).
    Calibrate(calibrate::CalibrateArgs),
    /// Receive, keep, show, compare and export traces (an OTLP receiver and a local page).
    Traces(traces::TracesArgs),
    /// What exporting every span costs each build in throughput, and whether every trace arrives.
    TraceOverhead(trace_overhead::TraceOverheadArgs),
    /// Check a build's databases and extsim's logs against each other; exit 1 on any violation.
    Audit(audit::AuditArgs),
    /// Run fault experiments (bench/chaos/experiments) under load; exit 1 when a hypothesis fails.
    Chaos(chaos::ChaosArgs),
    /// Move one module's rows between the monolith's database and its service's, live.
    Migrate(migrate::MigrateArgs),
}

/// Run the chosen subcommand to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Compare(args) => compare::run(args).await,
        Command::Load(args) => load::command(args).await,
        Command::Calibrate(args) => calibrate::command(args).await,
        Command::Traces(args) => traces::run(args).await,
        Command::TraceOverhead(args) => trace_overhead::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Chaos(args) => chaos::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
    }
}
