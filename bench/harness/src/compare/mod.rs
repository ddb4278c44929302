//! `archlab compare`: the same traffic against every build, one after the other on the same
//! machine, and a report.
//!
//! For each build (monolith, microservices over gRPC, over HTTP) it starts the processes as
//! `archlab up` does — the same [`Supervisor`], on fresh databases and broker names, on free
//! loopback ports, pinned to the chosen CPUs — seeds users, then:
//! 1. steps the offered load of the saturation scenario up ([`search`]) and keeps the highest
//!    rate whose p99 met the objective with errors under the budget;
//! 2. runs every scenario on its own at one common rate, for the percentile bars and the
//!    cost per request ([`cost`](crate::cost) meters that step);
//! 3. runs closed-loop users with think time, starting from Little's law, to say how many
//!    users the build holds at the objective;
//! 4. for the monolith, loads the hand-written baseline (`archlab-baseline`, plain axum +
//!    sqlx doing `GET /api/users/me`'s SQL) on the same database, against the same profile
//!    load, to judge what the architecture itself costs.
//!
//! Then it stops the build, drops its databases and moves on. Everything is bounded: a fixed
//! number of steps, each of fixed length, all on loopback.

pub mod search;

use crate::load::{self, Plan, Scenario, Seeded};
use crate::model::{BuildResult, CompareReport, Cost, Goal, LoadReport, Offered, Placement, RunMeta, Steal, Step};
use crate::supervisor::{self, GRACE, Restart, Supervisor};
use crate::topology::{Kind, Module, NotificationMode, Options, Topology, Transport};
use crate::{cost, placement, report};
use anyhow::{Context, bail};
use archlab_kernel::processes;
use hdrhistogram::Histogram;
use search::{Objective, Search};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One build `compare` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Build {
    /// The modular monolith.
    Monolith,
    /// The microservices calling each other over gRPC.
    MicroGrpc,
    /// The microservices calling each other over HTTP/JSON.
    MicroHttp,
    /// The monolith with notifications extracted (gRPC between the two).
    HybridNotifications,
    /// The monolith with payments extracted (gRPC between the two).
    HybridPayments,
    /// micro-grpc with two payments-service processes, balanced by the gateway.
    #[value(name = "micro-grpc-payments-x2")]
    MicroGrpcPaymentsX2,
}

impl Build {
    /// The name used in reports: `monolith`, `micro-grpc`, `micro-http`, `hybrid-notifications`,
    /// `hybrid-payments`, `micro-grpc-payments-x2`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Monolith => "monolith",
            Self::MicroGrpc => "micro-grpc",
            Self::MicroHttp => "micro-http",
            Self::HybridNotifications => "hybrid-notifications",
            Self::HybridPayments => "hybrid-payments",
            Self::MicroGrpcPaymentsX2 => "micro-grpc-payments-x2",
        }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Self::Monolith => Kind::Monolith,
            Self::MicroGrpc | Self::MicroHttp | Self::MicroGrpcPaymentsX2 => Kind::Micro,
            Self::HybridNotifications | Self::HybridPayments => Kind::Hybrid,
        }
    }

    pub(crate) fn transport(self) -> Option<Transport> {
        match self {
            Self::Monolith => None,
            Self::MicroGrpc | Self::HybridNotifications | Self::HybridPayments | Self::MicroGrpcPaymentsX2 => {
                Some(Transport::Grpc)
            }
            Self::MicroHttp => Some(Transport::Http),
        }
    }

    /// The module out of the monolith, for a hybrid.
    pub(crate) fn extract(self) -> Option<Module> {
        match self {
            Self::HybridNotifications => Some(Module::Notifications),
            Self::HybridPayments => Some(Module::Payments),
            _ => None,
        }
    }

    /// The topology options that run this build in `mode`, with an extsim.
    pub(crate) fn options(self, mode: NotificationMode) -> Options {
        Options {
            mode: Some(mode),
            transport: self.transport(),
            extsim: true,
            extract: self.extract().unwrap_or(Module::Notifications),
            payments_replicas: if self == Self::MicroGrpcPaymentsX2 { 2 } else { 1 },
            monolith_replicas: 1,
        }
    }
}

/// How thorough a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileName {
    /// Seconds per build, tiny load: proves the whole path works (used by `make test`).
    Smoke,
    /// About two minutes per build (`make compare`).
    Quick,
    /// Longer steps, finer search, more users.
    Full,
}

/// Every number a profile fixes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: ProfileName,
    pub search: Search,
    pub warmup: Duration,
    pub step: Duration,
    /// Length of the metered common-rate run of the saturation scenario, whose cost figures
    /// fill the cost table: longer than a step, so its CPU per request rests on enough
    /// requests.
    pub metered_step: Duration,
    /// Length of each headline run ([`headline_rounds`]).
    pub headline_step: Duration,
    /// Headline rounds per epoch: in each, every build runs the saturation scenario at the
    /// common rate once, in turn, then floods it for `flood_step`; the headline's figures are
    /// medians over the rounds (its p99 is taken over all their requests).
    pub headline_rounds: usize,
    /// Times the headline starts every build afresh (new processes, new databases) for
    /// another `headline_rounds` rounds. A build's figures keep a level for the life of its
    /// processes: in one experiment the micro-grpc/monolith CPU ratio read 1.80 to 1.95
    /// over five rounds of one start and 2.02 to 2.11 over five rounds of the next. More
    /// rounds of one start cannot average that away; more starts can.
    pub headline_epochs: usize,
    /// Warm-up of each headline run and flood: the builds were warmed by a flood at the
    /// start of each epoch, so this only has to cover the run's own new connections.
    pub headline_warmup: Duration,
    /// Length of each headline flood (after the warm-up).
    pub flood_step: Duration,
    /// Rate of the common-rate runs (and of the metered step).
    pub common_rate: f64,
    /// Login and signup are bound by password hashing, the same in every build; they run at
    /// this lower rate so the common-rate runs measure the path, not a hash queue. `mixed`
    /// (15 % of it login or signup) runs at five times this rate, the same hashes per second.
    pub hash_rate: f64,
    pub connections: u32,
    pub seed_users: u32,
    pub think_time_ms: u64,
    /// Closed-loop runs in the users search (the first at Little's law's estimate).
    pub user_runs: usize,
    /// Rate far above any build's capacity, for the baseline's and the monolith's maximum
    /// throughput on `profile` (open loop, so the connections run back to back).
    pub flood_rate: f64,
}

impl Profile {
    /// The numbers of `name`.
    pub fn of(name: ProfileName) -> Self {
        // Four bisections after the 1.6× steps leave the saturation point within 3 %
        // (1.6^(1/16)). A ratio of two such points can then move by 6 % from the grid alone,
        // leaving room in the 10 % that three runs must agree within; three bisections (6 %
        // each, 12 % for the ratio) used it all up. Each miss is run twice before it counts
        // (see `search`): up to five more steps.
        let search = Search {
            start: 500.0,
            factor: 1.6,
            refinements: 4,
            max_steps: 18,
            max_rate: 60_000.0,
            confirm_misses: true,
        };
        match name {
            ProfileName::Smoke => Self {
                name,
                search: Search {
                    start: 20.0,
                    factor: 2.0,
                    refinements: 0,
                    max_steps: 2,
                    max_rate: 40.0,
                    confirm_misses: false,
                },
                warmup: Duration::from_millis(200),
                step: Duration::from_millis(800),
                metered_step: Duration::from_millis(800),
                headline_step: Duration::from_millis(800),
                headline_rounds: 1,
                headline_epochs: 1,
                headline_warmup: Duration::from_millis(200),
                flood_step: Duration::from_millis(500),
                common_rate: 20.0,
                hash_rate: 5.0,
                connections: 4,
                seed_users: 4,
                think_time_ms: 100,
                user_runs: 1,
                flood_rate: 200.0,
            },
            ProfileName::Quick => Self {
                name,
                search,
                // Half a second of warm-up and 2 s steps: at 500 req/s and up a step still
                // holds 1,000 requests or more, and the time saved goes to the headline.
                warmup: Duration::from_millis(500),
                step: Duration::from_secs(2),
                metered_step: Duration::from_secs(8),
                // Many short turns rather than a few long ones. Floods of the builds in the
                // same round moved together (correlation about 0.4 over 30 rounds of 1.5 s
                // floods) and consecutive rounds did not, so the machine's swings last
                // seconds: the quicker the builds alternate, the more of a swing they share
                // and the more of it cancels in their ratio. 3 starts × 8 rounds of 1.5 s
                // runs (450 requests each, 10,800 per build pooled) and 0.75 s floods.
                headline_step: Duration::from_millis(1500),
                headline_rounds: 8,
                headline_epochs: 3,
                headline_warmup: Duration::from_millis(250),
                flood_step: Duration::from_millis(750),
                common_rate: 300.0,
                hash_rate: 20.0,
                connections: 64,
                seed_users: 100,
                think_time_ms: 1000,
                user_runs: 3,
                flood_rate: 100_000.0,
            },
            ProfileName::Full => Self {
                name,
                search: Search { start: 250.0, refinements: 5, max_steps: 24, ..search },
                warmup: Duration::from_secs(5),
                step: Duration::from_secs(20),
                metered_step: Duration::from_secs(30),
                headline_step: Duration::from_secs(10),
                headline_rounds: 8,
                headline_epochs: 3,
                headline_warmup: Duration::from_secs(1),
                flood_step: Duration::from_secs(5),
                common_rate: 300.0,
                hash_rate: 20.0,
                connections: 64,
                seed_users: 1000,
                think_time_ms: 1000,
                user_runs: 3,
                flood_rate: 100_000.0,
            },
        }
    }
}

/// Arguments of `archlab compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// How thorough: `smoke` (seconds), `quick` (`make compare`), `full`.
    #[arg(long, value_enum, default_value_t = ProfileName::Quick)]
    pub profile: ProfileName,
    /// Shorthand for `--profile full`.
    #[arg(long, conflicts_with = "profile")]
    pub full: bool,
    /// Builds to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Build::Monolith, Build::MicroGrpc, Build::MicroHttp])]
    pub builds: Vec<Build>,
    /// Notification delivery for every build.
    #[arg(long, value_enum, default_value_t = NotificationMode::Async)]
    pub mode: NotificationMode,
    /// The scenario stepped up to saturation.
    #[arg(long, value_enum, default_value_t = Scenario::Browse)]
    pub scenario: Scenario,
    /// The latency objective of the saturation search: p99 at most this many milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub objective_p99_ms: f64,
    /// Error budget of the saturation search, as a share (0.01 = 1 %).
    #[arg(long, default_value_t = 0.01)]
    pub error_budget: f64,
    #[command(flatten)]
    pub placement: placement::PlacementArgs,
    /// Directory for report.md, report.html, report.json and the plots.
    #[arg(long, default_value = "target/compare")]
    pub out: PathBuf,
    /// Directory holding the binaries [default: the directory of this `archlab`].
    #[arg(long, env = "ARCHLAB_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Criterion's output to include in the report.
    #[arg(long, default_value = "target/criterion")]
    pub criterion_dir: PathBuf,
    /// Run the whole comparison this many times (each into `<out>/run-<n>`) and write how
    /// far the headline ratios moved between runs (`<out>/reproducibility.md`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=5))]
    pub repeat: u32,
    /// Measure nothing: render the reports of earlier runs from their report.json files
    /// (goals recomputed from the figures; criterion's figures taken from `--criterion-dir`
    /// when it holds any), the last as the report, and with two or more the reproducibility
    /// table.
    #[arg(long, value_name = "REPORT_JSON", num_args = 1..)]
    pub render: Vec<PathBuf>,
    /// Skip the hand-written baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// PostgreSQL server URL without a database (the builds' `DATABASE_URL`).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_url: String,
}

/// Run `archlab compare`.
pub async fn run(args: CompareArgs) -> anyhow::Result<()> {
    if !args.render.is_empty() {
        return render(&args.render, &args.out, &args.criterion_dir);
    }
    let profile = Profile::of(if args.full { ProfileName::Full } else { args.profile });
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => crate::up::default_bin_dir()?,
    };
    // Decided and applied once: after pinning, this process sees only the generator's CPUs.
    let cpus = args.placement.apply()?;
    if args.repeat == 1 {
        let report = compare(&args, profile, &bin_dir, &cpus).await?;
        return write(&report, &args.out);
    }
    let mut reports = Vec::new();
    for n in 1..=args.repeat {
        println!("archlab compare: run {n} of {}", args.repeat);
        let report = compare(&args, profile, &bin_dir, &cpus).await?;
        write(&report, &args.out.join(format!("run-{n}")))?;
        reports.push(report);
    }
    let path = args.out.join("reproducibility.md");
    let table = report::reproducibility_markdown(&reports, REPRODUCIBILITY_TOLERANCE);
    std::fs::write(&path, &table).with_context(|| format!("writing {}", path.display()))?;
    println!("\n{table}\narchlab compare: wrote {}", path.display());
    Ok(())
}

/// `--render`: earlier runs' reports written again from their raw JSON, with the criterion
/// figures found in `criterion_dir` when it holds any (`make bench` run after the
/// comparison), else the ones each report recorded.
fn render(files: &[PathBuf], out: &Path, criterion_dir: &Path) -> anyhow::Result<()> {
    let benches = crate::criterion::read(criterion_dir).unwrap_or_default();
    let mut reports = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let mut report: CompareReport =
            serde_json::from_str(&text).with_context(|| format!("{} is not a compare report", file.display()))?;
        if !benches.is_empty() {
            report.benches = benches.clone();
        }
        report.goals = goals(&report);
        reports.push(report);
    }
    let last = reports.last().context("nothing to render")?;
    write(last, out)?;
    if reports.len() > 1 {
        let path = out.join("reproducibility.md");
        std::fs::write(&path, report::reproducibility_markdown(&reports, REPRODUCIBILITY_TOLERANCE))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("archlab compare: wrote {}", path.display());
    }
    Ok(())
}

/// How far the headline ratios may move between runs of the same profile and placement.
pub const REPRODUCIBILITY_TOLERANCE: f64 = 0.10;

fn write(report: &CompareReport, dir: &Path) -> anyhow::Result<()> {
    let written = report::write(report, dir).with_context(|| format!("writing the report to {}", dir.display()))?;
    println!("\n{}", report::headline_markdown(report));
    for path in written {
        println!("archlab compare: wrote {}", path.display());
    }
    Ok(())
}

/// Measure every build of `args` with the generator already placed as `cpus` says, and
/// return the report (nothing written yet).
pub async fn compare(
    args: &CompareArgs,
    profile: Profile,
    bin_dir: &Path,
    cpus: &placement::Plan,
) -> anyhow::Result<CompareReport> {
    let objective = Objective { p99_us: (args.objective_p99_ms * 1000.0) as u64, error_budget: args.error_budget };
    let mut names: Vec<&str> = Vec::new();
    for build in &args.builds {
        names.extend(Topology::new(build.kind(), Options::default(), |_| None).names());
    }
    if !args.no_baseline && args.builds.contains(&Build::Monolith) {
        names.push(BASELINE);
    }
    names.sort_unstable();
    names.dedup();
    supervisor::check_binaries(bin_dir, &names)?;
    check_connection_room(args).await?;

    let run_id = format!("{:08x}", rand::random::<u32>());
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut builds = Vec::new();
    let mut baseline = None;
    let mut observed = None;
    for &build in &args.builds {
        println!("archlab compare: {} ({} profile)", build.name(), profile_label(profile.name));
        let ctx = BuildContext { args, profile, objective, bin_dir, cpus, run_id: &run_id };
        let (result, base, placement) =
            measure_build(&ctx, build).await.with_context(|| format!("measuring {}", build.name()))?;
        builds.push(result);
        observed.get_or_insert(placement);
        if base.is_some() {
            baseline = base;
        }
    }

    let mut headline_steal = None;
    if builds.len() > 1 && profile.headline_rounds > 0 {
        println!(
            "archlab compare: headline rounds ({} starts × {} rounds; each round {} s at the common rate and {} s of flood per build, the builds up together and taking turns)",
            profile.headline_epochs.max(1),
            profile.headline_rounds,
            profile.headline_step.as_secs_f64(),
            profile.flood_step.as_secs_f64()
        );
        let ctx = BuildContext { args, profile, objective, bin_dir, cpus, run_id: &run_id };
        let cpu_times = || -> anyhow::Result<_> {
            Ok((placement::CpuTimes::read(cpus.app.as_ref())?, placement::CpuTimes::read(cpus.load.as_ref())?))
        };
        let before = cpu_times()?;
        let mut all: Vec<Turns> = Vec::new();
        for epoch in 1..=profile.headline_epochs.max(1) {
            let turns =
                headline_rounds(&ctx, epoch).await.with_context(|| format!("the headline rounds, start {epoch}"))?;
            if all.is_empty() {
                all = turns;
            } else {
                for (into, more) in all.iter_mut().zip(turns) {
                    into.extend(more)?;
                }
            }
        }
        let after = cpu_times()?;
        headline_steal = Some(Steal {
            app_cpus: after.0.steal_share_since(before.0).unwrap_or(0.0),
            load_cpus: after.1.steal_share_since(before.1).unwrap_or(0.0),
        });
        for (result, turns) in builds.iter_mut().zip(all) {
            result.headline_latency = turns.latency.as_ref().map(crate::load::recorder::percentiles);
            result.headline_runs = turns.runs;
            result.headline_cpu_s_per_1k = turns.cpu_s_per_1k;
            result.headline_floods = turns.floods;
        }
    }

    let benches = crate::criterion::read(&args.criterion_dir).unwrap_or_default();
    let mut report = CompareReport {
        meta: RunMeta {
            started_at,
            profile: build_profile(bin_dir),
            profile_name: profile_label(profile.name).to_owned(),
            placement: observed.unwrap_or_else(|| placement::observe(args.placement.placement, None, None)),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            settings: child_settings(args.mode),
            headline_steal,
            ..machine_meta()
        },
        objective_p99_ms: args.objective_p99_ms,
        error_budget: args.error_budget,
        saturation_scenario: args.scenario.to_string(),
        common_rate_per_s: profile.common_rate,
        think_time_ms: profile.think_time_ms,
        builds,
        baseline,
        goals: Vec::new(),
        benches,
    };
    report.goals = goals(&report);
    Ok(report)
}

/// The baseline's binary.
const BASELINE: &str = "archlab-baseline";

/// What every build's measurement shares.
struct BuildContext<'a> {
    args: &'a CompareArgs,
    profile: Profile,
    objective: Objective,
    bin_dir: &'a Path,
    cpus: &'a placement::Plan,
    run_id: &'a str,
}

/// Free loopback ports ([`crate::ports`]) for every listener and fresh database and broker names, so a compare
/// run touches nothing a running `archlab up` or a test uses.
pub(crate) fn isolated_env(build: Build, run_id: &str, database_url: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    let listeners: Vec<processes::Listener> =
        processes::ALL.iter().flat_map(|spec| std::iter::once(spec.http).chain(spec.grpc)).collect();
    // payments-service's further replicas too, should the run have them.
    let payments = processes::PAYMENTS_SERVICE;
    let replica_vars: Vec<String> = (2..=crate::topology::MAX_REPLICAS)
        .flat_map(|k| {
            let listeners = std::iter::once(payments.http).chain(payments.grpc);
            listeners.map(move |l| crate::topology::replica_addr_var(l.addr_var, k))
        })
        .collect();
    let ports = crate::ports::free_loopback_ports(listeners.len() + replica_vars.len())
        .context("finding free loopback ports")?;
    let (ports, replica_ports) = ports.split_at(listeners.len());
    for (l, port) in listeners.iter().zip(ports) {
        env.push((l.addr_var.to_owned(), format!("127.0.0.1:{port}")));
        env.push((l.url_var.to_owned(), format!("http://127.0.0.1:{port}")));
    }
    for (var, port) in replica_vars.into_iter().zip(replica_ports) {
        env.push((var, format!("127.0.0.1:{port}")));
    }
    for spec in processes::ALL {
        if let Some((var, name)) = spec.database {
            env.push((var.to_owned(), format!("{name}_cmp_{run_id}_{}", build.name().replace('-', "_"))));
        }
    }
    let broker = format!("archlab.cmp.{run_id}.{}", build.name());
    env.extend([
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("AMQP_EXCHANGE".to_owned(), format!("{broker}.events")),
        ("AMQP_QUEUE".to_owned(), format!("{broker}.notifications")),
        // The queue goes away by itself a minute after the run stops using it.
        ("AMQP_QUEUE_EXPIRES_MS".to_owned(), "60000".to_owned()),
        // Only what goes wrong reaches the terminal; request logs would cost the builds CPU.
        ("RUST_LOG".to_owned(), "warn".to_owned()),
        // No span export unless a measurement asks for it: an endpoint in the caller's
        // environment would otherwise make this run measure a tracing pipeline too.
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), String::new()),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_owned(), String::new()),
    ]);
    env.extend(child_settings_env());
    Ok(env)
}

/// Connections per database pool in every compare run (`DB_MAX_CONNECTIONS`; the
/// binaries' default is 20), the baseline's included. In the headline rounds every build is
/// up at once, and pools keep what a burst grew them to: with 20 per pool the monolith's one
/// pool and the two microservices builds' four each reached more than PostgreSQL's default
/// `max_connections` of 100 between them, and the server refused connections mid-run.
/// 9 pools of 10 fit, with room for the harness's own.
pub const POOL_SIZE: u32 = 10;

/// Connections the harness keeps for itself on top of the builds' pools (the meter, the
/// clean-up, a psql someone has open).
const HARNESS_CONNECTIONS: u32 = 10;

/// The settings load needs that differ from the binaries' defaults: the abuse limits are
/// off, since a load generator is one address hammering a few accounts; and the pools are
/// [`POOL_SIZE`].
fn child_settings_env() -> Vec<(String, String)> {
    ["AUTH_LIMIT_PER_ADDRESS_PER_MINUTE", "AUTH_LIMIT_PER_ACCOUNT_PER_HOUR", "PASSWORD_HASH_CONCURRENCY"]
        .into_iter()
        .map(|k| (k.to_owned(), "0".to_owned()))
        .chain([("DB_MAX_CONNECTIONS".to_owned(), POOL_SIZE.to_string())])
        .collect()
}

/// Refuse to start when the builds' pools, all up at once in the headline rounds, could
/// hold more connections than the PostgreSQL server allows: a run that fails after minutes
/// with "too many clients" says less than one that fails now and says what to change.
async fn check_connection_room(args: &CompareArgs) -> anyhow::Result<()> {
    let pools: u32 = args
        .builds
        .iter()
        .flat_map(|b| Topology::new(b.kind(), b.options(NotificationMode::Async), |_| None).processes)
        .filter(|p| processes::ALL.iter().any(|spec| spec.name == p.binary && spec.database.is_some()))
        .count() as u32;
    connection_room(pools, cost::max_connections(&admin_url(&args.database_url)).await?)
}

/// Whether `pools` pools of [`POOL_SIZE`] and the harness's own connections fit in a server
/// that allows `allowed`; if not, an error that says what to change.
fn connection_room(pools: u32, allowed: u32) -> anyhow::Result<()> {
    let needed = pools * POOL_SIZE + HARNESS_CONNECTIONS;
    if needed > allowed {
        bail!(
            "the builds' {pools} database pools of {POOL_SIZE} connections, up together, plus {HARNESS_CONNECTIONS} for the harness need {needed} connections; \
             the PostgreSQL server allows {allowed} (max_connections). Raise it (ALTER SYSTEM SET max_connections = {needed}; then restart PostgreSQL) or compare fewer builds"
        );
    }
    Ok(())
}

pub(crate) fn child_settings(mode: NotificationMode) -> BTreeMap<String, String> {
    let mut settings: BTreeMap<String, String> = child_settings_env().into_iter().collect();
    settings.insert("NOTIFICATION_MODE".into(), mode.to_string());
    settings.insert("RUST_LOG".into(), "warn".into());
    settings
}

/// One build running in its own isolated environment ([`isolated_env`]): what
/// `archlab compare` and `archlab trace-overhead` measure.
///
/// Its processes run under [`Restart::Off`] and [`Running::watch`] fails on the first exit:
/// a measurement taken while a process was dead (or restarting) measures a different
/// system, so it is thrown away rather than reported.
pub(crate) struct Running {
    pub topology: Topology,
    /// What the cost meter watches: the build's processes, databases and `/metrics`.
    pub target: cost::Target,
    /// From spawning the first process to every process ready.
    pub startup: Duration,
    pub children: Supervisor,
    admin_url: String,
    /// Keeps the build's PostgreSQL backends on its CPUs, when it is pinned.
    backends: Option<placement::BackendPinner>,
}

impl Running {
    /// Start `build` on fresh databases and broker names named after `run_id`, pinned to
    /// `app_cpus`, with `extra_env` over the isolated environment; wait until every process
    /// is ready. On failure whatever started is stopped and its databases dropped.
    pub(crate) async fn start(
        build: Build,
        mode: NotificationMode,
        run_id: &str,
        database_url: &str,
        bin_dir: &Path,
        app_cpus: Option<&str>,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Running> {
        let mut env = isolated_env(build, run_id, database_url)?;
        env.extend(extra_env.iter().cloned());
        let lookup = crate::topology::lookup_over(&env);
        let mut topology = Topology::new(build.kind(), build.options(mode), lookup);
        // Under the topology's own settings, which read these and come after them.
        topology.env.splice(0..0, env.iter().cloned());
        let admin_url = admin_url(database_url);

        let started = Instant::now();
        let children = Supervisor::start_pinned(&topology, bin_dir, false, app_cpus, Restart::Off).await?;
        let target = cost::Target::of(&topology, &children.pids(), &admin_url, lookup);
        let mut running = Running { topology, target, startup: Duration::ZERO, children, admin_url, backends: None };
        let processes = running.topology.processes.clone();
        let mut ready = running.watch(supervisor::wait_ready(&processes, Duration::from_secs(60))).await;
        running.startup = started.elapsed();
        if let (Ok(()), Some(cpus)) = (&ready, app_cpus) {
            let pinner = async {
                let cpus = placement::Cpus::parse(cpus)?;
                placement::BackendPinner::start(&running.admin_url, running.target.databases.clone(), &cpus).await
            };
            ready = pinner.await.map(|pinner| running.backends = Some(pinner));
        }
        match ready {
            Ok(()) => Ok(running),
            Err(error) => {
                let _ = running.stop().await;
                Err(error)
            }
        }
    }

    /// `work` to completion, unless one of the build's processes exits first (it stays down:
    /// [`Restart::Off`]).
    pub(crate) async fn watch<T>(&mut self, work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        tokio::select! {
            result = work => result,
            exit = self.children.next_exit() => bail!("{} exited ({})", exit.name, exit.describe()),
        }
    }

    /// Stop every process (gracefully: they flush their spans) and drop the databases.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        self.children.stop(GRACE, std::future::pending()).await;
        cost::drop_databases(&self.admin_url, &self.target.databases).await.context("dropping the run's databases")
    }
}

/// What one build did in the headline rounds, one entry per round.
#[derive(Debug, Clone, Default)]
struct Turns {
    /// The saturation scenario at the common rate.
    runs: Vec<LoadReport>,
    /// CPU-seconds per 1k requests of each of `runs`.
    cpu_s_per_1k: Vec<f64>,
    /// The saturation scenario offered far above capacity: the most the build answers.
    floods: Vec<LoadReport>,
    /// The latencies of every one of `runs`, pooled.
    latency: Option<Histogram<u64>>,
}

impl Turns {
    /// One more run at the common rate, with its CPU and its latency histogram.
    fn push_run(&mut self, report: LoadReport, cpu_s_per_1k: f64, latency: &Histogram<u64>) -> anyhow::Result<()> {
        match &mut self.latency {
            Some(pooled) => pooled.add(latency).context("pooling headline latencies")?,
            None => self.latency = Some(latency.clone()),
        }
        self.runs.push(report);
        self.cpu_s_per_1k.push(cpu_s_per_1k);
        Ok(())
    }

    /// Another start's rounds after these.
    fn extend(&mut self, more: Turns) -> anyhow::Result<()> {
        if let Some(latency) = &more.latency {
            match &mut self.latency {
                Some(pooled) => pooled.add(latency).context("pooling headline latencies")?,
                None => self.latency = Some(latency.clone()),
            }
        }
        self.runs.extend(more.runs);
        self.cpu_s_per_1k.extend(more.cpu_s_per_1k);
        self.floods.extend(more.floods);
        Ok(())
    }
}

/// The headline's runs of every build of `ctx.args`: all of them up at once (fresh
/// databases and broker names again), and in each round every build runs the saturation
/// scenario at the common rate in turn, then every build floods it in turn, the order
/// rotated from round to round. Measured one build after another, minutes apart, a build's
/// figures moved with the machine by up to 40 % between runs of the whole comparison, in
/// opposite directions for two builds (the saturation ratio by 35 to 41 %); taking turns
/// within seconds, a drift moves every build alike and cancels in their ratios. Each
/// common-rate run is metered for CPU only (no settling: the transaction counts are the
/// cost table's). The builds' pools, all up at once, fit in the server because every pool
/// is [`POOL_SIZE`]. Per build, in `ctx.args.builds` order. `epoch` numbers the start
/// ([`Profile::headline_epochs`]), which names its databases.
async fn headline_rounds(ctx: &BuildContext<'_>, epoch: usize) -> anyhow::Result<Vec<Turns>> {
    let args = ctx.args;
    let app_cpus = ctx.cpus.app_list();
    let run_id = format!("{}r{epoch}", ctx.run_id);
    let mut running: Vec<Running> = Vec::new();
    for &build in &args.builds {
        let started =
            Running::start(build, args.mode, &run_id, &args.database_url, ctx.bin_dir, app_cpus.as_deref(), &[]).await;
        match started {
            Ok(r) => running.push(r),
            Err(error) => {
                for r in running {
                    let _ = r.stop().await;
                }
                return Err(error.context(format!("starting {}", build.name())));
            }
        }
    }
    let outcome = take_turns(ctx, &mut running).await;
    for r in running {
        let _ = r.stop().await;
    }
    outcome
}

async fn take_turns(ctx: &BuildContext<'_>, running: &mut [Running]) -> anyhow::Result<Vec<Turns>> {
    let profile = ctx.profile;
    let mut seeded = Vec::new();
    for r in running.iter() {
        seeded.push(
            load::seed(&r.topology.public_url, Scenario::Mixed, profile.seed_users).await.context("seeding users")?,
        );
        cost::analyze(&r.target.admin_url, &r.target.databases).await?;
    }
    let n = running.len();
    let plan = |target: &str, rate_per_s: f64, duration: Duration| Plan {
        target: target.to_owned(),
        scenario: ctx.args.scenario,
        offered: Offered::Open { rate_per_s },
        connections: profile.connections,
        warmup: profile.headline_warmup,
        duration,
        max_requests: u64::MAX,
        timeout: Duration::from_secs(5),
        progress: false,
    };
    // One discarded flood each first: every pool grown to what a flood needs and every cache
    // warm before the first measured turn. Without it the first rounds' figures ran high
    // (the monolith's CPU per 1,000 requests read 1.86, 1.53 and then 0.74 s in one run).
    for i in 0..n {
        let warm = plan(&running[i].topology.public_url, profile.flood_rate, profile.flood_step * 2);
        let report = running[i].watch(load::run(&warm, &seeded[i])).await?;
        println!("  warm-up {:>10} flood: {}", ctx.args.builds[i].name(), one_line(&report, true));
    }
    let mut out = vec![Turns::default(); n];
    for round in 0..profile.headline_rounds {
        for turn in 0..n {
            let i = (round + turn) % n;
            let run = plan(&running[i].topology.public_url, profile.common_rate, profile.headline_step);
            let meter = cost::Meter::start(running[i].target.clone()).await?;
            let (report, latency) = running[i].watch(load::run_histogram(&run, &seeded[i])).await?;
            let measured = meter.finish_with(report.requests + warmup_requests(&report), Duration::ZERO).await?;
            let cpu = measured.per_1k(measured.cpu_s_app + measured.cpu_s_postgres + measured.cpu_s_rabbitmq);
            println!(
                "  round {} {:>10}: {}, {cpu:.3} CPU-s per 1k",
                round + 1,
                ctx.args.builds[i].name(),
                one_line(&report, ctx.objective.holds(&report))
            );
            out[i].push_run(report, cpu, &latency)?;
        }
        for turn in 0..n {
            let i = (round + turn) % n;
            let flood = plan(&running[i].topology.public_url, profile.flood_rate, profile.flood_step);
            let report = running[i].watch(load::run(&flood, &seeded[i])).await?;
            println!("  round {} {:>10} flood: {}", round + 1, ctx.args.builds[i].name(), one_line(&report, true));
            out[i].floods.push(report);
        }
    }
    Ok(out)
}

/// Where `running`'s processes, one of its PostgreSQL backends and the shared servers may run.
pub(crate) async fn observe(preset: placement::Preset, running: &Running) -> Placement {
    let backends = cost::postgres_backends(&running.target.admin_url, &running.target.databases).await;
    let backend = backends.ok().and_then(|pids| pids.first().copied());
    placement::observe(preset, running.target.app_pids.first().copied(), backend)
}

/// Start one build, measure it, stop it, drop its databases. Also says where its processes
/// were allowed to run.
async fn measure_build(
    ctx: &BuildContext<'_>,
    build: Build,
) -> anyhow::Result<(BuildResult, Option<BuildResult>, Placement)> {
    let app_cpus = ctx.cpus.app_list();
    let mut running =
        Running::start(build, ctx.args.mode, ctx.run_id, &ctx.args.database_url, ctx.bin_dir, app_cpus.as_deref(), &[])
            .await?;
    let placement = observe(ctx.args.placement.placement, &running).await;
    let (topology, target, startup) = (running.topology.clone(), running.target.clone(), running.startup);
    let outcome = running.watch(measure_running(ctx, build, &topology, &target, startup)).await;
    let stopped = running.stop().await;
    let (mut result, base) = outcome?;
    stopped?;
    result.cost.processes = app_process_count(&topology);
    result.cost.binaries = cost::binaries(ctx.bin_dir, &app_names(&topology))?;
    result.cost.binaries_total_bytes = result.cost.binaries.values().sum();
    let (lines, files) = cost::deploy_config(build.kind());
    result.cost.deploy_config_lines = lines;
    result.cost.deploy_config_files = files;
    Ok((result, base, placement))
}

/// The maintenance database on the builds' server, where the meter and the clean-up connect.
pub(crate) fn admin_url(database_url: &str) -> String {
    format!("{}/postgres", database_url.trim_end_matches('/'))
}

fn app_names(topology: &Topology) -> Vec<&'static str> {
    topology.names().into_iter().filter(|n| *n != processes::EXTSIM.name).collect()
}

fn app_process_count(topology: &Topology) -> u32 {
    app_names(topology).len() as u32
}

/// The measurement proper, on a running build.
async fn measure_running(
    ctx: &BuildContext<'_>,
    build: Build,
    topology: &Topology,
    meter: &cost::Target,
    startup: Duration,
) -> anyhow::Result<(BuildResult, Option<BuildResult>)> {
    let profile = ctx.profile;
    let target = topology.public_url.clone();

    let mut cost = Cost { startup_ms: startup.as_millis() as u64, ..Cost::default() };
    (cost.rss_idle_bytes, cost.db_connections_idle) = meter.snapshot().await?;

    let seeded = load::seed(&target, Scenario::Mixed, profile.seed_users).await.context("seeding users")?;
    cost::analyze(&meter.admin_url, &meter.databases).await?;
    let plan = |scenario: Scenario, offered: Offered| Plan {
        target: target.clone(),
        scenario,
        offered,
        connections: profile.connections,
        warmup: profile.warmup,
        duration: profile.step,
        max_requests: u64::MAX,
        timeout: Duration::from_secs(5),
        progress: false,
    };

    // 1. The saturation search.
    let mut steps: Vec<Step> = Vec::new();
    let mut heaviest = None;
    while let Some(rate) =
        profile.search.next(&steps.iter().map(|s| (s.rate_per_s, s.within_objective)).collect::<Vec<_>>())
    {
        let report = load::run(&plan(ctx.args.scenario, Offered::Open { rate_per_s: rate }), &seeded).await?;
        let within = ctx.objective.holds(&report);
        println!("  {} {:>8.0} req/s offered: {}", ctx.args.scenario, rate, one_line(&report, within));
        if within {
            heaviest = Some(meter.snapshot().await?);
        }
        steps.push(Step { rate_per_s: rate, report, within_objective: within });
    }
    let saturation = search::saturation(&steps);
    let (rss_heaviest, connections_heaviest) = match heaviest {
        Some(snapshot) => snapshot,
        None => meter.snapshot().await?,
    };

    // 2. Every scenario at the common rate; the saturation scenario's run is metered.
    let mut at_common_rate = Vec::new();
    for scenario in
        [Scenario::Browse, Scenario::Profile, Scenario::Purchase, Scenario::Mixed, Scenario::Login, Scenario::Signup]
    {
        let rate = match scenario {
            Scenario::Login | Scenario::Signup => profile.hash_rate,
            Scenario::Mixed => profile.hash_rate * 5.0,
            _ => profile.common_rate,
        };
        let metered = scenario == ctx.args.scenario;
        let before = if metered { Some(cost::Meter::start(meter.clone()).await?) } else { None };
        let mut run = plan(scenario, Offered::Open { rate_per_s: rate });
        if metered {
            run.duration = profile.metered_step;
        }
        let report = load::run(&run, &seeded).await?;
        println!("  {scenario:>8} at {rate:>5.0} req/s: {}", one_line(&report, ctx.objective.holds(&report)));
        if let Some(before) = before {
            let settle = if profile.name == ProfileName::Smoke { Duration::from_secs(2) } else { cost::STATS_SETTLE };
            let measured = before.finish_with(report.requests + warmup_requests(&report), settle).await?;
            measured.apply(&mut cost);
        }
        at_common_rate.push(report);
    }

    // Under load: the heavier of the last step that met the objective and the metered one.
    cost.rss_load_bytes = cost.rss_load_bytes.max(rss_heaviest);
    cost.db_connections_load = cost.db_connections_load.max(connections_heaviest);

    // 3. Users with think time, from Little's law's estimate.
    let (user_runs, users_at_objective) = users_search(ctx, &target, &seeded, saturation.as_ref(), &steps).await?;

    let mut result = BuildResult {
        name: build.name().to_owned(),
        mode: ctx.args.mode.to_string(),
        steps,
        saturation,
        at_common_rate,
        headline_runs: Vec::new(),
        headline_cpu_s_per_1k: Vec::new(),
        headline_floods: Vec::new(),
        headline_latency: None,
        user_runs,
        users_at_objective,
        max_throughput: Vec::new(),
        cost,
    };

    // 4. The baseline, on the monolith's own database and users.
    let mut baseline = None;
    if build == Build::Monolith && !ctx.args.no_baseline {
        let flood = |target: &str| Plan {
            target: target.to_owned(),
            ..plan(Scenario::Profile, Offered::Open { rate_per_s: profile.flood_rate })
        };
        let mono = load::run(&flood(&target), &seeded).await?;
        println!("  monolith profile flood: {}", one_line(&mono, true));
        result.max_throughput.push(mono);
        baseline = Some(measure_baseline(ctx, topology, &seeded, &flood).await?);
    }
    Ok((result, baseline))
}

/// Requests sent during the warm-up, which the meter's counters also saw.
fn warmup_requests(report: &LoadReport) -> u64 {
    match report.offered {
        Offered::Open { rate_per_s } => (rate_per_s * report.warmup_s).round() as u64,
        Offered::Closed { .. } => 0,
    }
}

/// Closed-loop users: Little's law's estimate first, then up or down by a quarter.
async fn users_search(
    ctx: &BuildContext<'_>,
    target: &str,
    seeded: &Seeded,
    saturation: Option<&crate::model::Saturation>,
    steps: &[Step],
) -> anyhow::Result<(Vec<LoadReport>, Option<u32>)> {
    let profile = ctx.profile;
    let Some(saturation) = saturation else { return Ok((Vec::new(), None)) };
    let p50 = steps.iter().find(|s| s.rate_per_s == saturation.rate_per_s).map_or(0, |s| s.report.latency.p50_us);
    let mut users = search::users_estimate(saturation, p50, profile.think_time_ms);
    let mut runs = Vec::new();
    let mut best = None;
    for _ in 0..profile.user_runs {
        let plan = Plan {
            target: target.to_owned(),
            scenario: ctx.args.scenario,
            offered: Offered::Closed { users, think_time_ms: profile.think_time_ms },
            connections: users,
            warmup: profile.warmup.max(Duration::from_millis(profile.think_time_ms * 2)),
            duration: profile.step,
            max_requests: u64::MAX,
            timeout: Duration::from_secs(5),
            progress: false,
        };
        let report = load::run(&plan, seeded).await?;
        let held = ctx.objective.holds_closed(&report);
        println!("  {users:>8} users, {} ms think: {}", profile.think_time_ms, one_line(&report, held));
        runs.push(report);
        if held {
            best = best.max(Some(users));
            users = (users as f64 * 1.25).ceil() as u32;
        } else {
            users = ((users as f64 * 0.75).floor() as u32).max(1);
        }
    }
    Ok((runs, best))
}

/// Load the baseline with the monolith's users, on the monolith's database.
async fn measure_baseline(
    ctx: &BuildContext<'_>,
    topology: &Topology,
    seeded: &Seeded,
    flood: &dyn Fn(&str) -> Plan,
) -> anyhow::Result<BuildResult> {
    let port = crate::ports::free_loopback_ports(1).context("finding a free port")?[0];
    let addr = format!("127.0.0.1:{port}");
    let monolith_db_var = processes::MONOLITH.database.map_or("MONOLITH_DATABASE", |d| d.0);
    let database = topology.env.iter().find(|(k, _)| k == monolith_db_var).map(|(_, v)| v.clone());
    let baseline_topology = topology.single(
        BASELINE,
        &addr,
        vec![
            ("BASELINE_ADDR".to_owned(), addr.clone()),
            ("DATABASE_URL".to_owned(), ctx.args.database_url.clone()),
            ("DB_MAX_CONNECTIONS".to_owned(), POOL_SIZE.to_string()),
            (monolith_db_var.to_owned(), database.context("the monolith has a database")?),
        ],
    );
    let started = Instant::now();
    let app_cpus = ctx.cpus.app_list();
    let mut child =
        Supervisor::start_pinned(&baseline_topology, ctx.bin_dir, false, app_cpus.as_deref(), Restart::Off).await?;
    let measured = async {
        supervisor::wait_ready(&baseline_topology.processes, Duration::from_secs(30)).await?;
        let startup = started.elapsed();
        let pids: Vec<u32> = child.pids().into_iter().map(|(_, pid)| pid).collect();
        let idle = cost::sample_pids(&pids)?;
        let report = load::run(&flood(&baseline_topology.public_url), seeded).await?;
        println!("  baseline profile flood: {}", one_line(&report, true));
        let loaded = cost::sample_pids(&pids)?;
        Ok::<_, anyhow::Error>(BuildResult {
            name: "baseline".to_owned(),
            mode: "-".to_owned(),
            steps: Vec::new(),
            saturation: None,
            at_common_rate: Vec::new(),
            headline_runs: Vec::new(),
            headline_cpu_s_per_1k: Vec::new(),
            headline_floods: Vec::new(),
            headline_latency: None,
            user_runs: Vec::new(),
            users_at_objective: None,
            max_throughput: vec![report],
            cost: Cost {
                processes: 1,
                rss_idle_bytes: idle.rss_bytes,
                rss_load_bytes: loaded.rss_bytes,
                startup_ms: startup.as_millis() as u64,
                binaries: cost::binaries(ctx.bin_dir, &[BASELINE])?,
                ..Cost::default()
            },
        })
    }
    .await;
    child.stop(GRACE, std::future::pending()).await;
    let mut result = measured?;
    result.cost.binaries_total_bytes = result.cost.binaries.values().sum();
    Ok(result)
}

/// One progress line per run.
fn one_line(report: &LoadReport, within: bool) -> String {
    format!(
        "{:>8.0} req/s, p50 {:>7.2} ms, p99 {:>8.2} ms, errors {:.2} %{}{}",
        report.throughput_per_s,
        report.latency.p50_us as f64 / 1000.0,
        report.latency.p99_us as f64 / 1000.0,
        report.error_rate() * 100.0,
        if report.unsent > 0 { format!(", {} unsent", report.unsent) } else { String::new() },
        if within { "" } else { "  (misses the objective)" },
    )
}

fn profile_label(name: ProfileName) -> &'static str {
    match name {
        ProfileName::Smoke => "smoke",
        ProfileName::Quick => "quick",
        ProfileName::Full => "full",
    }
}

/// `release` or `debug`, from where the binaries were found.
pub(crate) fn build_profile(bin_dir: &Path) -> String {
    bin_dir.file_name().and_then(|n| n.to_str()).unwrap_or("unknown").to_owned()
}

/// The goals the report states, checked against this run's figures.
pub fn goals(report: &CompareReport) -> Vec<Goal> {
    let mut goals = Vec::new();
    let flood = |b: &BuildResult| b.max_throughput.first().map(|r| r.throughput_per_s);
    let monolith = report.builds.iter().find(|b| b.name == Build::Monolith.name());
    if let (Some(mono), Some(base)) = (monolith.and_then(flood), report.baseline.as_ref().and_then(flood)) {
        let ratio = mono / base;
        goals.push(Goal {
            name: "the monolith adds nothing measurable of its own".into(),
            target: "GET /api/users/me throughput ≥ 0.90× the hand-written axum + sqlx baseline's".into(),
            measured: format!("{ratio:.2}× ({mono:.0} vs {base:.0} req/s)"),
            met: ratio >= 0.90,
        });
    }
    let bench = |id: &str| report.benches.iter().find(|b| b.id == id).map(|b| b.mean_ns);
    if let (Some(grpc), Some(echo)) = (bench("hop/grpc"), bench("floor/tonic_echo")) {
        let ratio = grpc / echo;
        goals.push(Goal {
            name: "one internal gRPC hop is close to the floor".into(),
            target: "hop/grpc ≤ 1.25× floor/tonic_echo (criterion means)".into(),
            measured: format!("{ratio:.2}× ({:.1} vs {:.1} µs)", grpc / 1000.0, echo / 1000.0),
            met: ratio <= 1.25,
        });
    }
    goals
}

/// Where and on what this run happened.
pub(crate) fn machine_meta() -> RunMeta {
    let read = |path: &str| std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default();
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let memory_bytes = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    RunMeta {
        git_revision: git_revision(),
        hostname: read("/proc/sys/kernel/hostname"),
        kernel: read("/proc/sys/kernel/osrelease"),
        cpu_model,
        // Counted from /proc/cpuinfo: once the generator is pinned, the available
        // parallelism is its own CPUs, not the machine's.
        cores: read("/proc/cpuinfo").lines().filter(|l| l.starts_with("processor")).count() as u32,
        memory_bytes,
        ..RunMeta::default()
    }
}

pub(crate) fn git_revision() -> String {
    git_revision_apart_from(None)
}

/// [`git_revision`], not counting changes under `out` as dirty: a run that writes its
/// reports into a tracked directory (docs/results/…) replaces the reports committed there
/// before, and that alone does not make the code it ran different.
pub(crate) fn git_revision_apart_from(out: Option<&std::path::Path>) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            let exclude = out.map(|dir| format!(":(exclude){}", dir.display()));
            let mut args = vec!["status", "--porcelain", "--untracked-files=no"];
            if let Some(exclude) = &exclude {
                args.extend(["--", ".", exclude.as_str()]);
            }
            let dirty = git(&args).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two starts' rounds pool into one histogram per build, and every run, CPU figure and
    /// flood is kept, in order. One run of four stalled for 30 requests: the median of the
    /// runs' p99s (1 ms) would not show it; the p99 of all 2,030 requests (1.5 % stalled)
    /// does.
    #[test]
    fn headline_turns_of_two_starts_pool_their_latencies_and_keep_every_run() -> anyhow::Result<()> {
        let run = |fast: u64, stalled: u64| -> anyhow::Result<(LoadReport, Histogram<u64>)> {
            let mut h = crate::load::recorder::histogram()?;
            h.record_n(1_000, fast)?;
            h.record_n(50_000, stalled)?;
            let n = fast + stalled;
            let report = LoadReport {
                scenario: "browse".into(),
                target: "http://127.0.0.1:1".into(),
                offered: Offered::Open { rate_per_s: 300.0 },
                connections: 1,
                warmup_s: 0.0,
                duration_s: 1.0,
                requests: n,
                sent_total: n,
                ok: n,
                errors: BTreeMap::new(),
                unsent: 0,
                throughput_per_s: n as f64,
                latency: crate::load::recorder::percentiles(&h),
                service_time: crate::load::recorder::percentiles(&h),
                by_step: BTreeMap::new(),
            };
            Ok((report, h))
        };
        let mut first = Turns::default();
        let mut second = Turns::default();
        for (turns, cpu, stalled) in [(&mut first, 1.0, 30), (&mut second, 2.0, 0)] {
            for k in [stalled, 0] {
                let (report, h) = run(500, k)?;
                turns.push_run(report, cpu, &h)?;
            }
        }
        second.floods.push(run(10, 0)?.0);
        first.extend(second)?;
        assert_eq!(first.runs.len(), 4);
        assert_eq!(first.cpu_s_per_1k, vec![1.0, 1.0, 2.0, 2.0]);
        assert_eq!(first.floods.len(), 1);
        let mut per_run: Vec<u64> = first.runs.iter().map(|r| r.latency.p99_us).collect();
        per_run.sort_unstable();
        assert!(per_run[1] < 2_000 && per_run[2] < 2_000, "three of the four runs' p99 is 1 ms: {per_run:?}");
        let pooled = crate::load::recorder::percentiles(first.latency.as_ref().expect("pooled"));
        assert_eq!(pooled.count, 2_030);
        assert_eq!(pooled.p50_us, 1_000);
        assert!(pooled.p99_us >= 49_000, "30 of 2,030 stalled: the pooled p99 is the stall's, {}", pooled.p99_us);
        Ok(())
    }

    /// The name a report prints is the one `--builds` takes, and each build's topology is
    /// what its name says: a wrong `kind`, `extract` or replica count would run another build
    /// under this one's name.
    #[test]
    fn each_build_is_named_as_it_is_asked_for_and_runs_what_its_name_says() {
        use clap::ValueEnum;
        for build in Build::value_variants() {
            assert_eq!(Build::from_str(build.name(), false), Ok(*build), "{}", build.name());
            let t = Topology::new(build.kind(), build.options(NotificationMode::Async), |_| None);
            let has = |name: &str| t.names().contains(&name);
            let name = build.name();
            assert_eq!(has("monolith"), name == "monolith", "{name}");
            assert_eq!(has("hybrid"), name.starts_with("hybrid-"), "{name}");
            assert_eq!(has("payments-service-2"), name.ends_with("-x2"), "{name}");
            assert_eq!(has("auth-service"), name.starts_with("micro-"), "{name}");
            if let Some(module) = build.extract() {
                assert!(name.ends_with(module.name()) && has(module.service().name), "{name}");
            }
        }
    }

    #[test]
    fn every_build_up_at_once_fits_in_postgresql_s_default_connections() {
        // monolith 1 pool, micro-grpc and micro-http 4 each: 90 + the harness's 10.
        connection_room(9, 100).expect("the three builds fit in max_connections = 100");
        let refused = connection_room(13, 100).expect_err("13 pools of 10 do not fit in 100");
        let message = format!("{refused:#}");
        assert!(message.contains("140") && message.contains("max_connections"), "{message}");
    }

    #[test]
    fn every_child_gets_the_compare_pool_size() {
        let settings = child_settings(NotificationMode::Async);
        assert_eq!(settings.get("DB_MAX_CONNECTIONS"), Some(&POOL_SIZE.to_string()));
    }
}
