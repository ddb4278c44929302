//! A bounded flood of wrong-password logins against one account, to measure what the
//! signup and login limits do (docs/hardening.md has the figures and how they were made).
//!
//! It signs up a victim and a bystander from a second loopback address, then sends
//! `--requests` wrong-password logins for the victim from 127.0.0.1, `--concurrency` at a
//! time, while the bystander logs in from the second address every `--bystander-every-ms`
//! (at most `--bystander-logins` times). It counts the answers by status, and reads the
//! peak resident memory (`VmHWM`) of the processes listening on the `--watch` ports (by
//! default the target's own) before and after. Loopback only, bounded in count, and every
//! request has a timeout: it stops by itself.
//!
//! ```sh
//! cargo run --release -p archlab-harness --example login_flood -- \
//!     --base http://127.0.0.1:8080 --requests 2000 --concurrency 64
//! ```

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "A bounded wrong-password login flood on loopback, with memory and bystander figures")]
struct Args {
    /// The public API (monolith or gateway); must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// Wrong-password logins to send in all.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// How many are in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Ports whose listening processes' memory is reported (default: the target's port).
    #[arg(long)]
    watch: Vec<u16>,
    /// The bystander's client address (another loopback address than the flood's 127.0.0.1).
    #[arg(long, default_value = "127.0.0.2")]
    bystander_address: IpAddr,
    /// Pause between two bystander logins, in milliseconds.
    #[arg(long, default_value_t = 500)]
    bystander_every_ms: u64,
    /// Most bystander logins (each is an attempt on its account's budget too).
    #[arg(long, default_value_t = 10)]
    bystander_logins: usize,
}

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = reqwest::Url::parse(&args.base).context("--base")?;
    let host: IpAddr = url.host_str().unwrap_or_default().trim_matches(['[', ']']).parse().context("--base host")?;
    if !host.is_loopback() || !args.bystander_address.is_loopback() {
        bail!("this flood only targets loopback addresses");
    }
    let port = url.port_or_known_default().context("--base port")?;
    let watch = if args.watch.is_empty() { vec![port] } else { args.watch.clone() };
    let base = args.base.trim_end_matches('/').to_owned();

    let client = |local: Option<IpAddr>| {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .local_address(local)
            .pool_max_idle_per_host(args.concurrency)
            .build()
    };
    let flooder = client(None)?;
    let bystander = client(Some(args.bystander_address))?;
    let tag = std::process::id();
    let victim = format!("flood-victim-{tag}-{}@example.com", now_ms());
    let other = format!("flood-bystander-{tag}-{}@example.com", now_ms());
    for email in [&victim, &other] {
        let answer =
            post(&bystander, &base, "/api/auth/signup", json!({"email": email, "password": PASSWORD, "name": "Flood"}))
                .await?;
        if answer.0 != StatusCode::CREATED {
            bail!("signing {email} up answered {}: {}", answer.0, answer.1);
        }
    }

    let before = memory(&watch);
    let started = Instant::now();
    let flood = futures::stream::iter(0..args.requests)
        .map(|_| {
            let (flooder, base, victim) = (&flooder, &base, &victim);
            async move {
                let body = json!({"email": victim, "password": "wrong password!"});
                match post(flooder, base, "/api/auth/login", body).await {
                    Ok((status, _)) => status.as_u16().to_string(),
                    Err(e) => format!("error: {e}"),
                }
            }
        })
        .buffer_unordered(args.concurrency)
        .fold(BTreeMap::<String, usize>::new(), |mut counts, status| async move {
            *counts.entry(status).or_default() += 1;
            counts
        });
    let bystanding = async {
        let mut answers = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(args.bystander_every_ms));
        for _ in 0..args.bystander_logins {
            tick.tick().await;
            let sent = Instant::now();
            let answer =
                post(&bystander, &base, "/api/auth/login", json!({"email": other, "password": PASSWORD})).await;
            answers.push((answer.map(|a| a.0.as_u16()).unwrap_or(0), sent.elapsed()));
        }
        answers
    };
    let (counts, bystander_answers) = tokio::join!(flood, bystanding);
    let elapsed = started.elapsed();
    let after = memory(&watch);

    println!("target: {base}  requests: {}  concurrency: {}", args.requests, args.concurrency);
    println!(
        "flood took {:.2} s ({:.0} requests/s)",
        elapsed.as_secs_f64(),
        args.requests as f64 / elapsed.as_secs_f64()
    );
    println!("flood answers by status:");
    for (status, n) in &counts {
        println!("  {status}: {n}");
    }
    let ok = bystander_answers.iter().filter(|(s, _)| *s == 200).count();
    let slowest = bystander_answers.iter().map(|(_, t)| *t).max().unwrap_or_default();
    println!(
        "bystander logins from {}: {ok}/{} answered 200, slowest {} ms, statuses {:?}",
        args.bystander_address,
        bystander_answers.len(),
        slowest.as_millis(),
        bystander_answers.iter().map(|(s, _)| *s).collect::<Vec<_>>()
    );
    println!("memory (MiB)      before: VmRSS VmHWM   after: VmRSS VmHWM");
    for ((pid, name, rss0, hwm0), (_, _, rss1, hwm1)) in before.iter().zip(&after) {
        println!(
            "  {name:<14} {pid:>7}    {:>6.1} {:>6.1}          {:>6.1} {:>6.1}",
            mib(*rss0),
            mib(*hwm0),
            mib(*rss1),
            mib(*hwm1)
        );
    }
    Ok(())
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> reqwest::Result<(StatusCode, String)> {
    let answer = client.post(format!("{base}{path}")).json(&body).send().await?;
    let status = answer.status();
    Ok((status, answer.text().await?))
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `(pid, name, VmRSS KiB, VmHWM KiB)` of the process listening on each port.
fn memory(ports: &[u16]) -> Vec<(u32, String, u64, u64)> {
    ports
        .iter()
        .map(|&port| match listener_pid(port) {
            Some(pid) => {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let field = |key: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                        .unwrap_or(0)
                };
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                (pid, format!("{}:{port}", name.trim()), field("VmRSS:"), field("VmHWM:"))
            }
            None => (0, format!("?:{port}"), 0, 0),
        })
        .collect()
}

/// The process holding the socket that listens on `port` (Linux `/proc`).
fn listener_pid(port: u16) -> Option<u32> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    let local_port = u16::from_str_radix(cols.get(1)?.rsplit(':').next()?, 16).ok()?;
                    // State 0A is LISTEN; column 9 is the socket's inode.
                    (local_port == port && cols.get(3) == Some(&"0A")).then(|| format!("socket:[{}]", cols[9]))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}
