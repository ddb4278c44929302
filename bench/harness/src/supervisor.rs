//! Child processes: start them with prefixed output, wait until they answer `/ready`, notice
//! when one dies, and stop them all (SIGTERM, a grace period, then SIGKILL).
//!
//! Each child is owned by one small task that waits on it and relays signals to it. Because
//! that task sends a signal only while tokio still holds the child unreaped (`Child::id()` is
//! `Some`), a pid the kernel has recycled is never signalled.

use crate::logs;
use crate::topology::{Process, Topology};
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::future::Future;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// How long each child gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(10);
/// How often each process's readiness URL is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(100);
/// Longest single readiness request; `/ready` runs its own checks with a 2 s budget.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long SIGKILLed children get to be reaped before we stop waiting.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long output forwarding may lag behind the children's exit.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Fail with one clear message if any of `names` is missing from `bin_dir`.
pub fn check_binaries(bin_dir: &Path, names: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = names.iter().copied().filter(|name| !bin_dir.join(name).is_file()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let plural = if missing.len() == 1 { "binary" } else { "binaries" };
    bail!(
        "missing {plural} {} in {}: the harness builds nothing itself; run `cargo build --release` \
         or `make build` first, or point --bin-dir at the directory that has them",
        missing.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", "),
        bin_dir.display()
    )
}

/// A child that ended.
#[derive(Debug)]
pub struct Exit {
    /// Its binary name.
    pub name: &'static str,
    /// How it ended (or why waiting on it failed).
    pub status: io::Result<ExitStatus>,
}

impl Exit {
    /// `exit status: 1`, `signal: 9 (SIGKILL)`, ...
    pub fn describe(&self) -> String {
        match &self.status {
            Ok(status) => status.to_string(),
            Err(error) => format!("cannot wait on it: {error}"),
        }
    }
}

/// One running child, seen from the supervisor.
struct Handle {
    name: &'static str,
    signals: mpsc::UnboundedSender<Signal>,
    /// Its pid at spawn (through `taskset`, the binary's: taskset execs it).
    pid: Option<u32>,
    exited: bool,
}

/// The running children of one topology.
pub struct Supervisor {
    children: Vec<Handle>,
    exits: mpsc::UnboundedReceiver<(usize, io::Result<ExitStatus>)>,
    exits_tx: mpsc::UnboundedSender<(usize, io::Result<ExitStatus>)>,
    forwarders: Vec<JoinHandle<()>>,
}

impl Supervisor {
    /// Start every process of `topology` from `bin_dir`, in order, without waiting between
    /// them; if one cannot be spawned, the ones already started are stopped again.
    ///
    /// Children get their own process group, so a Ctrl-C in the terminal reaches only the
    /// harness, which then stops them in order instead of racing their own signal handlers.
    pub async fn start(topology: &Topology, bin_dir: &Path, color: bool) -> anyhow::Result<Self> {
        Self::start_pinned(topology, bin_dir, color, None).await
    }

    /// [`Supervisor::start`], with every child confined to `cpus` (a `taskset -c` list such
    /// as `1` or `1-3`) when given: each is spawned as `taskset -c <cpus> <binary>`, which
    /// sets the affinity and execs the binary, so the pid is the binary's own and every
    /// thread it starts inherits the list (setting it after the spawn would miss the threads
    /// the runtime has already started). See `crate::placement`.
    pub async fn start_pinned(
        topology: &Topology,
        bin_dir: &Path,
        color: bool,
        cpus: Option<&str>,
    ) -> anyhow::Result<Self> {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let mut supervisor = Self { children: Vec::new(), exits, exits_tx, forwarders: Vec::new() };
        let width = topology.processes.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for (index, process) in topology.processes.iter().enumerate() {
            let prefix = logs::prefix(process.name, index, width, color);
            if let Err(error) = supervisor.spawn(process.name, bin_dir, &topology.env, prefix, cpus) {
                supervisor.stop(GRACE, std::future::pending()).await;
                return Err(error);
            }
        }
        Ok(supervisor)
    }

    fn spawn(
        &mut self,
        name: &'static str,
        bin_dir: &Path,
        env: &[(String, String)],
        prefix: String,
        cpus: Option<&str>,
    ) -> anyhow::Result<()> {
        let path = bin_dir.join(name);
        let mut command = match cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(cpus).arg(&path);
                taskset
            }
            None => Command::new(&path),
        };
        let mut child = command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", path.display()))?;
        // On stdout with the children's lines: the pid is what a workshop needs to kill it.
        if let Some(pid) = child.id() {
            println!("archlab | started {name} pid={pid}");
        }
        if let Some(stdout) = child.stdout.take() {
            self.forwarders.push(tokio::spawn(logs::forward(stdout, prefix.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            self.forwarders.push(tokio::spawn(logs::forward(stderr, prefix)));
        }
        let child_pid = child.id();
        let (signals, signals_rx) = mpsc::unbounded_channel();
        tokio::spawn(watch(self.children.len(), child, signals_rx, self.exits_tx.clone()));
        self.children.push(Handle { name, signals, pid: child_pid, exited: false });
        Ok(())
    }

    /// The binary name and pid of every child still running, in start order (for the cost
    /// meter; a pid is only meaningful while its child has not exited).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.running().filter_map(|h| Some((h.name, h.pid?))).collect()
    }

    /// The next child to end on its own; pending forever if none does.
    pub async fn next_exit(&mut self) -> Exit {
        match self.exits.recv().await {
            Some((index, status)) => self.record(index, status),
            // Unreachable while `self` holds a sender; stay pending rather than invent an exit.
            None => std::future::pending().await,
        }
    }

    fn record(&mut self, index: usize, status: io::Result<ExitStatus>) -> Exit {
        let handle = &mut self.children[index];
        handle.exited = true;
        Exit { name: handle.name, status }
    }

    fn running(&self) -> impl Iterator<Item = &Handle> {
        self.children.iter().filter(|h| !h.exited)
    }

    /// Stop every child still running: SIGTERM to all (last started first), up to `grace`
    /// for each to exit, then SIGKILL for the rest. `hurry` (a second Ctrl-C) cuts the
    /// grace period short.
    pub async fn stop(&mut self, grace: Duration, hurry: impl Future<Output = ()>) {
        while let Ok((index, status)) = self.exits.try_recv() {
            let exit = self.record(index, status);
            tracing::info!("{} had already exited ({})", exit.name, exit.describe());
        }
        for handle in self.running().collect::<Vec<_>>().into_iter().rev() {
            tracing::info!("stopping {}", handle.name);
            let _ = handle.signals.send(Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        tokio::pin!(hurry);
        while self.running().next().is_some() {
            tokio::select! {
                Some((index, status)) = self.exits.recv() => {
                    let exit = self.record(index, status);
                    tracing::info!("{} stopped ({})", exit.name, exit.describe());
                }
                () = tokio::time::sleep_until(deadline) => break,
                () = &mut hurry => {
                    tracing::warn!("asked again: killing what is left");
                    break;
                }
            }
        }
        for handle in self.running() {
            tracing::warn!("{} still running: sending SIGKILL", handle.name);
            let _ = handle.signals.send(Signal::SIGKILL);
        }
        let deadline = Instant::now() + KILL_WAIT;
        while self.running().next().is_some() {
            tokio::select! {
                Some((index, status)) = self.exits.recv() => {
                    let exit = self.record(index, status);
                    tracing::info!("{} killed ({})", exit.name, exit.describe());
                }
                () = tokio::time::sleep_until(deadline) => {
                    let left: Vec<_> = self.running().map(|h| h.name).collect();
                    tracing::error!("not reaped after SIGKILL: {}", left.join(", "));
                    break;
                }
            }
        }
        // Let the last lines of output through; a grandchild holding a pipe must not hang us.
        let drain = futures::future::join_all(self.forwarders.drain(..));
        let _ = tokio::time::timeout(DRAIN_WAIT, drain).await;
    }
}

/// Own `child` until it exits: relay signals to it, then report how it ended. If the
/// supervisor goes away first, kill the child rather than leave it behind.
async fn watch(
    index: usize,
    mut child: Child,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    exits: mpsc::UnboundedSender<(usize, io::Result<ExitStatus>)>,
) {
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            signal = signals.recv() => match signal {
                Some(signal) => send(&child, signal),
                None => {
                    let _ = child.start_kill();
                    break child.wait().await;
                }
            },
        }
    };
    let _ = exits.send((index, status));
}

/// Send `signal` to `child` if it has not been reaped yet.
fn send(child: &Child, signal: Signal) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else { return };
    if let Err(error) = kill(Pid::from_raw(pid), signal) {
        tracing::debug!(pid, %error, "cannot send {signal}");
    }
}

/// What the last poll of one process's readiness URL saw.
#[derive(Debug, Clone)]
enum Seen {
    NotYet,
    Ready,
    Failed(String),
}

/// Poll every process's `ready_url` each [`POLL_EVERY`] until all answer 200; after `timeout`,
/// fail naming the processes that are not ready and what their last answer was.
pub async fn wait_ready(processes: &[Process], timeout: Duration) -> anyhow::Result<()> {
    // No proxy: an `http_proxy` in the environment must not intercept loopback polls.
    let client = reqwest::Client::builder().no_proxy().build().context("building the readiness client")?;
    let seen = Mutex::new(vec![Seen::NotYet; processes.len()]);
    let deadline = Instant::now() + timeout;
    let poll_one = |index: usize, process: &Process| {
        let (client, seen) = (&client, &seen);
        let url = process.ready_url.clone();
        let name = process.name;
        async move {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let budget = PROBE_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
                let result = probe(client, &url, budget.max(Duration::from_millis(1))).await;
                let ready = result.is_ok();
                seen.lock().expect("no poller panics while holding it")[index] = match result {
                    Ok(()) => Seen::Ready,
                    Err(why) => Seen::Failed(why),
                };
                if ready {
                    tracing::info!("{name} answers {url}");
                    return;
                }
            }
        }
    };
    let all = futures::future::join_all(processes.iter().enumerate().map(|(i, p)| poll_one(i, p)));
    if tokio::time::timeout_at(deadline, all).await.is_ok() {
        return Ok(());
    }
    let seen = seen.lock().expect("no poller panics while holding it");
    let late: Vec<String> = processes
        .iter()
        .zip(seen.iter())
        .filter_map(|(process, seen)| match seen {
            Seen::Ready => None,
            Seen::NotYet => Some(format!("{} ({}: no answer yet)", process.name, process.ready_url)),
            Seen::Failed(why) => Some(format!("{} ({}: {why})", process.name, process.ready_url)),
        })
        .collect();
    bail!("not ready after {:.1} s: {}", timeout.as_secs_f64(), late.join("; "))
}

/// One readiness request: `Ok` on 200, otherwise a short reason.
async fn probe(client: &reqwest::Client, url: &str, timeout: Duration) -> Result<(), String> {
    match client.get(url).timeout(timeout).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => Ok(()),
        Ok(response) => Err(format!("HTTP {}", response.status())),
        Err(error) if error.is_timeout() => Err(format!("no answer within {} ms", timeout.as_millis())),
        Err(error) => {
            // reqwest's own message is the URL again; the interesting part is at the bottom.
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            Err(cause.to_string())
        }
    }
}
