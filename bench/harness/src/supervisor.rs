//! Child processes: start them with prefixed output, wait until they answer `/ready`, notice
//! when one dies, start it again if the [`Restart`] policy says so, and stop them all
//! (SIGTERM, a grace period, then SIGKILL).
//!
//! A dead child never takes the others down: each child is tended by one small task of its
//! own, which waits on it, relays signals to it, reports each exit ([`Supervisor::next_exit`])
//! and, under [`Restart::OnFailure`], starts it again exactly as the first time (same binary,
//! environment and so ports, CPU list and log prefix) after a back-off. What a caller does
//! with an exit is its own choice: `archlab up` lets the others run on, `archlab compare`
//! fails the measurement (see `crate::compare::Running`).
//!
//! Each exit and restart is announced on stdout between the children's lines
//! (`archlab | notifications-service exited (signal: 9 (SIGKILL)); restart 1 in 100 ms`),
//! with the new pid, since that is what a workshop kills next. [`Supervisor::pid`],
//! [`Supervisor::restarts`] and [`Supervisor::signal`] give a chaos experiment the same.
//!
//! Because a task sends a signal only while tokio still holds its child unreaped
//! (`Child::id()` is `Some`), a pid the kernel has recycled is never signalled.

use crate::logs;
use crate::topology::{Process, Topology};
use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

/// [`Restart::OnFailure`]: the first restart of a streak waits this long...
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// ...each further restart in a row twice as long as the one before, up to this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// A run at least this long ends the streak: the next failure is restarted after
/// [`BACKOFF_FIRST`] again, with a fresh [`RESTART_LIMIT`].
pub const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Restarts in a row (each run shorter than [`STABLE_AFTER`]) after which a child that fails
/// again is left down, as systemd's `StartLimitBurst` does: with the delays above, about
/// 3.5 s of trying (100, 200, 400, 800, 1000, 1000 ms).
pub const RESTART_LIMIT: u32 = 6;

/// What the supervisor does when a child exits on its own (not stopped by
/// [`Supervisor::stop`]). Either way the other children keep running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Restart {
    /// Leave it down.
    Off,
    /// Start it again after a failure (an exit status other than 0, or a signal) after a
    /// back-off ([`BACKOFF_FIRST`] doubling to [`BACKOFF_CAP`]), and leave it down after
    /// [`RESTART_LIMIT`] restarts in a row. An exit with status 0 is a deliberate stop (the
    /// binaries exit 0 after SIGTERM) and is left down, as systemd's `on-failure` does.
    OnFailure,
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::OnFailure => "on-failure",
        })
    }
}

/// What follows one exit of a child on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Start it again after this delay.
    RestartIn(Duration),
    /// Leave it down, for this reason.
    Down(String),
}

/// The decision after a run of `ran` that ended cleanly (`clean`: exit status 0) or not;
/// `streak` counts the restarts in a row so far and is updated.
fn next_start(restart: Restart, clean: bool, ran: Duration, streak: &mut u32) -> Next {
    match restart {
        Restart::Off => Next::Down("restart policy off".to_owned()),
        Restart::OnFailure if clean => Next::Down("it exited cleanly (restart policy on-failure)".to_owned()),
        Restart::OnFailure => {
            if ran >= STABLE_AFTER {
                *streak = 0;
            }
            if *streak >= RESTART_LIMIT {
                return Next::Down(format!(
                    "{RESTART_LIMIT} restarts in a row, none up for {} s",
                    STABLE_AFTER.as_secs()
                ));
            }
            let delay = BACKOFF_FIRST.saturating_mul(2u32.saturating_pow(*streak)).min(BACKOFF_CAP);
            *streak += 1;
            Next::RestartIn(delay)
        }
    }
}

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
    /// How it ended (or why waiting on it, or starting it again, failed).
    pub status: io::Result<ExitStatus>,
    /// When it will be started again; `None`: it is left down (or was stopped).
    pub restart_in: Option<Duration>,
}

impl Exit {
    /// `exit status: 1`, `signal: 9 (SIGKILL)`, ...
    pub fn describe(&self) -> String {
        match &self.status {
            Ok(status) => status.to_string(),
            Err(error) => error.to_string(),
        }
    }
}

/// What the supervisor asks of a child's task.
#[derive(Debug)]
enum Control {
    /// Relay this signal to the child, if it is running.
    Signal(Signal),
    /// Send it SIGTERM and never start it again.
    Stop,
    /// Send it SIGTERM and start it again as soon as it has exited, whatever the policy (a
    /// deploy's restart).
    Restart,
}

/// What the supervisor and a child's task both see of the child.
#[derive(Debug)]
struct State {
    /// The running child's pid; `None` while it is down.
    pid: Option<u32>,
    /// How many times it was started again.
    restarts: u32,
}

/// One child, seen from the supervisor.
struct Handle {
    name: &'static str,
    control: mpsc::UnboundedSender<Control>,
    state: Arc<Mutex<State>>,
    /// Its task; finished once the child is down for good and reaped.
    task: JoinHandle<()>,
}

/// How to start one child, kept so that a restart starts it exactly as the first start did.
struct Launch {
    name: &'static str,
    path: PathBuf,
    env: Vec<(String, String)>,
    cpus: Option<String>,
    prefix: String,
    /// Every output forwarder of the topology, drained by [`Supervisor::stop`].
    forwarders: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Launch {
    /// Spawn the binary (through `taskset -c` when pinned) and forward its output.
    ///
    /// Children get their own process group, so a Ctrl-C in the terminal reaches only the
    /// harness, which then stops them in order instead of racing their own signal handlers.
    fn spawn(&self) -> io::Result<Child> {
        let mut command = match &self.cpus {
            Some(cpus) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(cpus).arg(&self.path);
                taskset
            }
            None => Command::new(&self.path),
        };
        // The last value of each variable wins; an empty one unsets it (empty counts as
        // unset everywhere in the lab, and a parser that takes an address would refuse it).
        let env: std::collections::BTreeMap<&String, &String> = self.env.iter().map(|(k, v)| (k, v)).collect();
        for (key, value) in env {
            match value.is_empty() {
                true => command.env_remove(key),
                false => command.env(key, value),
            };
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let mut forwarders = lock(&self.forwarders);
        forwarders.retain(|forwarder| !forwarder.is_finished());
        if let Some(stdout) = child.stdout.take() {
            forwarders.push(tokio::spawn(logs::forward(stdout, self.prefix.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            forwarders.push(tokio::spawn(logs::forward(stderr, self.prefix.clone())));
        }
        Ok(child)
    }
}

/// The running children of one topology.
pub struct Supervisor {
    children: Vec<Handle>,
    exits: mpsc::UnboundedReceiver<Exit>,
    forwarders: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Supervisor {
    /// Start every process of `topology` from `bin_dir`, in order, without waiting between
    /// them, under the `restart` policy; if one cannot be spawned, the ones already started
    /// are stopped again.
    pub async fn start(topology: &Topology, bin_dir: &Path, color: bool, restart: Restart) -> anyhow::Result<Self> {
        Self::start_pinned(topology, bin_dir, color, None, restart).await
    }

    /// [`Supervisor::start`], with every child confined to `cpus` (a `taskset -c` list such
    /// as `1` or `1-3`) when given: each is spawned as `taskset -c <cpus> <binary>`, which
    /// sets the affinity and execs the binary, so the pid is the binary's own and every
    /// thread it starts inherits the list (setting it after the spawn would miss the threads
    /// the runtime has already started). A restarted child is pinned the same way. See
    /// `crate::placement`.
    pub async fn start_pinned(
        topology: &Topology,
        bin_dir: &Path,
        color: bool,
        cpus: Option<&str>,
        restart: Restart,
    ) -> anyhow::Result<Self> {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let forwarders = Arc::default();
        let mut supervisor = Self { children: Vec::new(), exits, forwarders: Arc::clone(&forwarders) };
        let width = topology.processes.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for (index, process) in topology.processes.iter().enumerate() {
            let launch = Launch {
                name: process.name,
                path: bin_dir.join(process.binary),
                env: topology.env.iter().chain(&process.env).cloned().collect(),
                cpus: cpus.map(str::to_owned),
                prefix: logs::prefix(process.name, index, width, color),
                forwarders: Arc::clone(&forwarders),
            };
            match launch.spawn() {
                Ok(child) => supervisor.children.push(tend(launch, child, restart, exits_tx.clone())),
                Err(error) => {
                    supervisor.stop(GRACE, std::future::pending()).await;
                    let path = launch.path.display();
                    return Err(error).with_context(|| format!("cannot start {} ({path})", process.name));
                }
            }
        }
        Ok(supervisor)
    }

    /// The binary name and pid of every child running now, in start order (for the cost
    /// meter; a pid is only meaningful while its child runs).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.children.iter().filter_map(|h| Some((h.name, lock(&h.state).pid?))).collect()
    }

    /// The pid of the child `name` while it runs; `None` while it is down (or no child has
    /// that name).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children.iter().find(|h| h.name == name).and_then(|h| lock(&h.state).pid)
    }

    /// How many times each child was started again, in start order.
    pub fn restarts(&self) -> Vec<(&'static str, u32)> {
        self.children.iter().map(|h| (h.name, lock(&h.state).restarts)).collect()
    }

    /// Send `signal` (say SIGKILL, for a chaos experiment) to the running child `name`; its
    /// exit then goes the way of any other, under the restart policy. Returns the pid
    /// signalled; fails if no child has that name or it is down.
    pub fn signal(&self, name: &str, signal: Signal) -> anyhow::Result<u32> {
        let handle = self.handle(name)?;
        let pid = lock(&handle.state).pid.with_context(|| format!("{name} is not running"))?;
        handle.control.send(Control::Signal(signal)).map_err(|_| anyhow!("{name} is no longer tended"))?;
        Ok(pid)
    }

    /// Restart the running child `name` as a deploy does: SIGTERM, and once it has exited,
    /// start it again at once (no back-off, whatever the restart policy); counted among its
    /// restarts. Returns the pid sent SIGTERM; fails if no child has that name or it is down.
    pub fn restart(&self, name: &str) -> anyhow::Result<u32> {
        let handle = self.handle(name)?;
        let pid = lock(&handle.state).pid.with_context(|| format!("{name} is not running"))?;
        handle.control.send(Control::Restart).map_err(|_| anyhow!("{name} is no longer tended"))?;
        Ok(pid)
    }

    /// The child `name`, or which names there are.
    fn handle(&self, name: &str) -> anyhow::Result<&Handle> {
        self.children.iter().find(|h| h.name == name).with_context(|| {
            let names: Vec<_> = self.children.iter().map(|h| h.name).collect();
            format!("no child named {name} (the children: {})", names.join(", "))
        })
    }

    /// The next exit of a child on its own, whether it will be restarted or not; pending
    /// forever if none comes.
    pub async fn next_exit(&mut self) -> Exit {
        match self.exits.recv().await {
            Some(exit) => exit,
            // Every task has ended: no exit will come; stay pending rather than invent one.
            None => std::future::pending().await,
        }
    }

    /// Stop every child: SIGTERM to all (last started first) and no more restarts, up to
    /// `grace` for each to exit, then SIGKILL for the rest. `hurry` (a second Ctrl-C) cuts
    /// the grace period short.
    pub async fn stop(&mut self, grace: Duration, hurry: impl Future<Output = ()>) {
        for handle in self.children.iter().rev().filter(|h| !h.task.is_finished()) {
            tracing::info!("stopping {}", handle.name);
            let _ = handle.control.send(Control::Stop);
        }
        tokio::pin!(hurry);
        tokio::select! {
            () = self.all_down() => {}
            () = tokio::time::sleep(grace) => {}
            () = &mut hurry => tracing::warn!("asked again: killing what is left"),
        }
        for handle in self.children.iter().filter(|h| !h.task.is_finished()) {
            tracing::warn!("{} still running: sending SIGKILL", handle.name);
            let _ = handle.control.send(Control::Signal(Signal::SIGKILL));
        }
        if tokio::time::timeout(KILL_WAIT, self.all_down()).await.is_err() {
            let left: Vec<_> = self.children.iter().filter(|h| !h.task.is_finished()).map(|h| h.name).collect();
            tracing::error!("not reaped after SIGKILL: {}", left.join(", "));
        }
        // Let the last lines of output through; a grandchild holding a pipe must not hang us.
        let drain = futures::future::join_all(std::mem::take(&mut *lock(&self.forwarders)));
        let _ = tokio::time::timeout(DRAIN_WAIT, drain).await;
    }

    /// Completes once every child's task has ended (a finished task is never polled again).
    async fn all_down(&mut self) {
        let tasks = self.children.iter_mut().filter(|h| !h.task.is_finished()).map(|h| &mut h.task);
        futures::future::join_all(tasks).await;
    }
}

/// Hand `child`, just started from `launch`, to a task of its own (see [`tend_child`]).
fn tend(launch: Launch, child: Child, restart: Restart, exits: mpsc::UnboundedSender<Exit>) -> Handle {
    let name = launch.name;
    let pid = child.id();
    if let Some(pid) = pid {
        // On stdout with the children's lines: the pid is what a workshop needs to kill it.
        logs::announce(&format!("started {name} pid={pid}"));
    }
    let state = Arc::new(Mutex::new(State { pid, restarts: 0 }));
    let (control, control_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(tend_child(launch, child, restart, Arc::clone(&state), control_rx, exits));
    Handle { name, control, state, task }
}

/// Own one child until it is down for good: relay signals to it, report each exit, and
/// start it again while `restart` says so. If the supervisor goes away, kill the child
/// rather than leave it behind.
async fn tend_child(
    launch: Launch,
    mut child: Child,
    restart: Restart,
    state: Arc<Mutex<State>>,
    mut control: mpsc::UnboundedReceiver<Control>,
    exits: mpsc::UnboundedSender<Exit>,
) {
    let name = launch.name;
    let (mut streak, mut stopping) = (0, false);
    loop {
        let started = Instant::now();
        let mut requested = false;
        let status = wait(&mut child, &mut control, &mut stopping, &mut requested)
            .await
            .map_err(|error| io::Error::new(error.kind(), format!("cannot wait on it: {error}")));
        lock(&state).pid = None;
        let exit = Exit { name, status, restart_in: None };
        if stopping {
            tracing::info!("{name} stopped ({})", exit.describe());
            return;
        }
        let clean = exit.status.as_ref().is_ok_and(ExitStatus::success);
        // A restart asked for is not a failure: no back-off, and the streak stays as it was.
        let next = if requested {
            Next::RestartIn(Duration::ZERO)
        } else {
            next_start(restart, clean, started.elapsed(), &mut streak)
        };
        let delay = match next {
            Next::RestartIn(delay) => delay,
            Next::Down(why) => {
                logs::announce(&format!("{name} exited ({}); left down: {why}", exit.describe()));
                let _ = exits.send(exit);
                return;
            }
        };
        let count = lock(&state).restarts + 1;
        logs::announce(&format!("{name} exited ({}); restart {count} in {} ms", exit.describe(), delay.as_millis()));
        let _ = exits.send(Exit { restart_in: Some(delay), ..exit });
        if !back_off(delay, &mut control).await {
            return;
        }
        child = match launch.spawn() {
            Ok(child) => child,
            Err(error) => {
                logs::announce(&format!("cannot start {name} again ({error}); left down"));
                let status = Err(io::Error::new(error.kind(), format!("cannot start it again: {error}")));
                let _ = exits.send(Exit { name, status, restart_in: None });
                return;
            }
        };
        let pid = child.id();
        *lock(&state) = State { pid, restarts: count };
        let pid = pid.map_or("?".to_owned(), |p| p.to_string());
        logs::announce(&format!("restarted {name} pid={pid} (restart {count})"));
    }
}

/// Wait for `child` to exit, relaying signals to it. A stop request (or the supervisor going
/// away, which kills it) sets `stopping`: that exit is not the child's own. A restart request
/// sets `requested`.
async fn wait(
    child: &mut Child,
    control: &mut mpsc::UnboundedReceiver<Control>,
    stopping: &mut bool,
    requested: &mut bool,
) -> io::Result<ExitStatus> {
    loop {
        tokio::select! {
            status = child.wait() => return status,
            message = control.recv() => match message {
                Some(Control::Signal(signal)) => send(child, signal),
                Some(Control::Restart) => {
                    *requested = true;
                    send(child, Signal::SIGTERM);
                }
                Some(Control::Stop) => {
                    *stopping = true;
                    send(child, Signal::SIGTERM);
                }
                None => {
                    *stopping = true;
                    let _ = child.start_kill();
                    return child.wait().await;
                }
            },
        }
    }
}

/// Sleep `delay` before a restart; `false` if a stop request (or the supervisor going away)
/// comes first. A signal for the child finds nothing to signal meanwhile.
async fn back_off(delay: Duration, control: &mut mpsc::UnboundedReceiver<Control>) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return true,
            message = control.recv() => match message {
                Some(Control::Signal(_) | Control::Restart) => {}
                Some(Control::Stop) | None => return false,
            },
        }
    }
}

/// Send `signal` to `child` if it has not been reaped yet.
fn send(child: &Child, signal: Signal) {
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else { return };
    if let Err(error) = kill(Pid::from_raw(pid), signal) {
        tracing::debug!(pid, %error, "cannot send {signal}");
    }
}

/// The data behind `mutex`, even if a thread panicked while holding it (every update here is
/// a single assignment, so it is never half-made).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);

    #[test]
    fn on_failure_backs_off_from_100_ms_doubling_to_1_s_then_gives_up() {
        let mut streak = 0;
        let delays: Vec<Next> =
            (0..=RESTART_LIMIT).map(|_| next_start(Restart::OnFailure, false, SHORT, &mut streak)).collect();
        let ms = |ms| Next::RestartIn(Duration::from_millis(ms));
        assert_eq!(delays[..6], [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        assert!(matches!(&delays[6], Next::Down(why) if why.starts_with("6 restarts in a row")), "{:?}", delays[6]);
        assert!(
            matches!(next_start(Restart::OnFailure, false, SHORT, &mut streak), Next::Down(_)),
            "once given up, still given up"
        );
    }

    #[test]
    fn a_run_of_stable_after_starts_a_fresh_streak() {
        let mut streak = 0;
        for _ in 0..3 {
            next_start(Restart::OnFailure, false, SHORT, &mut streak);
        }
        let after_long_run = next_start(Restart::OnFailure, false, STABLE_AFTER, &mut streak);
        assert_eq!(after_long_run, Next::RestartIn(BACKOFF_FIRST));
        assert_eq!(streak, 1);
        let mut spent = RESTART_LIMIT;
        let revived = next_start(Restart::OnFailure, false, STABLE_AFTER, &mut spent);
        assert_eq!(revived, Next::RestartIn(BACKOFF_FIRST), "even after the limit was reached");
    }

    #[test]
    fn a_clean_exit_and_policy_off_leave_the_child_down() {
        let mut streak = 0;
        assert!(matches!(next_start(Restart::OnFailure, true, SHORT, &mut streak), Next::Down(_)));
        assert!(matches!(next_start(Restart::Off, false, SHORT, &mut streak), Next::Down(_)));
        assert_eq!(streak, 0, "no restart was counted");
    }
}
