//! `archlab up monolith|micro|hybrid`: run one build locally until Ctrl-C.
//!
//! Start the children, wait for every `/ready`, print where things are, then run until a stop
//! request (Ctrl-C, SIGTERM, SIGHUP; exit 0), and stop every child before returning.
//!
//! A child that dies once the build is ready never takes the others down: under `--restart
//! off` (the default) it stays down, under `on-failure` it is started again with back-off
//! until its restart limit (see [`Restart`]); either way the rest keep serving, so "one dead
//! service, the rest still up" can be watched. Even a child left down for good does not end
//! `archlab up`: that half-broken build is exactly what a workshop or a chaos experiment wants
//! to look at, and only the person running it knows when they are done.
//!
//! During start-up a child left down fails the whole start (exit 1, naming it): a process that
//! cannot start is a configuration problem to report, not a state to run in. One that will be
//! restarted gets until `--ready-timeout` to come up.

use crate::logs;
use crate::supervisor::{self, GRACE, Restart, Supervisor};
use crate::topology::{Kind, Module, NotificationMode, Options, Topology, Transport};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::Instant;

/// Arguments of `archlab up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Which build to run.
    #[arg(value_enum)]
    pub topology: Kind,
    /// The module the hybrid runs as its own service (hybrid only).
    #[arg(long, value_enum, default_value_t = Module::Notifications)]
    pub extract: Module,
    /// Run more than one process of one part, balanced by the gateway (at most 3):
    /// `payments=2` with micro (payments only: the one service nothing but the gateway
    /// calls), `monolith=2` or just `2` with monolith (the gateway then passes every request
    /// through).
    #[arg(long, value_name = "[PART=]N", value_parser = parse_replicas)]
    pub replicas: Option<(String, u8)>,
    /// Notification delivery for every child [default: inherited; the binaries default to async].
    #[arg(long, value_enum, env = "NOTIFICATION_MODE")]
    pub mode: Option<NotificationMode>,
    /// How the services call each other (micro only; the monolith ignores it) [default: inherited; the binaries default to grpc].
    #[arg(long, value_enum, env = "INTERNAL_TRANSPORT")]
    pub transport: Option<Transport>,
    /// Directory holding the binaries [default: the directory of this `archlab`].
    #[arg(long, env = "ARCHLAB_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Seconds to wait for every process to answer `/ready` before giving up.
    #[arg(long, env = "ARCHLAB_READY_TIMEOUT", value_name = "SECS", default_value_t = 60)]
    pub ready_timeout: u64,
    /// Do not start extsim: one is already running at EXTSIM_URL (or EXTSIM_ADDR).
    #[arg(long)]
    pub no_extsim: bool,
    /// What happens to a process that dies: `off` leaves it down; `on-failure` starts it
    /// again after a growing back-off, and leaves it down after a few failures in a row. The
    /// others keep running either way. `off` by default: in a lab, a killed or crashed
    /// process should stay visibly dead, its last words on screen, rather than be hidden by
    /// a quick restart; `on-failure` is for watching recovery, as an orchestrator would do it.
    #[arg(long, value_enum, env = "ARCHLAB_RESTART", default_value_t = Restart::Off)]
    pub restart: Restart,
    /// Open every process's fault admin endpoint on a free loopback port (printed once the
    /// build is ready), to turn fault points on and off while it runs. Off by default, as
    /// in the binaries: an endpoint that makes the process fail is opened only when asked for.
    #[arg(long)]
    pub admin: bool,
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed), listened for from before the first
/// child starts. Children sit in their own process group, so without this a closed terminal
/// would take the harness down and leave them running.
struct StopRequests {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl StopRequests {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            hangup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        })
    }

    /// The name of the next stop signal received.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// Run `archlab up`; returns `Ok` only when the stop was asked for.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let (payments_replicas, monolith_replicas) = match (&args.replicas, args.topology) {
        (None, _) => (1, 1),
        (Some((part, n)), Kind::Micro) if part == "payments" => (*n, 1),
        (Some((part, n)), Kind::Monolith) if part == "monolith" || part.is_empty() => (1, *n),
        (Some((part, _)), Kind::Micro) if part.is_empty() => {
            anyhow::bail!("--replicas N with micro: say which service, `--replicas payments=N`")
        }
        (Some((part, _)), topology) => anyhow::bail!(
            "--replicas {part}=N does not go with `archlab up {topology}`: payments=N runs with micro, \
             monolith=N with monolith"
        ),
    };
    let options = Options {
        mode: args.mode,
        transport: args.transport,
        extsim: !args.no_extsim,
        extract: args.extract,
        payments_replicas,
        monolith_replicas,
    };
    let mut admin_env = Vec::new();
    if args.admin {
        for (_, var, addr) in crate::topology::free_admin_addrs().context("finding free loopback ports")? {
            admin_env.push((var.to_owned(), addr));
        }
    }
    let lookup = crate::topology::lookup_over(&admin_env);
    let mut topology = Topology::new(args.topology, options, lookup);
    topology.env.extend(admin_env.iter().cloned());
    let endpoint = std::env::var(OTLP_ENDPOINT_VAR).ok();
    if let Some(endpoint) = receiver_endpoint(endpoint.as_deref(), archlab_traces::DEFAULT_OTLP_ADDR).await {
        println!("archlab: a trace receiver answers on {endpoint}; the children export their spans there");
        topology.env.push((OTLP_ENDPOINT_VAR.to_owned(), endpoint));
    }
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => default_bin_dir()?,
    };
    supervisor::check_binaries(&bin_dir, &topology.binaries())?;

    let mut stop = StopRequests::install()?;
    let started = Instant::now();
    let mut children = Supervisor::start(&topology, &bin_dir, logs::use_color(), args.restart).await?;

    let ready = supervisor::wait_ready(&topology.processes, Duration::from_secs(args.ready_timeout));
    tokio::pin!(ready);
    let failure = loop {
        tokio::select! {
            ready = &mut ready => break ready.err(),
            exit = children.next_exit() => if exit.restart_in.is_none() {
                break Some(anyhow::anyhow!("{} exited during start-up ({}); its output is above", exit.name, exit.describe()));
            },
            signal = stop.next() => {
                tracing::info!("{signal} during start-up: stopping");
                children.stop(GRACE, hurry(&mut stop)).await;
                return Ok(());
            }
        }
    };
    if let Some(error) = failure {
        tracing::error!("{error:#}; stopping the others");
        children.stop(GRACE, hurry(&mut stop)).await;
        return Err(error);
    }

    print_block(&topology.summary(started.elapsed()));
    tracing::info!("restart policy {}: a process that dies never stops the others", args.restart);

    // Exits and restarts are announced by the supervisor as they happen; only a stop
    // request ends the run.
    let signal = stop.next().await;
    tracing::info!("{signal}: stopping {}", topology.kind);
    children.stop(GRACE, hurry(&mut stop)).await;
    Ok(())
}

/// `payments=N`, `monolith=N` or `N` (the monolith's; the part is then empty): which part,
/// and how many processes of it.
fn parse_replicas(value: &str) -> Result<(String, u8), String> {
    let (part, count) = value.split_once('=').unwrap_or(("", value));
    if !["payments", "monolith", ""].contains(&part) {
        return Err(format!(
            "only payments (micro) and the monolith can have replicas (not {part:?}): the other services \
             are also called service to service, and those clients do not balance"
        ));
    }
    match count.parse::<u8>() {
        Ok(n) if (1..=crate::topology::MAX_REPLICAS).contains(&n) => Ok((part.to_owned(), n)),
        _ => Err(format!("{count:?} replicas: give 1 to {}", crate::topology::MAX_REPLICAS)),
    }
}

/// The standard variable the children's OTLP exporter reads.
const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// The endpoint to give the children when the user set none (`current` unset or empty) and
/// something accepts a TCP connection on `addr` within a short timeout (`make traces`, or a
/// Jaeger). `None` leaves their environment as it is: no receiver, no export, no waiting.
pub async fn receiver_endpoint(current: Option<&str>, addr: &str) -> Option<String> {
    if current.is_some_and(|value| !value.is_empty()) {
        return None;
    }
    let connect = tokio::net::TcpStream::connect(addr);
    match tokio::time::timeout(Duration::from_millis(300), connect).await {
        Ok(Ok(_)) => Some(format!("http://{addr}")),
        _ => None,
    }
}

/// Completes on a second stop request, so an impatient Ctrl-C skips the grace period.
async fn hurry(stop: &mut StopRequests) {
    stop.next().await;
}

/// Where cargo put this `archlab`, and so, by default, the other binaries.
pub fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the archlab executable")?;
    exe.parent().map(PathBuf::from).context("the archlab executable has no parent directory")
}

/// Print `text` to stdout in one piece, framed by blank lines so it stands out in the logs.
fn print_block(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{text}").and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::receiver_endpoint;
    use crate::supervisor::Restart;
    use crate::{Cli, Command};
    use clap::Parser;

    fn restart_of(args: &[&str]) -> Restart {
        match Cli::try_parse_from(args).expect("a valid command line").command {
            Command::Up(up) => up.restart,
            other => panic!("not `up`: {other:?}"),
        }
    }

    #[test]
    fn replicas_are_payments_only_and_bounded() {
        let replicas = |value: &str| match Cli::try_parse_from(["archlab", "up", "micro", "--replicas", value]) {
            Ok(cli) => match cli.command {
                Command::Up(up) => Ok(up.replicas),
                other => panic!("not `up`: {other:?}"),
            },
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(replicas("payments=2"), Ok(Some(("payments".to_owned(), 2))));
        assert_eq!(replicas("monolith=3"), Ok(Some(("monolith".to_owned(), 3))));
        assert_eq!(replicas("2"), Ok(Some((String::new(), 2))));
        for (bad, says) in
            [("users=2", "only payments"), ("payments=4", "give 1 to 3"), ("payments", "\"payments\" replicas")]
        {
            let refused = replicas(bad).expect_err(bad);
            assert!(refused.contains(says), "{bad}: {refused}");
        }
    }

    #[test]
    fn restart_is_off_unless_asked_for() {
        assert_eq!(restart_of(&["archlab", "up", "micro", "--restart", "on-failure"]), Restart::OnFailure);
        assert_eq!(restart_of(&["archlab", "up", "micro", "--restart", "off"]), Restart::Off);
        if std::env::var_os("ARCHLAB_RESTART").is_none() {
            assert_eq!(restart_of(&["archlab", "up", "micro"]), Restart::Off);
        }
        assert!(Cli::try_parse_from(["archlab", "up", "micro", "--restart", "always"]).is_err());
    }

    #[tokio::test]
    async fn the_children_are_pointed_at_a_receiver_only_when_one_answers_and_none_is_set() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        assert_eq!(receiver_endpoint(None, &addr).await, Some(format!("http://{addr}")));
        assert_eq!(receiver_endpoint(Some(""), &addr).await, Some(format!("http://{addr}")), "empty counts as unset");
        assert_eq!(receiver_endpoint(Some("http://127.0.0.1:9"), &addr).await, None, "the user's choice stands");
        drop(listener);
        assert_eq!(receiver_endpoint(None, &addr).await, None, "nothing answers: nothing is set");
        Ok(())
    }
}
