//! What a build costs to run, measured on this machine: processes, memory, CPU-seconds per
//! 1,000 requests, database connections, network calls per request, binaries, and lines of
//! deployment configuration. It fills [`model::Cost`](crate::model::Cost).
//!
//! Everything is read from where the operating system and PostgreSQL keep it, nothing is
//! estimated:
//! - memory and CPU time from `/proc/<pid>/status` (`VmRSS`) and `/proc/<pid>/stat`
//!   (`utime + stime`, in clock ticks of `sysconf(_SC_CLK_TCK)`), see [`sample_pids`];
//! - the build's PostgreSQL backends, connections and transactions from `pg_stat_activity`
//!   and `pg_stat_database`, filtered to the build's own databases;
//! - internal calls, third-party calls and broker publishes from each process's
//!   `GET /metrics` (shared/kernel/src/metrics.rs), see [`scrape_counters`];
//! - RabbitMQ's CPU from its `beam.smp` (and `erl_child_setup`) processes.
//!
//! A load step is measured with a [`Meter`]: `Meter::start(target)` before the step,
//! `meter.finish(requests)` after it.
//!
//! # Accuracy
//! - CPU: per pid, the end sample minus the start sample (0 for a pid born in between). A
//!   process that exits during the window takes its CPU time with it; the build's processes
//!   and their pooled PostgreSQL connections live for the whole step, so this loses nothing
//!   in practice. Only the build's *backends* are counted for PostgreSQL: its background
//!   processes (WAL writer, checkpointer, autovacuum) are shared by every database.
//! - Database calls: transactions (`xact_commit + xact_rollback`) of the build's databases.
//!   PostgreSQL 15 backends publish these counters at most once a second while busy, and an
//!   idle backend with unpublished counts publishes them within `PGSTAT_IDLE_INTERVAL`
//!   (10 s). [`Meter::finish`] therefore reads them again after [`STATS_SETTLE`] (with
//!   `pg_stat_clear_snapshot()` so each read is fresh): every transaction of the step is then
//!   counted, exactly. The window also includes the build's own background transactions
//!   (outbox pollers, one per `OUTBOX_POLL_MS` per worker) during the step and the settle
//!   time; [`Measured::database_background`] estimates them from the rate measured while
//!   settling, and `calls_per_request["database"]` has them subtracted.

use crate::topology::{Kind, Topology};
use anyhow::{Context, bail};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long [`Meter::finish`] waits for PostgreSQL to publish the step's transaction counts:
/// `PGSTAT_IDLE_INTERVAL` (10 s) plus a second of margin.
pub const STATS_SETTLE: Duration = Duration::from_secs(11);

/// Resident memory and CPU time of a set of processes at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `VmRSS` summed over the processes found.
    pub rss_bytes: u64,
    /// User + system CPU time summed over the processes found, in seconds.
    pub cpu_s: f64,
    /// Each process found and its CPU seconds (pids that did not exist are left out).
    pub per_pid: BTreeMap<u32, f64>,
    /// When the sample was taken.
    pub at: Instant,
}

impl Sample {
    /// CPU seconds spent between `earlier` and this sample by the processes of this one (a
    /// process absent from `earlier` counts from zero: it was born in between).
    pub fn cpu_since(&self, earlier: &Sample) -> f64 {
        self.per_pid.iter().map(|(pid, cpu)| (cpu - earlier.per_pid.get(pid).copied().unwrap_or(0.0)).max(0.0)).sum()
    }
}

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s times.
fn clock_ticks() -> anyhow::Result<f64> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .context("sysconf(_SC_CLK_TCK)")?
        .context("sysconf(_SC_CLK_TCK) has no value")?;
    if ticks <= 0 {
        bail!("sysconf(_SC_CLK_TCK) = {ticks}");
    }
    Ok(ticks as f64)
}

/// `utime + stime` (ticks) from the text of `/proc/<pid>/stat`. The command name (field 2) is
/// in parentheses and may hold spaces and parentheses itself, so fields are counted from the
/// last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` in bytes from the text of `/proc/<pid>/status`; `None` for a kernel thread or a
/// zombie (no `VmRSS` line).
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(kib * 1024)
}

/// Resident memory and CPU time of `pids` now; pids that do not exist (any more) are skipped.
pub fn sample_pids(pids: &[u32]) -> anyhow::Result<Sample> {
    let ticks = clock_ticks()?;
    let at = Instant::now();
    let mut sample = Sample { rss_bytes: 0, cpu_s: 0.0, per_pid: BTreeMap::new(), at };
    for &pid in pids {
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(format!("/proc/{pid}/stat")),
            std::fs::read_to_string(format!("/proc/{pid}/status")),
        ) else {
            continue;
        };
        let Some(cpu_ticks) = parse_stat_ticks(&stat) else { continue };
        let cpu_s = cpu_ticks as f64 / ticks;
        sample.cpu_s += cpu_s;
        sample.rss_bytes += parse_status_rss(&status).unwrap_or(0);
        sample.per_pid.insert(pid, cpu_s);
    }
    Ok(sample)
}

/// Every process whose `/proc/<pid>/comm` is one of `names`.
fn pids_named(names: &[&str]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| names.contains(&comm.trim_end()))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The parent pid from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// RabbitMQ's processes on this machine: the Erlang VM (`beam.smp`) and its port helper
/// (`erl_child_setup`). Empty when RabbitMQ does not run here.
pub fn rabbitmq_pids() -> Vec<u32> {
    pids_named(&["beam.smp", "erl_child_setup"])
}

/// PostgreSQL's postmasters on this machine: the `postgres` processes whose parent is not a
/// `postgres` process (every backend and background worker is a child of one).
pub fn postgres_server_pids() -> Vec<u32> {
    let all = pids_named(&["postgres", "postmaster"]);
    all.iter().copied().filter(|pid| parent_of(*pid).is_none_or(|parent| !all.contains(&parent))).collect()
}

pub(crate) async fn admin(admin_url: &str) -> anyhow::Result<sqlx::PgConnection> {
    sqlx::PgConnection::connect(admin_url).await.with_context(|| format!("connecting to PostgreSQL at {admin_url}"))
}

/// The pids of the PostgreSQL backends connected to `databases` (this query's own excluded).
pub async fn postgres_backends(admin_url: &str, databases: &[String]) -> anyhow::Result<Vec<u32>> {
    backends_on(&mut admin(admin_url).await?, databases).await
}

/// [`postgres_backends`] over a connection the caller keeps.
pub(crate) async fn backends_on(conn: &mut sqlx::PgConnection, databases: &[String]) -> anyhow::Result<Vec<u32>> {
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid() ORDER BY pid",
    )
    .bind(databases)
    .fetch_all(conn)
    .await
    .context("reading pg_stat_activity")?;
    Ok(pids.into_iter().filter_map(|pid| u32::try_from(pid).ok()).collect())
}

/// Connections held to `databases` right now, from `pg_stat_activity`.
pub async fn db_connections(admin_url: &str, databases: &[String]) -> anyhow::Result<u32> {
    let pids = postgres_backends(admin_url, databases).await?;
    u32::try_from(pids.len()).context("more connections than a u32 holds")
}

/// Transactions committed or rolled back in `databases` so far, as PostgreSQL has published
/// them (see the module's "Accuracy"): a fresh snapshot each call.
pub async fn db_transactions(admin_url: &str, databases: &[String]) -> anyhow::Result<u64> {
    let mut conn = admin(admin_url).await?;
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut conn).await.context("pg_stat_clear_snapshot()")?;
    let total: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(xact_commit + xact_rollback), 0)::bigint FROM pg_stat_database WHERE datname = ANY($1)",
    )
    .bind(databases)
    .fetch_one(&mut conn)
    .await
    .context("reading pg_stat_database")?;
    u64::try_from(total).context("a negative transaction count")
}

/// The server's `max_connections`.
pub async fn max_connections(admin_url: &str) -> anyhow::Result<u32> {
    let mut conn = admin(admin_url).await?;
    let value: String =
        sqlx::query_scalar("SHOW max_connections").fetch_one(&mut conn).await.context("SHOW max_connections")?;
    value.trim().parse().with_context(|| format!("max_connections is not a number: {value:?}"))
}

/// `ANALYZE` every table of each of `databases` (on the server of `admin_url`), so that a
/// freshly seeded build is measured with planner statistics from its first request rather
/// than from whenever autovacuum (a minute's nap by default) first reaches its tables.
pub async fn analyze(admin_url: &str, databases: &[String]) -> anyhow::Result<()> {
    for name in databases {
        let url = format!("{}/{name}", admin_url.rsplit_once('/').map_or(admin_url, |(server, _)| server));
        let mut conn = admin(&url).await?;
        sqlx::query("ANALYZE").execute(&mut conn).await.with_context(|| format!("ANALYZE in {name}"))?;
    }
    Ok(())
}

/// Drop `databases` (a run's own, fresh ones) and every connection still open to them.
pub async fn drop_databases(admin_url: &str, databases: &[String]) -> anyhow::Result<()> {
    let mut conn = admin(admin_url).await?;
    for name in databases {
        let quoted = name.replace('"', "\"\"");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{quoted}\" WITH (FORCE)")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("dropping database {name}"))?;
    }
    Ok(())
}

/// Each of `names` in `bin_dir` and its size on disk.
pub fn binaries(bin_dir: &Path, names: &[&str]) -> anyhow::Result<BTreeMap<String, u64>> {
    names
        .iter()
        .map(|name| {
            let path = bin_dir.join(name);
            let meta = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(((*name).to_owned(), meta.len()))
        })
        .collect()
}

/// The deployment files, as committed, by their path in the repository.
const DEPLOY_FILES: [(&str, &str); 5] = [
    ("deploy/Dockerfile", include_str!("../../../deploy/Dockerfile")),
    ("deploy/compose/deps.yml", include_str!("../../../deploy/compose/deps.yml")),
    ("deploy/compose/monolith.yml", include_str!("../../../deploy/compose/monolith.yml")),
    ("deploy/compose/micro.yml", include_str!("../../../deploy/compose/micro.yml")),
    ("deploy/compose/hybrid.yml", include_str!("../../../deploy/compose/hybrid.yml")),
];

/// The files an operator needs to deploy `kind`: its compose file, the one Dockerfile both
/// builds share, and deps.yml (PostgreSQL, Redis, RabbitMQ). deps.yml is counted for both
/// builds because both need PostgreSQL; the monolith does not need RabbitMQ, but its file
/// runs all three, and a lab that counted a trimmed copy would be counting a file nobody
/// ships.
pub fn deploy_files(kind: Kind) -> [&'static str; 3] {
    let own = match kind {
        Kind::Monolith => "deploy/compose/monolith.yml",
        Kind::Micro => "deploy/compose/micro.yml",
        Kind::Hybrid => "deploy/compose/hybrid.yml",
    };
    [own, "deploy/Dockerfile", "deploy/compose/deps.yml"]
}

/// Non-blank lines that are not `#` comments.
pub fn config_lines(text: &str) -> u32 {
    let lines = text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).count();
    u32::try_from(lines).unwrap_or(u32::MAX)
}

/// Lines of deployment configuration `kind` needs (see [`deploy_files`] and [`config_lines`])
/// and the files they were counted from.
pub fn deploy_config(kind: Kind) -> (u32, Vec<String>) {
    let files = deploy_files(kind);
    let lines = DEPLOY_FILES.iter().filter(|(path, _)| files.contains(path)).map(|(_, text)| config_lines(text)).sum();
    (lines, files.iter().map(|f| (*f).to_owned()).collect())
}

/// The committed text of a deployment file, by its repository path.
pub fn deploy_file_text(path: &str) -> Option<&'static str> {
    DEPLOY_FILES.iter().find(|(p, _)| *p == path).map(|(_, text)| *text)
}

/// Refuse anything but a loopback `http://` URL.
fn require_loopback(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("invalid URL {url:?}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() != "http" || !loopback {
        bail!("{url} is not a loopback http:// address: the harness only talks to this machine");
    }
    Ok(())
}

/// `archlab_calls_total` by kind, summed over the `/metrics` of every process at
/// `http_urls` (base URLs, e.g. `http://127.0.0.1:8001`; loopback only).
pub async fn scrape_counters(http_urls: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut sums = BTreeMap::new();
    for text in scrape_metrics(http_urls).await? {
        for (kind, value) in archlab_kernel::metrics::parse(&text) {
            *sums.entry(kind).or_insert(0) += value;
        }
    }
    Ok(sums)
}

/// The `/metrics` text of every process at `http_urls` (loopback only), in order.
pub async fn scrape_metrics(http_urls: &[String]) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .context("building the metrics client")?;
    let mut texts = Vec::new();
    for base in http_urls {
        require_loopback(base)?;
        let url = format!("{}/metrics", base.trim_end_matches('/'));
        let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET {url} answered {}", response.status());
        }
        texts.push(response.text().await.with_context(|| format!("reading {url}"))?);
    }
    Ok(texts)
}

/// What a [`Meter`] watches: one running build.
#[derive(Debug, Clone)]
pub struct Target {
    /// The build's own processes (extsim excluded: it stands for the outside world).
    pub app_pids: Vec<u32>,
    /// Their HTTP base URLs, for `/metrics`.
    pub http_urls: Vec<String>,
    /// PostgreSQL as an administrator sees it (`pg_stat_*` of every database).
    pub admin_url: String,
    /// The build's databases.
    pub databases: Vec<String>,
    /// Whether the build uses RabbitMQ (its CPU is charged only to builds that do).
    pub uses_broker: bool,
}

impl Target {
    /// The target for `topology` started by `supervisor` (`pids` from
    /// [`Supervisor::pids`](crate::supervisor::Supervisor::pids)): its processes but extsim,
    /// the databases they are configured with (as `env` tells them; the defaults otherwise).
    pub fn of(
        topology: &Topology,
        pids: &[(&'static str, u32)],
        admin_url: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let extsim = archlab_kernel::processes::EXTSIM.name;
        let own: Vec<&crate::topology::Process> = topology.processes.iter().filter(|p| p.name != extsim).collect();
        let app_pids = pids.iter().filter(|(name, _)| *name != extsim).map(|(_, pid)| *pid).collect();
        let databases = archlab_kernel::processes::ALL
            .iter()
            .filter(|spec| own.iter().any(|p| p.name == spec.name))
            .filter_map(|spec| spec.database)
            .map(|(var, default)| env(var).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned()))
            .collect();
        Self {
            app_pids,
            http_urls: own.iter().map(|p| p.http_url.clone()).collect(),
            admin_url: admin_url.to_owned(),
            databases,
            uses_broker: topology.kind != Kind::Monolith,
        }
    }

    /// Resident memory of the build's processes and connections it holds, now.
    pub async fn snapshot(&self) -> anyhow::Result<(u64, u32)> {
        let rss = sample_pids(&self.app_pids)?.rss_bytes;
        Ok((rss, db_connections(&self.admin_url, &self.databases).await?))
    }
}

/// Everything a [`Meter`] reads at one instant.
#[derive(Debug, Clone)]
struct Reading {
    app: Sample,
    postgres: Sample,
    rabbitmq: Sample,
    calls: BTreeMap<String, u64>,
    transactions: u64,
}

async fn read(target: &Target) -> anyhow::Result<Reading> {
    let backends = postgres_backends(&target.admin_url, &target.databases).await?;
    let rabbit = if target.uses_broker { rabbitmq_pids() } else { Vec::new() };
    Ok(Reading {
        app: sample_pids(&target.app_pids)?,
        postgres: sample_pids(&backends)?,
        rabbitmq: sample_pids(&rabbit)?,
        calls: scrape_counters(&target.http_urls).await?,
        transactions: db_transactions(&target.admin_url, &target.databases).await?,
    })
}

/// Measures one load step: [`Meter::start`] just before it, [`Meter::finish`] just after.
#[derive(Debug)]
pub struct Meter {
    target: Target,
    start: Reading,
}

/// What a [`Meter`] measured over one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Requests the load generator completed in the step (the divisor).
    pub requests: u64,
    /// From `start` to the end of the step (settling excluded).
    pub elapsed_s: f64,
    /// CPU seconds over the step: the build's processes, its PostgreSQL backends, RabbitMQ.
    pub cpu_s_app: f64,
    pub cpu_s_postgres: f64,
    pub cpu_s_rabbitmq: f64,
    /// Calls over the step by kind (`internal_rpc`, `third_party`, `broker_publish`,
    /// `database`), as counted; `database` includes background transactions.
    pub calls: BTreeMap<String, u64>,
    /// Of `calls["database"]`, the background transactions estimated from the rate seen
    /// while settling, times the step's length plus the settle time.
    pub database_background: u64,
    /// Resident memory of the build's processes and its database connections at the end.
    pub rss_bytes: u64,
    pub db_connections: u32,
}

impl Meter {
    /// Read every counter now, before the step.
    pub async fn start(target: Target) -> anyhow::Result<Self> {
        let start = read(&target).await?;
        Ok(Self { target, start })
    }

    /// Read everything again after a step of `requests` requests, waiting [`STATS_SETTLE`]
    /// for PostgreSQL's transaction counts.
    pub async fn finish(self, requests: u64) -> anyhow::Result<Measured> {
        self.finish_with(requests, STATS_SETTLE).await
    }

    /// [`Meter::finish`] with another settle time (`Duration::ZERO` in tests that close
    /// their connections, which publishes their counts at once).
    pub async fn finish_with(self, requests: u64, settle: Duration) -> anyhow::Result<Measured> {
        let end = read(&self.target).await?;
        let (rss_bytes, db_connections) =
            (end.app.rss_bytes, db_connections(&self.target.admin_url, &self.target.databases).await?);
        let mut transactions = end.transactions;
        let mut background = 0;
        if !settle.is_zero() {
            tokio::time::sleep(settle).await;
            let settled = db_transactions(&self.target.admin_url, &self.target.databases).await?;
            // A second, short window after settling: nothing but background work runs now.
            let probe = Duration::from_secs(2);
            let probe_start = Instant::now();
            tokio::time::sleep(probe).await;
            let later = db_transactions(&self.target.admin_url, &self.target.databases).await?;
            let rate = later.saturating_sub(settled) as f64 / probe_start.elapsed().as_secs_f64();
            let window = end.app.at.duration_since(self.start.app.at) + settle;
            background = (rate * window.as_secs_f64()).round() as u64;
            transactions = settled;
        }
        let mut calls: BTreeMap<String, u64> = end
            .calls
            .iter()
            .map(|(kind, value)| (kind.clone(), value.saturating_sub(self.start.calls.get(kind).copied().unwrap_or(0))))
            .collect();
        calls.insert("database".to_owned(), transactions.saturating_sub(self.start.transactions));
        Ok(Measured {
            requests,
            elapsed_s: end.app.at.duration_since(self.start.app.at).as_secs_f64(),
            cpu_s_app: end.app.cpu_since(&self.start.app),
            cpu_s_postgres: end.postgres.cpu_since(&self.start.postgres),
            cpu_s_rabbitmq: end.rabbitmq.cpu_since(&self.start.rabbitmq),
            calls,
            database_background: background,
            rss_bytes,
            db_connections,
        })
    }
}

impl Measured {
    /// CPU seconds per 1,000 requests of `cpu_s` (0 when no request completed).
    pub fn per_1k(&self, cpu_s: f64) -> f64 {
        if self.requests == 0 { 0.0 } else { cpu_s.max(0.0) * 1000.0 / self.requests as f64 }
    }

    /// Calls per request by kind, background database transactions subtracted.
    pub fn calls_per_request(&self) -> BTreeMap<String, f64> {
        let n = self.requests.max(1) as f64;
        self.calls
            .iter()
            .map(|(kind, &count)| {
                let count = if kind == "database" { count.saturating_sub(self.database_background) } else { count };
                (kind.clone(), if self.requests == 0 { 0.0 } else { count as f64 / n })
            })
            .collect()
    }

    /// Write this step's figures into `cost` as its load figures.
    pub fn apply(&self, cost: &mut crate::model::Cost) {
        cost.rss_load_bytes = self.rss_bytes;
        cost.db_connections_load = self.db_connections;
        cost.cpu_s_per_1k_app = self.per_1k(self.cpu_s_app);
        cost.cpu_s_per_1k_postgres = self.per_1k(self.cpu_s_postgres);
        cost.cpu_s_per_1k_rabbitmq = self.per_1k(self.cpu_s_rabbitmq);
        cost.network_calls_per_request = self.calls_per_request();
    }
}

/// The figures of a build that need no load: processes, binaries, deployment configuration,
/// and (from `target`) memory and connections while idle. `startup_ms` is the caller's.
pub async fn idle_cost(topology: &Topology, bin_dir: &Path, target: &Target) -> anyhow::Result<crate::model::Cost> {
    let extsim = archlab_kernel::processes::EXTSIM.name;
    let names: Vec<&str> = topology.names().into_iter().filter(|n| *n != extsim).collect();
    let binaries = binaries(bin_dir, &names)?;
    let (deploy_config_lines, deploy_config_files) = deploy_config(topology.kind);
    let (rss_idle_bytes, db_connections_idle) = target.snapshot().await?;
    Ok(crate::model::Cost {
        processes: u32::try_from(names.len()).unwrap_or(u32::MAX),
        binaries_total_bytes: binaries.values().sum(),
        binaries,
        rss_idle_bytes,
        db_connections_idle,
        deploy_config_lines,
        deploy_config_files,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_read_after_the_command_name_even_with_parentheses_in_it() {
        // Fields 14 and 15 are utime 7 and stime 5.
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 10 1000 50";
        assert_eq!(parse_stat_ticks(stat), Some(12));
        assert_eq!(parse_stat_ticks("1234 (x) S 1"), None);
    }

    #[test]
    fn rss_is_read_in_kib_and_absent_for_kernel_threads() {
        assert_eq!(parse_status_rss("Name:\tx\nVmPeak:\t 99 kB\nVmRSS:\t    2048 kB\n"), Some(2048 * 1024));
        assert_eq!(parse_status_rss("Name:\tkthreadd\nThreads:\t1\n"), None);
    }

    #[test]
    fn this_process_has_resident_memory_and_a_dead_pid_is_skipped() {
        let me = std::process::id();
        let sample = sample_pids(&[me, u32::MAX]).expect("sample");
        assert!(sample.rss_bytes > 1024 * 1024, "a test binary holds more than 1 MiB: {}", sample.rss_bytes);
        assert_eq!(sample.per_pid.keys().copied().collect::<Vec<_>>(), [me]);
    }

    #[test]
    fn a_busy_child_shows_its_cpu_time() {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        // A fixed amount of work in a shell builtin loop (no forks; a few tenths of a second
        // of CPU however busy the machine is), then it stops itself, so its /proc entry stays
        // readable until we kill it.
        let started = std::time::Instant::now();
        let mut child = std::process::Command::new("bash")
            .args(["-c", "for ((i = 0; i < 400000; i++)); do :; done; kill -STOP $$"])
            .spawn()
            .expect("spawn bash");
        let pid = child.id();
        let before = sample_pids(&[pid]).expect("sample");
        let raw = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid fits i32"));
        let status = waitpid(raw, Some(WaitPidFlag::WUNTRACED)).expect("waitpid");
        assert!(matches!(status, WaitStatus::Stopped(..)), "{status:?}");
        let wall = started.elapsed().as_secs_f64();
        let after = sample_pids(&[pid]).expect("sample");
        child.kill().expect("kill");
        child.wait().expect("reap");
        let spent = after.cpu_since(&before);
        // Some CPU was seen (not zero: the fields were read), and no more than the wall
        // clock allowed one thread (not ticks taken for seconds, not another process's).
        assert!(spent > 0.05, "400,000 loop iterations spent {spent} s of CPU");
        assert!(spent <= wall + 0.02, "one thread spent {spent} s of CPU in {wall} s");
    }

    #[test]
    fn deploy_config_counts_each_builds_files() {
        let (mono, mono_files) = deploy_config(Kind::Monolith);
        let (micro, micro_files) = deploy_config(Kind::Micro);
        assert_eq!(mono_files, ["deploy/compose/monolith.yml", "deploy/Dockerfile", "deploy/compose/deps.yml"]);
        assert_eq!(micro_files[0], "deploy/compose/micro.yml");
        let shared = config_lines(deploy_file_text("deploy/Dockerfile").expect("Dockerfile"))
            + config_lines(deploy_file_text("deploy/compose/deps.yml").expect("deps.yml"));
        assert_eq!(mono, shared + config_lines(deploy_file_text("deploy/compose/monolith.yml").expect("monolith.yml")));
        assert!(micro > mono, "six processes take more configuration than two: {micro} vs {mono}");
        assert_eq!(config_lines("a\n\n  # note\n  b: 1 # trailing\n"), 2);
    }

    /// Every variable archlab reads, from .env.sample (commented-out ones included).
    fn documented_variables() -> Vec<String> {
        include_str!("../../../.env.sample")
            .lines()
            .filter_map(|line| line.trim_start_matches(['#', ' ']).split_once('='))
            .map(|(key, _)| key.trim().to_owned())
            .filter(|key| {
                !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect()
    }

    /// `KEY:` lines of a compose file (environment entries), by a line-based read.
    fn set_variables(compose: &str) -> Vec<String> {
        compose
            .lines()
            .filter_map(|line| line.trim().split_once(':'))
            .map(|(key, _)| key.to_owned())
            .filter(|key| {
                key.len() > 1 && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect()
    }

    #[test]
    fn each_compose_file_runs_every_process_of_its_build_with_variables_the_binaries_read() {
        use archlab_kernel::processes;
        let known = documented_variables();
        assert!(known.iter().any(|k| k == "AMQP_URL"), "the .env.sample reader found {known:?}");
        let builds = [
            ("deploy/compose/monolith.yml", vec![processes::EXTSIM, processes::MONOLITH]),
            (
                "deploy/compose/micro.yml",
                [processes::EXTSIM, processes::GATEWAY].into_iter().chain(processes::SERVICES).collect(),
            ),
            (
                "deploy/compose/hybrid.yml",
                vec![processes::EXTSIM, processes::GATEWAY, processes::HYBRID, processes::NOTIFICATIONS_SERVICE],
            ),
        ];
        for (path, specs) in builds {
            let text = deploy_file_text(path).expect("committed");
            let services: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
                .filter(|k| !k.starts_with(' '))
                .collect();
            for spec in &specs {
                assert!(services.contains(&spec.name), "{path} does not run {}: {services:?}", spec.name);
                assert!(
                    text.contains(&format!("command: [\"{}\"]", spec.name)),
                    "{path}: {} runs another binary",
                    spec.name
                );
                if let Some((var, default)) = spec.database {
                    assert!(text.contains(&format!("{var}: {default}")), "{path}: {} without {var}", spec.name);
                }
            }
            let set = set_variables(text);
            assert!(set.len() > 5, "{path}: the line reader found only {set:?}");
            for key in set {
                assert!(known.contains(&key), "{path} sets {key}, which no archlab binary reads (.env.sample)");
            }
        }
    }

    #[test]
    fn a_targets_processes_and_databases_are_the_builds_own() {
        use crate::topology::Options;
        let env = |key: &str| (key == "USERS_DATABASE").then(|| "custom_users".to_owned());
        let micro = Topology::new(Kind::Micro, Options::default(), env);
        let pids: Vec<(&'static str, u32)> = micro.names().into_iter().zip(100..).collect();
        let target = Target::of(&micro, &pids, "postgres://x@127.0.0.1", env);
        assert_eq!(target.app_pids, [101, 102, 103, 104, 105], "extsim (pid 100) is not the build's");
        assert_eq!(target.databases, ["archlab_auth", "custom_users", "archlab_payments", "archlab_notifications"]);
        assert_eq!(target.http_urls.len(), 5);
        assert!(target.http_urls.iter().all(|url| !url.ends_with(":8090")), "{:?}", target.http_urls);
        assert!(target.uses_broker);
        let mono = Topology::new(Kind::Monolith, Options::default(), |_| None);
        let target = Target::of(&mono, &[("extsim", 1), ("monolith", 2)], "postgres://x@127.0.0.1", |_| None);
        assert_eq!(
            (target.app_pids, target.databases, target.uses_broker),
            (vec![2], vec!["archlab_monolith".to_owned()], false)
        );
    }

    #[test]
    fn only_loopback_urls_are_scraped() {
        assert!(require_loopback("http://127.0.0.1:8001").is_ok());
        assert!(require_loopback("http://[::1]:8001").is_ok());
        assert!(require_loopback("http://10.0.0.1:8001").is_err());
        assert!(require_loopback("http://example.com").is_err());
    }
}
