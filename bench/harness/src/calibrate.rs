//! `archlab calibrate`: a benchmark (not a timed test) that checks `archlab load` against
//! wrk in one run, on two tiny in-process servers (and optionally a running build):
//!
//! - throughput: wrk with C connections, then `archlab load` open loop at 1.5x wrk's rate on
//!   the same C connections; the goal is at least wrk's throughput;
//! - low load: wrk on one connection against one closed-loop user with no think time (the
//!   same shape, and no timer between requests to add its own error); the goal is p50 and
//!   p99 within 10 % of wrk's;
//! - coordinated omission: against `stall`, which every 2 s holds all requests for 1 s, wrk's
//!   figures beside `archlab load`'s corrected latency and its uncorrected service time.
//!
//! `archlab load` runs here on one thread with a single-threaded runtime, as wrk runs with
//! `-t1`, so both get the same share of the machine. Loopback only and bounded: each measurement lasts `--duration-s`, and wrk is killed if it
//! overruns.

use crate::load::{self, Plan, Scenario, Seeded};
use crate::model::{LoadReport, Offered};
use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The token the in-process servers are sent (they accept anything).
const FAKE_TOKEN: &str = "calibrate";

/// Arguments of `archlab calibrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct CalibrateArgs {
    /// Connections of the throughput and stall measurements.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Length of each measurement (wrk's `-d`, archlab's window).
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Open-loop rate of archlab against the stall server.
    #[arg(long, default_value_t = 1000.0)]
    pub stall_rate: f64,
    /// Also measure `GET /api/users/me` of a running build at this base URL (loopback).
    #[arg(long)]
    pub target: Option<String>,
    /// Write the Markdown table here as well as printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CPUs for wrk and this process's load threads (`0`, `0-1`, `0,2`).
    #[arg(long)]
    pub load_cpus: Option<String>,
    /// CPUs for the in-process servers' thread.
    #[arg(long)]
    pub server_cpus: Option<String>,
    /// The wrk binary.
    #[arg(long, default_value = "wrk")]
    pub wrk: String,
}

/// How the stall server stalls: every `every`, all requests wait `length`.
#[derive(Debug, Clone, Copy)]
pub struct StallSpec {
    pub every: Duration,
    pub length: Duration,
}

impl Default for StallSpec {
    fn default() -> Self {
        Self { every: Duration::from_secs(2), length: Duration::from_secs(1) }
    }
}

/// The in-process servers, running on their own thread until dropped.
pub struct Servers {
    /// Answers 200 `ok` to anything, at once.
    pub hello: SocketAddr,
    /// The same, except during its stalls.
    pub stall: SocketAddr,
    /// The servers' thread id (for pinning the others).
    pub thread_id: i32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Start `hello` and `stall` on 127.0.0.1:0 on a thread of their own with a single-threaded
/// runtime, pinned to `cpus` if given. The first stall begins `every - length` after start.
pub fn start_servers(stall: StallSpec, cpus: Option<CpuSet>) -> anyhow::Result<Servers> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<(SocketAddr, SocketAddr, i32)>>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("calibrate-servers".into())
        .spawn(move || {
            let failed = ready_tx.clone();
            let serve = move || -> anyhow::Result<()> {
                if let Some(cpus) = cpus {
                    sched_setaffinity(Pid::from_raw(0), &cpus).context("pinning the servers' thread")?;
                }
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().context("server runtime")?;
                rt.block_on(async move {
                    let hello = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding hello")?;
                    let stalling = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding stall")?;
                    let addrs = (hello.local_addr()?, stalling.local_addr()?, nix::unistd::gettid().as_raw());
                    let until = Arc::new(Mutex::new(Instant::now()));
                    let stall_app = axum::Router::new().fallback({
                        let until = until.clone();
                        move || {
                            let until = until.clone();
                            async move {
                                let deadline = until.lock().map(|u| *u).unwrap_or_else(|e| *e.into_inner());
                                if deadline > Instant::now() {
                                    tokio::time::sleep_until(deadline).await;
                                }
                                "ok"
                            }
                        }
                    });
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(stall.every.saturating_sub(stall.length)).await;
                            let deadline = Instant::now() + stall.length;
                            if let Ok(mut u) = until.lock() {
                                *u = deadline;
                            }
                            tokio::time::sleep_until(deadline).await;
                        }
                    });
                    let hello_app = axum::Router::new().fallback(|| async { "ok" });
                    tokio::spawn(async move { axum::serve(hello, hello_app).await });
                    tokio::spawn(async move { axum::serve(stalling, stall_app).await });
                    let _ = ready_tx.send(Ok(addrs));
                    let _ = stopped.await;
                    Ok(())
                })
            };
            if let Err(e) = serve() {
                // Only reaches the caller if it is still waiting; otherwise nothing to do.
                let _ = failed.send(Err(e));
            }
        })
        .context("starting the servers' thread")?;
    let (hello, stall_addr, thread_id) =
        ready_rx.recv_timeout(Duration::from_secs(10)).context("the servers did not start")??;
    Ok(Servers { hello, stall: stall_addr, thread_id, stop: Some(stop), thread: Some(thread) })
}

/// Parse a CPU list as `taskset -c` and `Cpus_allowed_list` spell it: `0`, `0-1`, `0,2-3`.
pub fn parse_cpus(list: &str) -> anyhow::Result<CpuSet> {
    let mut set = CpuSet::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim().parse::<usize>()?, hi.trim().parse::<usize>()?),
            None => {
                let cpu = part.parse::<usize>().with_context(|| format!("{part:?} is not a CPU number"))?;
                (cpu, cpu)
            }
        };
        if lo > hi {
            bail!("the CPU range {part} runs backwards");
        }
        for cpu in lo..=hi {
            set.set(cpu).with_context(|| format!("CPU {cpu} is out of range"))?;
        }
    }
    Ok(set)
}

/// Pin every thread of this process but `except` to `cpus` (new threads inherit it).
fn pin_process_threads(cpus: &CpuSet, except: i32) -> anyhow::Result<()> {
    for entry in std::fs::read_dir("/proc/self/task").context("listing this process's threads")? {
        let Ok(tid) = entry?.file_name().to_string_lossy().parse::<i32>() else { continue };
        if tid != except {
            // A thread may have ended since the listing; that is fine.
            let _ = sched_setaffinity(Pid::from_raw(tid), cpus);
        }
    }
    Ok(())
}

/// What wrk's `--latency` output says, latencies in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WrkResult {
    pub requests_per_s: f64,
    pub requests: u64,
    pub avg_us: f64,
    pub max_us: f64,
    pub p50_us: f64,
    pub p75_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    /// `Non-2xx or 3xx responses` plus every socket error.
    pub errors: u64,
}

/// A wrk time (`180.12us`, `1.50ms`, `2.00s`, `1.00m`) in microseconds.
fn wrk_time_us(s: &str) -> Option<f64> {
    let units = [("us", 1.0), ("ms", 1e3), ("s", 1e6), ("m", 60e6), ("h", 3600e6)];
    units.iter().find_map(|(unit, factor)| s.strip_suffix(unit).and_then(|n| n.parse::<f64>().ok()).map(|n| n * factor))
}

/// Parse the output of `wrk --latency`.
pub fn parse_wrk(text: &str) -> anyhow::Result<WrkResult> {
    let mut r = WrkResult::default();
    let (mut saw_rate, mut saw_p99) = (false, false);
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Latency", avg, _stdev, max, ..] => {
                r.avg_us = wrk_time_us(avg).with_context(|| format!("wrk latency {avg:?}"))?;
                r.max_us = wrk_time_us(max).with_context(|| format!("wrk max {max:?}"))?;
            }
            [pct @ ("50%" | "75%" | "90%" | "99%"), value] => {
                let v = wrk_time_us(value).with_context(|| format!("wrk percentile {value:?}"))?;
                match *pct {
                    "50%" => r.p50_us = v,
                    "75%" => r.p75_us = v,
                    "90%" => r.p90_us = v,
                    _ => {
                        r.p99_us = v;
                        saw_p99 = true;
                    }
                }
            }
            ["Requests/sec:", value] => {
                r.requests_per_s = value.parse().with_context(|| format!("wrk rate {value:?}"))?;
                saw_rate = true;
            }
            [n, "requests", "in", ..] => r.requests = n.parse().with_context(|| format!("wrk count {n:?}"))?,
            ["Non-2xx", "or", "3xx", "responses:", n] => r.errors += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                r.errors += rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>();
            }
            _ => {}
        }
    }
    if !saw_rate || !saw_p99 {
        bail!("wrk's output has no Requests/sec or no latency distribution (was --latency given?):\n{text}");
    }
    Ok(r)
}

/// Run wrk for `duration` with `connections` on one thread against `url`.
async fn wrk(args: &CalibrateArgs, url: &str, connections: u32, token: &str) -> anyhow::Result<WrkResult> {
    let mut argv: Vec<String> = Vec::new();
    if let Some(cpus) = &args.load_cpus {
        argv.extend(["taskset".into(), "-c".into(), cpus.clone()]);
    }
    argv.push(args.wrk.clone());
    argv.extend(["-t1".into(), format!("-c{connections}"), format!("-d{}s", args.duration_s), "--latency".into()]);
    argv.extend(["-H".into(), format!("Authorization: Bearer {token}"), url.to_owned()]);
    let output = tokio::time::timeout(
        Duration::from_secs(args.duration_s + 30),
        tokio::process::Command::new(&argv[0]).args(&argv[1..]).kill_on_drop(true).output(),
    )
    .await
    .context("wrk overran its duration")?
    .with_context(|| format!("running {} (Debian: apt-get install wrk)", argv[0]))?;
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    parse_wrk(&String::from_utf8_lossy(&output.stdout))
}

/// One `archlab load` run of `GET /api/users/me` (the servers answer any path).
async fn archlab(
    args: &CalibrateArgs,
    base: &str,
    seeded: &Seeded,
    offered: Offered,
    connections: u32,
) -> anyhow::Result<LoadReport> {
    let duration = Duration::from_secs(args.duration_s);
    let bound = match offered {
        Offered::Open { rate_per_s } => (rate_per_s * (duration.as_secs_f64() + 1.0) * 1.1) as u64 + 1000,
        Offered::Closed { .. } => 50_000_000,
    };
    let plan = Plan {
        target: base.to_owned(),
        scenario: Scenario::Profile,
        offered,
        connections,
        warmup: Duration::from_secs(1),
        duration,
        max_requests: bound,
        timeout: Duration::from_secs(5),
        progress: false,
    };
    // On one thread of its own, as wrk runs with `-t1`: the same share of the machine.
    let seeded = seeded.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("load runtime")?;
        rt.block_on(load::run(&plan, &seeded))
    })
    .await
    .context("the load thread failed")?
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

fn yes(met: bool) -> &'static str {
    if met { "yes" } else { "**no**" }
}

fn us(v: f64) -> String {
    if v >= 10_000.0 { format!("{:.1} ms", v / 1000.0) } else { format!("{v:.0} µs") }
}

/// `archlab calibrate`: measure, print the Markdown, write it to `--out`.
pub async fn command(args: CalibrateArgs) -> anyhow::Result<()> {
    if args.duration_s == 0 || args.duration_s > 600 || args.connections == 0 || args.connections > 1000 {
        bail!("--duration-s must be 1..=600 and --connections 1..=1000");
    }
    let load_cpus = args.load_cpus.as_deref().map(parse_cpus).transpose().context("--load-cpus")?;
    let server_cpus = args.server_cpus.as_deref().map(parse_cpus).transpose().context("--server-cpus")?;
    let servers = start_servers(StallSpec::default(), server_cpus)?;
    if let Some(cpus) = &load_cpus {
        pin_process_threads(cpus, servers.thread_id)?;
    }
    let placement = format!(
        "load (wrk and archlab) on CPUs {}, servers on CPUs {}",
        args.load_cpus.as_deref().unwrap_or("any"),
        args.server_cpus.as_deref().unwrap_or("any")
    );
    let fake = Seeded::new(vec![("calibrate@example.com".into(), FAKE_TOKEN.into())]);
    let mut endpoints = vec![("hello".to_owned(), format!("http://{}", servers.hello), fake.clone())];
    if let Some(target) = &args.target {
        let seeded = load::seed(target, Scenario::Profile, 1).await.context("seeding a user on --target")?;
        endpoints.push((format!("{} `/api/users/me`", target.trim_end_matches('/')), target.clone(), seeded));
    }

    let c = args.connections;
    let mut table = String::new();
    let mut lines = |s: String| {
        eprintln!("{s}");
        table.push_str(&s);
        table.push('\n');
    };
    lines("| check | endpoint | wrk | archlab load | archlab / wrk | goal | met |".into());
    lines("|---|---|---|---|---|---|---|".into());
    for (name, base, seeded) in &endpoints {
        let token = seeded.users().first().map(|u| u.1.clone()).unwrap_or_default();
        let url = format!("{}/api/users/me", base.trim_end_matches('/'));
        let w = wrk(&args, &url, c, &token).await?;
        let rate = (w.requests_per_s * 1.5).max(1.0);
        let a = archlab(&args, base, seeded, Offered::Open { rate_per_s: rate }, c).await?;
        let r = ratio(a.throughput_per_s, w.requests_per_s);
        lines(format!(
            "| throughput, {c} connections | {name} | {:.0} req/s | {:.0} req/s (open loop offered {rate:.0}/s; {} errors, {} unsent) | {r:.2} | ≥ 1.00 | {} |",
            w.requests_per_s,
            a.throughput_per_s,
            a.requests - a.ok,
            a.unsent,
            yes(r >= 1.0)
        ));
        let w1 = wrk(&args, &url, 1, &token).await?;
        let a1 = archlab(&args, base, seeded, Offered::Closed { users: 1, think_time_ms: 0 }, 1).await?;
        for (label, wv, av) in [("p50", w1.p50_us, a1.latency.p50_us), ("p99", w1.p99_us, a1.latency.p99_us)] {
            let r = ratio(av as f64, wv);
            lines(format!(
                "| latency {label}, 1 connection (closed loop) | {name} | {} | {} | {r:.2} | within ±10 % | {} |",
                us(wv),
                us(av as f64),
                yes((0.9..=1.1).contains(&r))
            ));
        }
    }
    let stall_base = format!("http://{}", servers.stall);
    let ws = wrk(&args, &format!("{stall_base}/api/users/me"), c, FAKE_TOKEN).await?;
    let a = archlab(&args, &stall_base, &fake, Offered::Open { rate_per_s: args.stall_rate }, c).await?;
    drop(servers);

    let mut out = String::new();
    let _ = writeln!(out, "# Calibration: `archlab load` against wrk\n");
    let _ = writeln!(
        out,
        "Made by `archlab calibrate --connections {c} --duration-s {}{}{}` ({} build), {} CPUs online, {placement}. \
         wrk is Debian's `wrk` run as `wrk -t1 -c<C> -d{}s --latency`; archlab (on one thread, as wrk) runs 1 s of warm-up before the same window. \
         Both send `GET /api/users/me` with a bearer token.\n",
        args.duration_s,
        args.load_cpus.as_ref().map(|l| format!(" --load-cpus {l}")).unwrap_or_default(),
        args.server_cpus.as_ref().map(|l| format!(" --server-cpus {l}")).unwrap_or_default(),
        if cfg!(debug_assertions) { "debug" } else { "release" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        args.duration_s,
    );
    out.push_str(&table);
    let _ = writeln!(
        out,
        "\nCoordinated omission: the `stall` server holds every request for {} s every {} s. wrk (closed loop, {c} connections) \
         measures from the actual send, so the stall shows on one request per connection; archlab load open loop at {} req/s \
         measures from each request's intended send time.\n",
        StallSpec::default().length.as_secs(),
        StallSpec::default().every.as_secs(),
        args.stall_rate
    );
    let _ = writeln!(out, "| measured by | from | requests | p50 | p90 | p99 | max |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| wrk, {c} connections | actual send | {} | {} | {} | {} | {} |",
        ws.requests,
        us(ws.p50_us),
        us(ws.p90_us),
        us(ws.p99_us),
        us(ws.max_us)
    );
    for (label, p) in
        [("intended send (corrected `latency`)", a.latency), ("actual send (`service_time`)", a.service_time)]
    {
        let _ = writeln!(
            out,
            "| archlab load, {} req/s, {c} connections | {label} | {} | {} | {} | {} | {} |",
            args.stall_rate,
            p.count,
            us(p.p50_us as f64),
            us(p.p90_us as f64),
            us(p.p99_us as f64),
            us(p.max_us as f64)
        );
    }
    println!("{out}");
    if let Some(path) = &args.out {
        std::fs::write(path, &out).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:8080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   180.12us   50.00us   1.02s    90.00%
    Req/Sec    50.00k     2.00k    55.00k    70.00%
  Latency Distribution
     50%  170.00us
     75%  190.50us
     90%    2.20ms
     99%    1.01s
  500000 requests in 10.00s, 40.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  50001.25
Transfer/sec:      4.00MB
";

    #[test]
    fn wrk_output_is_parsed_with_its_units() -> anyhow::Result<()> {
        let r = parse_wrk(SAMPLE)?;
        assert_eq!(r.requests_per_s, 50001.25);
        assert_eq!(r.requests, 500_000);
        assert!((r.avg_us - 180.12).abs() < 1e-9);
        assert_eq!(r.max_us, 1_020_000.0);
        assert_eq!(r.p50_us, 170.0);
        assert_eq!(r.p75_us, 190.5);
        assert_eq!(r.p90_us, 2200.0);
        assert_eq!(r.p99_us, 1_010_000.0);
        assert_eq!(r.errors, 12);
        assert_eq!(wrk_time_us("1.50m"), Some(90e6));
        assert_eq!(wrk_time_us("abc"), None);
        Ok(())
    }

    #[test]
    fn wrk_output_without_a_distribution_is_refused() {
        assert!(parse_wrk("Requests/sec: 5.0\n").is_err());
        assert!(parse_wrk("").is_err());
        assert!(parse_wrk(&SAMPLE.replace("1.01s", "fast")).is_err());
    }

    #[test]
    fn cpu_lists() -> anyhow::Result<()> {
        let set = parse_cpus("0,2-3")?;
        assert!(set.is_set(0)? && !set.is_set(1)? && set.is_set(2)? && set.is_set(3)?);
        assert!(parse_cpus("3-1").is_err());
        assert!(parse_cpus("x").is_err());
        Ok(())
    }
}
