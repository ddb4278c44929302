//! `archlab load`: open-loop, constant-arrival-rate HTTP load (wrk2's model), or closed-loop
//! users with a think time, against the public API of either build.
//!
//! Open loop: every connection has its own schedule ([`schedule`]); a request whose
//! connection is still busy when it is due goes out as soon as the connection is free, but
//! its latency counts from when it was due. That is the coordinated-omission correction: a
//! server that stalls for a second shows a second of latency on every request queued behind
//! the stall, not on one. The time from the actual send is kept too (`service_time`).
//!
//! # Layout
//!
//! [`scenario`] says what each request is; [`schedule`] when it is due; [`client`] sends it
//! on a kept-alive connection; [`recorder`] keeps each task's histograms, merged at the end;
//! [`progress`] shows the run as it goes; [`timeline`] keeps per-second figures when asked.
//! [`seed`] and [`run`] are the library API that `archlab compare` calls, [`run_timeline`]
//! what `archlab chaos` calls; [`LoadArgs`] and [`command`] are the command line.

pub mod client;
pub mod progress;
pub mod recorder;
pub mod scenario;
pub mod schedule;
pub mod timeline;

pub use scenario::Scenario;

use crate::model::{LoadReport, Offered};
use anyhow::{Context, bail};
use client::Conn;
use futures::StreamExt;
use hdrhistogram::Histogram;
use progress::Counters;
use recorder::{Outcome, Recorder, percentiles};
use scenario::{PASSWORD, Requests};
use schedule::Schedule;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use timeline::Recording;
use tokio::time::Instant;

/// The longest measured window a run accepts: load always stops by itself.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Users signed up at once while seeding.
const SEED_CONCURRENCY: usize = 8;

/// Everything one run needs to know.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The public API base, `http://127.0.0.1:8080` (loopback only).
    pub target: String,
    pub scenario: Scenario,
    /// Open loop at a rate, or closed-loop users with a think time.
    pub offered: Offered,
    /// Connections of the open loop (closed loop: one per user, this is ignored).
    pub connections: u32,
    /// Run before the measured window; nothing in it is counted.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// At most this many requests are sent, warm-up included.
    pub max_requests: u64,
    /// Per request, connecting included.
    pub timeout: Duration,
    /// Show progress while running.
    pub progress: bool,
}

/// Users signed up before a run, outside its measured window, with their tokens; reusable
/// across runs against the same target.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// `(email, token)` of each user.
    users: Vec<(String, String)>,
}

impl Seeded {
    /// Users made elsewhere, as `(email, token)`: for a target whose tokens are known.
    pub fn new(users: Vec<(String, String)>) -> Self {
        Self { users }
    }

    /// `(email, token)` of each user.
    pub fn users(&self) -> &[(String, String)] {
        &self.users
    }
}

/// A loopback target, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header: the URL's own `host:port`.
    pub host: String,
    /// The base URL without a trailing slash.
    pub base: String,
}

impl Target {
    /// Parse `url`, refusing anything but plain HTTP to a loopback address.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url).with_context(|| format!("the target {url:?} is not a URL"))?;
        if parsed.scheme() != "http" {
            bail!("the target {url} must be plain http://");
        }
        let host = parsed.host_str().context("the target has no host")?;
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.trim_matches(['[', ']'])
                .parse()
                .with_context(|| format!("the target host {host} is not an IP address"))?
        };
        if !ip.is_loopback() {
            bail!("load only ever targets loopback addresses; {host} is not one");
        }
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            bail!("the target is the API base (http://127.0.0.1:8080), without a path");
        }
        let port = parsed.port_or_known_default().context("the target has no port")?;
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            host: format!("{host}:{port}"),
            base: url.trim_end_matches('/').to_owned(),
        })
    }
}

/// A tag unique to this process and moment, for e-mails and idempotency keys.
fn run_tag() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    format!("{}-{ms}", std::process::id())
}

/// Sign up `users` users (8 at a time) for a scenario that needs them, and keep their tokens.
pub async fn seed(target: &str, scenario: Scenario, users: u32) -> anyhow::Result<Seeded> {
    let target = Target::parse(target)?;
    if !scenario.needs_users() || users == 0 {
        return Ok(Seeded::default());
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the seeding client")?;
    let tag = run_tag();
    let signups = futures::stream::iter(0..users)
        .map(|i| {
            let (client, url, email) =
                (&client, format!("{}/api/auth/signup", target.base), format!("load-{tag}-seed{i}@example.com"));
            async move {
                let body = serde_json::json!({"email": email, "password": PASSWORD, "name": "Load"});
                let answer = client.post(&url).json(&body).send().await.with_context(|| format!("POST {url}"))?;
                let status = answer.status();
                let text = answer.text().await.context("reading a signup answer")?;
                if status.as_u16() == 429 {
                    bail!("signing up {email} answered 429: the target's abuse limits seem on (run it with AUTH_LIMIT_PER_ADDRESS_PER_MINUTE=0 AUTH_LIMIT_PER_ACCOUNT_PER_HOUR=0 PASSWORD_HASH_CONCURRENCY=0)");
                }
                if status.as_u16() != 201 {
                    bail!("signing up {email} answered {status}: {text}");
                }
                let value: serde_json::Value = serde_json::from_str(&text).context("a signup answer is not JSON")?;
                let token = value["token"].as_str().context("a signup answer has no token")?.to_owned();
                Ok((email, token))
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect::<Vec<anyhow::Result<(String, String)>>>()
        .await;
    Ok(Seeded { users: signups.into_iter().collect::<anyhow::Result<_>>()? })
}

/// Check a plan before running it.
fn validate(plan: &Plan, seeded: &Seeded) -> anyhow::Result<()> {
    if plan.duration.is_zero() || plan.duration > MAX_DURATION || plan.warmup > MAX_DURATION {
        bail!("the duration must be between 0 and {} s, and the warm-up at most that", MAX_DURATION.as_secs());
    }
    if plan.max_requests == 0 {
        bail!("--max-requests must be at least 1");
    }
    if plan.timeout.is_zero() {
        bail!("the request timeout must be positive");
    }
    match plan.offered {
        Offered::Open { rate_per_s } if !(rate_per_s.is_finite() && rate_per_s > 0.0) => {
            bail!("the rate must be a positive number of requests per second")
        }
        Offered::Open { .. } if plan.connections == 0 || plan.connections > 10_000 => {
            bail!("connections must be between 1 and 10000")
        }
        Offered::Closed { users, .. } if users == 0 || users > 10_000 => bail!("users must be between 1 and 10000"),
        _ => {}
    }
    if plan.scenario.needs_users() && seeded.users.is_empty() {
        bail!("the {} scenario needs seeded users (--seed-users at least 1)", plan.scenario);
    }
    Ok(())
}

/// The shared, read-only state of a run's tasks.
struct Shared {
    requests: Requests,
    scenario: Scenario,
    counters: Arc<Counters>,
    timeout: Duration,
    max_requests: u64,
    start: Instant,
    warm_end: Instant,
    end: Instant,
    /// Keep per-second figures too ([`run_timeline`]).
    timeline: bool,
}

impl Shared {
    /// Take one request from the budget; false once it is spent.
    fn take(&self) -> bool {
        self.counters.sent.fetch_add(1, Relaxed) < self.max_requests
    }

    /// Send request `index` on `conn`: its step, outcome and when it finished.
    async fn send(&self, conn: &mut Conn, index: u64) -> (scenario::Step, Outcome, Instant) {
        let step = self.scenario.step(index);
        let outcome = match self.requests.build(step, index) {
            Ok(request) => conn.send(request, self.timeout).await,
            // Cannot happen with the parts `Requests::new` checked; counted, not panicked on.
            Err(_) => Outcome::Io,
        };
        let done = Instant::now();
        self.counters.completed.fetch_add(1, Relaxed);
        if !matches!(outcome, Outcome::Status(s) if s == step.expected_status()) {
            self.counters.errors.fetch_add(1, Relaxed);
        }
        (step, outcome, done)
    }
}

/// One open-loop connection: requests at its schedule's times, latency from those times.
///
/// Connection `connection` of `connections` sends the run's requests number
/// `k · connections + connection`, so no two connections build the same request (a signup's
/// e-mail, a purchase's idempotency key) and the mix is the same from run to run.
async fn open_loop(
    shared: Arc<Shared>,
    mut conn: Conn,
    schedule: Schedule,
    (connection, connections): (u32, u32),
) -> anyhow::Result<(Recorder, Recording)> {
    let mut rec = Recorder::new()?;
    let mut seconds = Recording::default();
    let (window_from, window_to) = (shared.warm_end - shared.start, shared.end - shared.start);
    let mut k = 0u64;
    loop {
        let due = shared.start + schedule.due(k);
        if due >= shared.end {
            break;
        }
        // Behind so far that the window closed, or out of budget: the rest is unsent.
        if Instant::now() >= shared.end || !shared.take() {
            rec.unsent += schedule.count_due(k, window_from, window_to);
            break;
        }
        if due > Instant::now() {
            sleep_until(due).await;
        }
        let sent = Instant::now();
        let index = k * u64::from(connections) + u64::from(connection);
        let (step, outcome, done) = shared.send(&mut conn, index).await;
        // Counted by when it went out, not when it was due: a generator or server that fell
        // behind during the warm-up works off that backlog inside the window, and its
        // throughput there is what it achieved (the backlog shows in the latencies).
        if sent >= shared.warm_end {
            rec.record(step, outcome, done - due, done - sent);
            if shared.timeline {
                seconds.record(due.saturating_duration_since(shared.warm_end), step, outcome, done - due);
            }
        }
        k += 1;
    }
    Ok((rec, seconds))
}

/// Wait until `due`, to within the kernel's timer slack rather than tokio's millisecond.
///
/// tokio's timer wheel fires on whole milliseconds: `tokio::time::sleep_until(due)` wakes
/// up to a millisecond late, and an open-loop generator charges that lateness to the server,
/// since latency counts from `due`. At a common rate of 300 req/s it added about a
/// millisecond to every build's p50 (measured latency 2.1 ms against 0.9 ms of service
/// time in the monolith), the same for every build, which shrank their ratios. So the coarse
/// part of the wait stays on tokio's timer, and the last [`FINE_WAIT`] is a `nanosleep` on a
/// blocking thread, which Linux ends within its timer slack (50 µs by default).
async fn sleep_until(due: Instant) {
    if let Some(coarse_until) = due.checked_sub(FINE_WAIT)
        && coarse_until > Instant::now()
    {
        tokio::time::sleep_until(coarse_until).await;
    }
    let left = due.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        // A blocking-pool thread inherits this process's CPU pinning; if the pool is gone
        // (runtime shutting down) the wait just ends early.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
    }
}

/// The last stretch of a wait that [`sleep_until`] spends off tokio's timer: two of its
/// ticks, so the coarse sleep can never overshoot `due`.
const FINE_WAIT: Duration = Duration::from_millis(2);

/// One closed-loop user: send, wait for the answer, think, repeat.
async fn closed_loop(
    shared: Arc<Shared>,
    mut conn: Conn,
    user: u64,
    users: u64,
    think: Duration,
) -> anyhow::Result<(Recorder, Recording)> {
    let mut rec = Recorder::new()?;
    let mut seconds = Recording::default();
    // Users arrive spread evenly over one think time, as real users do, rather than all in
    // the first millisecond: a synchronised wave would measure the wave, not the server.
    if !think.is_zero() && users > 0 {
        tokio::time::sleep(think.mul_f64(user as f64 / users as f64)).await;
    }
    let mut k = 0u64;
    loop {
        let sent = Instant::now();
        if sent >= shared.end || !shared.take() {
            break;
        }
        let (step, outcome, done) = shared.send(&mut conn, k * users + user).await;
        if sent >= shared.warm_end {
            rec.record(step, outcome, done - sent, done - sent);
            if shared.timeline {
                seconds.record(sent - shared.warm_end, step, outcome, done - sent);
            }
        }
        k += 1;
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    }
    Ok((rec, seconds))
}

/// Run one plan to completion and report what it measured. The seeded users must belong
/// to the same target.
pub async fn run(plan: &Plan, seeded: &Seeded) -> anyhow::Result<LoadReport> {
    Ok(run_with(plan, seeded, false).await?.0)
}

/// [`run`], also handing back the latency histogram of the measured window, so that several
/// runs' latencies can be pooled ([`Histogram::add`]) and their percentiles taken over every
/// request rather than as a median of each run's.
pub async fn run_histogram(plan: &Plan, seeded: &Seeded) -> anyhow::Result<(LoadReport, Histogram<u64>)> {
    let (report, _, histogram) = run_with(plan, seeded, false).await?;
    Ok((report, histogram))
}

/// [`run`], also keeping per-second figures of the measured window ([`timeline`]): what a
/// chaos experiment reads to see when a fault began to show and when it stopped.
pub async fn run_timeline(plan: &Plan, seeded: &Seeded) -> anyhow::Result<(LoadReport, Recording)> {
    let (report, recording, _) = run_with(plan, seeded, true).await?;
    Ok((report, recording))
}

async fn run_with(
    plan: &Plan,
    seeded: &Seeded,
    timeline: bool,
) -> anyhow::Result<(LoadReport, Recording, Histogram<u64>)> {
    validate(plan, seeded)?;
    let target = Target::parse(&plan.target)?;
    let requests = Requests::new(&target.host, &seeded.users, &run_tag())?;
    let (tasks, connections) = match plan.offered {
        Offered::Open { .. } => (plan.connections, plan.connections),
        Offered::Closed { users, .. } => (users, users),
    };
    // Connect before the clock starts, so the first requests do not pay for it.
    let mut conns: Vec<Conn> = (0..tasks).map(|_| Conn::new(target.addr)).collect();
    futures::future::join_all(conns.iter_mut().map(|c| c.open())).await;

    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let shared = Arc::new(Shared {
        requests,
        scenario: plan.scenario,
        counters: counters.clone(),
        timeout: plan.timeout,
        max_requests: plan.max_requests,
        start,
        warm_end: start + plan.warmup,
        end: start + plan.warmup + plan.duration,
        timeline,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let progress = plan
        .progress
        .then(|| tokio::spawn(progress::show(counters.clone(), start, plan.warmup + plan.duration, stopped)));

    let handles: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let shared = shared.clone();
            let i = i as u32;
            match plan.offered {
                Offered::Open { rate_per_s } => {
                    tokio::spawn(open_loop(shared, conn, Schedule::for_connection(rate_per_s, tasks, i), (i, tasks)))
                }
                Offered::Closed { think_time_ms, .. } => tokio::spawn(closed_loop(
                    shared,
                    conn,
                    u64::from(i),
                    u64::from(tasks),
                    Duration::from_millis(think_time_ms),
                )),
            }
        })
        .collect();
    let mut total = Recorder::new()?;
    let mut seconds = Recording::default();
    for handle in handles {
        let (rec, recording) = handle.await.context("a load task failed")??;
        total.merge(&rec)?;
        seconds.merge(&recording);
    }
    let finished = Instant::now();
    let _ = stop.send(());
    if let Some(progress) = progress {
        let _ = progress.await;
    }

    let window_end = finished.min(shared.end);
    let duration_s = window_end.saturating_duration_since(shared.warm_end).as_secs_f64();
    let report = LoadReport {
        scenario: plan.scenario.to_string(),
        target: target.base,
        offered: plan.offered,
        connections,
        warmup_s: plan.warmup.as_secs_f64(),
        duration_s,
        requests: total.requests,
        sent_total: counters.completed.load(Relaxed),
        ok: total.ok,
        errors: total.errors.clone(),
        unsent: total.unsent,
        throughput_per_s: if duration_s > 0.0 { total.requests as f64 / duration_s } else { 0.0 },
        latency: percentiles(&total.latency),
        service_time: percentiles(&total.service),
        by_step: total.by_step(),
    };
    Ok((report, seconds, total.latency))
}

/// A human summary of a report.
pub fn summary(report: &LoadReport) -> String {
    use std::fmt::Write;
    let ms = |us: u64| us as f64 / 1000.0;
    let mut out = String::new();
    let offered = match report.offered {
        Offered::Open { rate_per_s } => {
            format!("open loop at {rate_per_s} req/s over {} connections", report.connections)
        }
        Offered::Closed { users, think_time_ms } => format!("closed loop, {users} users, think {think_time_ms} ms"),
    };
    let _ = writeln!(out, "{} against {}: {offered}", report.scenario, report.target);
    let _ = writeln!(
        out,
        "window {:.1} s (after {:.1} s warm-up): {} requests, {} ok, {:.1} req/s, {} unsent",
        report.duration_s, report.warmup_s, report.requests, report.ok, report.throughput_per_s, report.unsent
    );
    if !report.errors.is_empty() {
        let errors: Vec<String> = report.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(out, "errors: {}", errors.join(", "));
    }
    let _ = writeln!(
        out,
        "{:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "(ms)", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    let mut row = |name: &str, p: &crate::model::Percentiles| {
        let _ = writeln!(
            out,
            "{name:<18} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            ms(p.p50_us),
            ms(p.p90_us),
            ms(p.p99_us),
            ms(p.p999_us),
            ms(p.max_us),
            p.mean_us / 1000.0
        );
    };
    row("latency", &report.latency);
    row("service time", &report.service_time);
    for (step, p) in &report.by_step {
        row(step, p);
    }
    if report.errors.contains_key("429") {
        let _ = writeln!(
            out,
            "note: 429 answers: the target's abuse limits seem on; start it with AUTH_LIMIT_PER_ADDRESS_PER_MINUTE=0 AUTH_LIMIT_PER_ACCOUNT_PER_HOUR=0 PASSWORD_HASH_CONCURRENCY=0 (archlab up does)"
        );
    }
    out
}

/// Arguments of `archlab load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The public API base (monolith or gateway); loopback only.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// What to send.
    #[arg(long, value_enum, default_value_t = Scenario::Browse)]
    pub scenario: Scenario,
    /// Open loop: requests per second, spread evenly over the connections.
    #[arg(long, conflicts_with = "users", required_unless_present = "users")]
    pub rate: Option<f64>,
    /// Closed loop: this many users, each with its own connection.
    #[arg(long)]
    pub users: Option<u32>,
    /// Closed loop: pause between an answer and the user's next request.
    #[arg(long, default_value_t = 0, requires = "users")]
    pub think_time_ms: u64,
    /// Open loop: TCP connections held.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Length of the measured window.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Warm-up before the window, excluded from every figure.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_s: f64,
    /// Hard bound on requests sent, warm-up included.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// Per request, connecting included.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Users signed up before the run (outside the window) for the scenarios that need them.
    #[arg(long, default_value_t = 50)]
    pub seed_users: u32,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// Seconds from the command line as a duration, refusing what is not a sane length.
pub fn seconds(name: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
        .with_context(|| format!("{name} must be between 0 and {} seconds", MAX_DURATION.as_secs()))
}

/// `archlab load`: seed, run, print the summary, write the JSON.
pub async fn command(args: LoadArgs) -> anyhow::Result<()> {
    let offered = match (args.rate, args.users) {
        (Some(rate_per_s), _) => Offered::Open { rate_per_s },
        (None, Some(users)) => Offered::Closed { users, think_time_ms: args.think_time_ms },
        (None, None) => bail!("give --rate (open loop) or --users (closed loop)"),
    };
    let plan = Plan {
        target: args.target.clone(),
        scenario: args.scenario,
        offered,
        connections: args.connections,
        warmup: seconds("--warmup-s", args.warmup_s)?,
        duration: seconds("--duration-s", args.duration_s)?,
        max_requests: args.max_requests,
        timeout: Duration::from_millis(args.timeout_ms),
        progress: !args.quiet,
    };
    Target::parse(&plan.target)?;
    let seeded = seed(&plan.target, plan.scenario, args.seed_users).await.context("seeding users")?;
    let report = run(&plan, &seeded).await?;
    print!("{}", summary(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(Target::parse("http://127.0.0.1:8080").is_ok());
        assert!(Target::parse("http://localhost:8080/").is_ok());
        assert!(Target::parse("http://[::1]:8000").is_ok());
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1",
            "ftp://127.0.0.1",
            "nonsense",
            "http://127.0.0.1:8080/api",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Target::parse("http://127.0.0.1:9/").map(|t| t.host).ok().as_deref(), Some("127.0.0.1:9"));
    }
}
