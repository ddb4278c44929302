//! `archlab chaos`: fault experiments as files, run against either build under open-loop
//! load, each ending with a verdict on its steady-state hypothesis and a consistency audit.
//!
//! One run: start the build on fresh databases ([`lab`]), sign up users, run the
//! experiment's load streams (`archlab load`'s engine, with per-second figures) while the
//! method's actions fire on schedule, undo everything in the rollback (always, even after a
//! failure), audit the databases until they are consistent or a deadline passes, read the
//! timeline against the fault window ([`verdict`]: time to detect, time to recover, blast
//! radius), check every probe, write Markdown and JSON, stop the build. Any probe that does
//! not hold makes the command exit 1.
//!
//! # Layout
//!
//! [`experiment`] is the file format and its checks; [`lab`] the running build and the
//! actions; [`verdict`] the reading, the probes and the report. The experiments the lab ships
//! live in `bench/chaos/experiments/` and are compiled in ([`BUILT_IN`]), so a name works
//! from any directory; a path to a `.toml` file runs that file.

pub mod counters;
pub mod experiment;
pub mod lab;
pub mod verdict;

use crate::compare::Build;
use crate::load::{self, Plan, Scenario};
use crate::model::Offered;
use crate::topology::Kind;
use anyhow::{Context, bail};
use experiment::{Action, Experiment, Probe, RunPlan};
use lab::Lab;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;
use verdict::{AuditOutcome, Done, RunResult};

/// The experiments shipped with the lab: `(name, file text)`, from `bench/chaos/experiments/`.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("notifications-down-sync", include_str!("../../../chaos/experiments/notifications-down-sync.toml")),
    ("notifications-down-async", include_str!("../../../chaos/experiments/notifications-down-async.toml")),
    ("provider-slow", include_str!("../../../chaos/experiments/provider-slow.toml")),
    ("provider-hanging", include_str!("../../../chaos/experiments/provider-hanging.toml")),
    ("provider-lost-reply", include_str!("../../../chaos/experiments/provider-lost-reply.toml")),
    ("payments-killed", include_str!("../../../chaos/experiments/payments-killed.toml")),
    ("replica-killed", include_str!("../../../chaos/experiments/replica-killed.toml")),
    ("module-crash", include_str!("../../../chaos/experiments/module-crash.toml")),
    ("noisy-neighbour", include_str!("../../../chaos/experiments/noisy-neighbour.toml")),
    ("clients-hang-up-mid-purchase", include_str!("../../../chaos/experiments/clients-hang-up-mid-purchase.toml")),
    ("users-slow", include_str!("../../../chaos/experiments/users-slow.toml")),
    ("retry-storm", include_str!("../../../chaos/experiments/retry-storm.toml")),
    ("retry-storm-guarded", include_str!("../../../chaos/experiments/retry-storm-guarded.toml")),
    ("restart-to-deploy", include_str!("../../../chaos/experiments/restart-to-deploy.toml")),
    ("broker-down", include_str!("../../../chaos/experiments/broker-down.toml")),
    ("payments-db-slow", include_str!("../../../chaos/experiments/payments-db-slow.toml")),
];

/// Pause between two audits while waiting for the build to be consistent.
const AUDIT_EVERY: Duration = Duration::from_millis(500);
/// How long the audit is given when no probe says.
const DEFAULT_AUDIT_WITHIN: Duration = Duration::from_secs(10);

/// Arguments of `archlab chaos`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Experiments to run: built-in names (see `--list`), `all`, or paths to `.toml` files.
    #[arg(required_unless_present = "list")]
    pub experiments: Vec<String>,
    /// Builds to run each against [default: the experiment's own list].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub build: Vec<Build>,
    /// The short mode: seconds per run (what `make test` runs).
    #[arg(long)]
    pub short: bool,
    /// Print each result as JSON instead of the one-line verdict.
    #[arg(long)]
    pub json: bool,
    /// List the built-in experiments and exit.
    #[arg(long)]
    pub list: bool,
    /// Directory for `<experiment>-<build>.md` and `.json`.
    #[arg(long, default_value = "target/chaos")]
    pub out: PathBuf,
    /// Directory holding the binaries [default: the directory of this `archlab`].
    #[arg(long, env = "ARCHLAB_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// PostgreSQL server URL without a database (the builds' `DATABASE_URL`).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_url: String,
}

/// The names `all` stands for and `--list` shows.
pub fn names() -> Vec<&'static str> {
    BUILT_IN.iter().map(|(name, _)| *name).collect()
}

/// Find and parse one experiment: a built-in name, or a path to a file.
pub fn resolve(given: &str) -> anyhow::Result<(String, Experiment)> {
    if let Some((name, text)) = BUILT_IN.iter().find(|(name, _)| *name == given) {
        return Ok(((*name).to_owned(), Experiment::parse(text, &format!("the built-in experiment {name}"))?));
    }
    let path = Path::new(given);
    let looks_like_path = given.ends_with(".toml") || given.contains('/');
    if !looks_like_path {
        bail!("unknown experiment {given:?}; the experiments: {} (or a path to a .toml file)", names().join(", "));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the experiment {}", path.display()))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("experiment").to_owned();
    Ok((name, Experiment::parse(&text, &path.display().to_string())?))
}

/// `archlab chaos`: check every experiment named, then run each against each build.
pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    if args.list {
        for (name, text) in BUILT_IN {
            let title = Experiment::parse(text, name).map(|e| e.title).unwrap_or_else(|e| format!("(invalid: {e:#})"));
            println!("{name:<26} {title}");
        }
        return Ok(());
    }
    // Everything is parsed and checked before anything starts.
    let mut chosen = Vec::new();
    for given in &args.experiments {
        if given == "all" {
            for name in names() {
                chosen.push(resolve(name)?);
            }
        } else {
            chosen.push(resolve(given)?);
        }
    }
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => crate::up::default_bin_dir()?,
    };
    let mut runs = Vec::new();
    for (name, experiment) in &chosen {
        let builds: Vec<Build> = if args.build.is_empty() {
            experiment.builds.iter().map(|b| b.build()).collect()
        } else {
            args.build.clone()
        };
        for build in builds {
            runs.push((name, experiment, build));
        }
    }
    let mut needed: Vec<&str> = Vec::new();
    for (_, _, build) in &runs {
        needed.extend(crate::Topology::new(build.kind(), crate::Options::default(), |_| None).names());
    }
    needed.sort_unstable();
    needed.dedup();
    crate::supervisor::check_binaries(&bin_dir, &needed)?;

    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for (name, experiment, build) in runs {
        println!("archlab chaos: {name} on {}{}", build.name(), if args.short { " (short)" } else { "" });
        let result = run_one(name, experiment, build, args.short, &bin_dir, &args.database_url)
            .await
            .with_context(|| format!("{name} on {}", build.name()))?;
        let written = write(&result, &args.out)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            for c in &result.hypothesis {
                println!("  {} {}: {}", if c.held { "ok  " } else { "FAIL" }, c.probe, c.measured);
            }
            println!("{}", verdict::one_line(&result));
            println!("archlab chaos: wrote {}", written.display());
        }
        if !result.held {
            failed.push(format!("{name} on {}", build.name()));
        }
        summary.push(result);
    }
    if summary.len() > 1 {
        let path = args.out.join("summary.md");
        let text = verdict::summary(&summary, &provenance(&args, &bin_dir));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("archlab chaos: wrote {}", path.display());
    }
    if !failed.is_empty() {
        bail!("the hypothesis failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Where the runs happened, so anyone can run them again: revision, machine, binaries'
/// profile and the command line.
fn provenance(args: &ChaosArgs, bin_dir: &Path) -> String {
    let meta = crate::compare::machine_meta();
    // `target/release` or `target/debug`: the directory's name is the Cargo profile.
    let profile = bin_dir.file_name().and_then(|n| n.to_str()).unwrap_or("unknown");
    let mut command = format!("archlab chaos {}", args.experiments.join(" "));
    if !args.build.is_empty() {
        let builds: Vec<&str> = args.build.iter().map(|b| b.name()).collect();
        command.push_str(&format!(" --build {}", builds.join(",")));
    }
    if args.short {
        command.push_str(" --short");
    }
    format!(
        "Revision `{}`, {} ({} cores), binaries of the `{profile}` profile; `{command}`.",
        crate::compare::git_revision_apart_from(Some(&args.out)),
        meta.cpu_model,
        meta.cores
    )
}

/// Write `<out>/<experiment>-<build>.md` and `.json`; the Markdown's path.
fn write(result: &RunResult, out: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let stem = format!("{}-{}", result.experiment, result.build);
    let json = out.join(format!("{stem}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(result)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    let md = out.join(format!("{stem}.md"));
    std::fs::write(&md, verdict::markdown(result)).with_context(|| format!("writing {}", md.display()))?;
    Ok(md)
}

/// Run `experiment` once against `build`: start, load and act, roll back, audit, stop.
pub async fn run_one(
    name: &str,
    experiment: &Experiment,
    build: Build,
    short: bool,
    bin_dir: &Path,
    database_url: &str,
) -> anyhow::Result<RunResult> {
    let plan = experiment.plan(short);
    let mode = experiment.mode.mode();
    let run_id = format!("chaos{:08x}", rand::random::<u32>());
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let lab = Lab::start(build, mode, &run_id, database_url, bin_dir, experiment).await?;
    let outcome = exercise(&lab, experiment, &plan).await;
    // The rollback runs whatever happened, and before the audit: a fault left on would keep
    // the build from settling.
    let rollback = roll_back(&lab, &experiment.rollback).await;
    let audited = match &outcome {
        Ok(_) => Some(audit_until_clean(&lab, experiment, build).await),
        Err(_) => None,
    };
    let restarts = lab.restarts();
    lab.stop().await;
    let (streams, recording, method, samples) = outcome?;
    let counters = counters::per_second(&samples);
    let audit = audited.transpose()?;

    let seconds = recording.seconds();
    let reading = verdict::read(&recording, &seconds, plan.fault_window());
    let hypothesis: Vec<_> = experiment
        .steady_state
        .iter()
        .filter(|p| p.applies_to(build))
        .map(|p| verdict::check(p, &plan, &recording, &counters, seconds.len(), &reading, audit.as_ref()))
        .collect();
    let held = hypothesis.iter().all(|c| c.held) && method.iter().chain(&rollback).all(|d| d.ok);
    Ok(RunResult {
        experiment: name.to_owned(),
        title: experiment.title.clone(),
        description: experiment.description.clone(),
        build: build.name().to_owned(),
        mode: mode.to_string(),
        short,
        started_at,
        duration_s: plan.duration.as_secs_f64(),
        fault_window_s: plan.fault_window(),
        method,
        rollback,
        streams,
        timeline: seconds,
        counters,
        time_to_detect_s: reading.time_to_detect_s,
        time_to_recover_s: reading.time_to_recover_s,
        blast_radius: reading.blast_radius,
        restarts,
        audit,
        hypothesis,
        held,
    })
}

type Exercised = (Vec<crate::model::LoadReport>, load::timeline::Recording, Vec<Done>, Vec<counters::Sample>);

/// Seed, then run every stream and the method side by side.
async fn exercise(lab: &Lab, experiment: &Experiment, plan: &RunPlan) -> anyhow::Result<Exercised> {
    let target = lab.public_url().to_owned();
    let seeded = load::seed(&target, Scenario::Purchase, plan.seed_users).await.context("seeding users")?;
    let plans: Vec<Plan> = plan
        .streams
        .iter()
        .map(|&(scenario, rate, connections)| Plan {
            target: target.clone(),
            scenario,
            offered: Offered::Open { rate_per_s: rate },
            connections,
            warmup: Duration::ZERO,
            duration: plan.duration,
            max_requests: u64::MAX,
            timeout: plan.timeout,
            progress: false,
        })
        .collect();
    let start = Instant::now();
    let streams = futures::future::try_join_all(plans.iter().map(|p| load::run_timeline(p, &seeded)));
    let method = act_on_schedule(lab, &plan.method, start);
    let sources = lab.counter_sources();
    let counted = counters::record(&sources, start, plan.duration.as_secs_f64().ceil() as u32);
    let (streams, method, samples) = tokio::join!(streams, method, counted);
    let streams = streams.with_context(|| format!("running the load of {}", experiment.title))?;
    let mut recording = load::timeline::Recording::default();
    let mut reports = Vec::new();
    for (report, r) in streams {
        recording.merge(&r);
        reports.push(report);
    }
    Ok((reports, recording, method, samples))
}

/// Each action at its time from `start`; one that fails is recorded, and the rest go on.
async fn act_on_schedule(lab: &Lab, method: &[(f64, Action)], start: Instant) -> Vec<Done> {
    let mut done = Vec::new();
    for (at_s, action) in method {
        tokio::time::sleep_until(start + Duration::from_secs_f64(*at_s)).await;
        let result = lab.act(action).await;
        let at = start.elapsed().as_secs_f64();
        println!("  {at:>6.1} s  {}", result.as_deref().map_or_else(|e| format!("FAILED: {e:#}"), |s| s.to_owned()));
        done.push(Done {
            planned_s: Some(*at_s),
            at_s: at,
            ok: result.is_ok(),
            what: result.unwrap_or_else(|e| format!("{e:#}")),
        });
    }
    done
}

async fn roll_back(lab: &Lab, actions: &[Action]) -> Vec<Done> {
    let start = Instant::now();
    let mut done = Vec::new();
    for action in actions {
        let result = lab.act(action).await;
        done.push(Done {
            planned_s: None,
            at_s: start.elapsed().as_secs_f64(),
            ok: result.is_ok(),
            what: result.unwrap_or_else(|e| format!("{e:#}")),
        });
    }
    done
}

/// Audit the build until it is consistent or the experiment's bound passes (settle bound 0:
/// everything counts, so a clean audit means every promise is kept, not just the old ones).
async fn audit_until_clean(lab: &Lab, experiment: &Experiment, build: Build) -> anyhow::Result<AuditOutcome> {
    let within = experiment
        .steady_state
        .iter()
        .filter(|p| p.applies_to(build))
        .find_map(|p| match p {
            Probe::AuditClean { within_s, .. } => Some(Duration::from_secs_f64(*within_s)),
            _ => None,
        })
        .unwrap_or(DEFAULT_AUDIT_WITHIN);
    let kind: Kind = build.kind();
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let report =
            crate::audit::audit(kind, lab.database_url(), &lab.databases, &lab.topology.extsim_url, Duration::ZERO)
                .await
                .context("auditing the build")?;
        let clean = report.violations.is_empty();
        let after_s = start.elapsed().as_secs_f64();
        if clean || start.elapsed() + AUDIT_EVERY > within {
            return Ok(AuditOutcome { clean, after_s, attempts, report });
        }
        tokio::time::sleep(AUDIT_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_experiment_parses() {
        for (name, text) in BUILT_IN {
            let parsed = Experiment::parse(text, name);
            assert!(parsed.is_ok(), "{name}: {:#}", parsed.err().map(|e| e.to_string()).unwrap_or_default());
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let error = format!("{:#}", resolve("no-such-thing").expect_err("refused"));
        assert!(error.contains("payments-killed") && error.contains("no-such-thing"), "{error}");
    }
}
