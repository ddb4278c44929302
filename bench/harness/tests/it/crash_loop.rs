//! A child that keeps failing, under `Restart::OnFailure`: it is started again after a
//! growing back-off and left down after the limit, while the other child runs on untouched.
//! Then a restart asked for (a deploy's): the child that exits cleanly on SIGTERM, which the
//! policy alone would leave down, is started again at once.
//!
//! Shell scripts stand in for the binaries (as in fake_binaries.rs), started in-process by
//! the [`Supervisor`]. One test in this file on purpose: the supervisor forks from this
//! process at any time, and a fork while another test holds a script open for writing would
//! make exec'ing that script fail with "text file busy".

use crate::common;

use archlab_harness::supervisor::{BACKOFF_CAP, BACKOFF_FIRST, GRACE, RESTART_LIMIT, Restart, Supervisor};
use archlab_harness::{Kind, Options, Topology};
use nix::sys::signal::Signal;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

/// Write an executable `/bin/sh` script called `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing a fake binary");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("making it executable");
}

/// Whether `pid` still names a process.
fn alive(pid: u32) -> bool {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pids fit in i32"));
    nix::sys::signal::kill(pid, None).is_ok()
}

#[tokio::test]
async fn a_child_that_keeps_failing_is_restarted_with_growing_back_off_then_left_down() {
    let dir = common::temp_dir("crash-loop");
    let starts = dir.join("starts");
    // Exits 0 on SIGTERM, as the real binaries do.
    script(&dir, "extsim", "trap 'kill $! 2>/dev/null; exit 0' TERM\nsleep 600 &\nwait");
    // Each run notes when it started (ns since the epoch), complains and fails.
    script(
        &dir,
        "monolith",
        &format!("date +%s%N >> '{}'\necho 'cannot reach the database' >&2\nexit 3", starts.display()),
    );
    // Only names and the bin dir matter here: nothing is polled for readiness.
    let topology = Topology::new(Kind::Monolith, Options::default(), |_| None);
    let mut children = Supervisor::start(&topology, &dir, false, Restart::OnFailure).await.expect("both spawned");
    let extsim = children.pid("extsim").expect("extsim runs");

    let mut delays = Vec::new();
    loop {
        let exit = tokio::time::timeout(Duration::from_secs(10), children.next_exit()).await.expect("an exit");
        assert_eq!((exit.name, exit.describe()), ("monolith", "exit status: 3".to_owned()));
        match exit.restart_in {
            Some(delay) => delays.push(delay),
            None => break,
        }
    }

    assert_eq!(delays.len(), RESTART_LIMIT as usize, "restarted up to the limit, then left down: {delays:?}");
    assert_eq!((delays.first(), delays.last()), (Some(&BACKOFF_FIRST), Some(&BACKOFF_CAP)), "{delays:?}");
    assert!(delays.windows(2).all(|w| w[1] >= w[0]) && delays[1] > delays[0], "growing: {delays:?}");
    let runs: Vec<u128> = std::fs::read_to_string(&starts)
        .expect("the fake noted its starts")
        .lines()
        .map(|line| line.parse().expect("nanoseconds"))
        .collect();
    assert_eq!(runs.len(), delays.len() + 1, "the first start and one per restart: {runs:?}");
    for (k, (pair, delay)) in runs.windows(2).zip(&delays).enumerate() {
        let gap = Duration::from_nanos(u64::try_from(pair[1] - pair[0]).expect("a gap of seconds"));
        assert!(
            gap >= *delay,
            "restart {} came {gap:?} after the previous start, before its {delay:?} back-off",
            k + 1
        );
    }

    assert_eq!(children.restarts(), [("extsim", 0), ("monolith", RESTART_LIMIT)]);
    assert_eq!(children.pid("monolith"), None, "left down");
    assert_eq!(children.pid("extsim"), Some(extsim), "extsim was never touched");
    assert!(alive(extsim), "extsim runs on");
    let down = children.signal("monolith", Signal::SIGKILL).expect_err("nothing to signal");
    assert_eq!(down.to_string(), "monolith is not running");
    let down = children.restart("monolith").expect_err("nothing to restart");
    assert_eq!(down.to_string(), "monolith is not running");

    // A deploy's restart: SIGTERM, a clean exit, and a new start at once, counted.
    assert_eq!(children.restart("extsim").expect("extsim runs"), extsim);
    let exit = tokio::time::timeout(Duration::from_secs(10), children.next_exit()).await.expect("its exit");
    assert_eq!(
        (exit.name, exit.describe(), exit.restart_in),
        ("extsim", "exit status: 0".to_owned(), Some(Duration::ZERO))
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        match children.pid("extsim") {
            Some(pid) => break pid,
            None if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
            None => panic!("extsim was not started again"),
        }
    };
    assert_ne!(again, extsim, "a new process");
    assert!(!alive(extsim), "the old one exited");
    assert_eq!(children.restarts(), [("extsim", 1), ("monolith", RESTART_LIMIT)]);
    let extsim = again;
    let unknown = children.signal("gateway", Signal::SIGKILL).expect_err("no such child");
    assert_eq!(unknown.to_string(), "no child named gateway (the children: extsim, monolith)");

    children.stop(GRACE, std::future::pending()).await;
    assert!(!alive(extsim), "stopped at the end");
    let _ = std::fs::remove_dir_all(&dir);
}
