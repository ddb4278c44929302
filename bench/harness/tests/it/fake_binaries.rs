//! Shell scripts standing in for the real binaries (so no database is needed), to drive the
//! paths real binaries rarely take: a child that dies during start-up, one that never gets
//! ready, one that ignores SIGTERM. The harness names the culprit, and stops every other
//! child before it exits.

use crate::common;

use common::{Collected, Lines};
use nix::sys::signal::Signal;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Write an executable `/bin/sh` script called `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writing a fake binary");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("making it executable");
}

/// A process that records its pid in `pidfile`, says `sleeping`, then waits to be told to
/// stop. Once `sleeping` is out, the pid file is complete.
fn sleeper(pidfile: &Path) -> String {
    let path = pidfile.display();
    format!("echo $$ > '{path}.tmp' && mv '{path}.tmp' '{path}'\necho sleeping\nexec sleep 600")
}

/// Whether `pid` still names a process.
fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Held while a script is open for writing and while spawning: a process forked by a
/// parallel test would otherwise inherit the write descriptor for a moment, and exec'ing
/// the script then fails with "text file busy".
static FORKING: Mutex<()> = Mutex::new(());

/// A running `archlab up monolith` over fake binaries.
struct Fake {
    child: Child,
    lines: Lines,
    stderr: Collected,
    /// The addresses archlab polls, held (listening, never answering) for the whole test so
    /// that no other process can take them and answer for the fakes.
    _ports: [TcpListener; 2],
}

impl Fake {
    /// Write `scripts` into `dir` as the fake `extsim` and `monolith` and start
    /// `archlab up monolith` over them.
    fn spawn(dir: &Path, scripts: [(&str, &str); 2], extra: &[&str]) -> Self {
        let ports = [(); 2].map(|()| TcpListener::bind("127.0.0.1:0").expect("binding a loopback port"));
        let [extsim, monolith] = ports.each_ref().map(|l| l.local_addr().expect("a bound address").to_string());
        let forking = FORKING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, body) in scripts {
            script(dir, name, body);
        }
        let mut child = Command::new(common::archlab())
            .args(["up", "monolith", "--bin-dir"])
            .arg(dir)
            .args(extra)
            .env("EXTSIM_ADDR", extsim)
            .env("MONOLITH_ADDR", monolith)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting archlab");
        drop(forking);
        let lines = Lines::read(child.stdout.take().expect("piped stdout"));
        let stderr = Collected::read(child.stderr.take().expect("piped stderr"));
        Self { child, lines, stderr, _ports: ports }
    }

    /// Wait for archlab to exit; its status, all of its stdout and its stderr.
    fn finish(self) -> (ExitStatus, Lines, String) {
        let Self { child, mut lines, stderr, _ports } = self;
        let status = common::wait_with_timeout(child, Duration::from_secs(30), "waiting for archlab to exit");
        lines.rest(Duration::from_secs(5));
        (status, lines, stderr.wait(Duration::from_secs(5)))
    }
}

fn read_pid(pidfile: &Path) -> i32 {
    std::fs::read_to_string(pidfile).expect("the sleeper wrote its pid").trim().parse().expect("a pid")
}

/// Run `archlab up monolith` over `scripts` to the end.
fn run(dir: &Path, scripts: [(&str, &str); 2], extra: &[&str]) -> (ExitStatus, Lines, String) {
    Fake::spawn(dir, scripts, extra).finish()
}

#[test]
fn a_child_dying_during_start_up_stops_the_rest_and_is_named() {
    let dir = common::temp_dir("dies");
    let pidfile = dir.join("extsim.pid");
    // It dies only once extsim is up, so there is something to stop.
    let wait_for_extsim = format!("while [ ! -s '{}' ]; do sleep 0.01; done", pidfile.display());
    let monolith = format!("{wait_for_extsim}\necho 'cannot reach the database' >&2\nexit 3");

    let (status, lines, stderr) = run(&dir, [("extsim", &sleeper(&pidfile)), ("monolith", &monolith)], &[]);

    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}\nstdout:\n{}", lines.dump());
    assert!(stderr.contains("monolith exited during start-up (exit status: 3)"), "{stderr}");
    assert!(
        lines.seen.iter().any(|l| l == "monolith | cannot reach the database"),
        "the child's stderr, prefixed:\n{}",
        lines.dump()
    );
    assert!(!alive(read_pid(&pidfile)), "extsim was stopped before archlab exited");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_child_never_ready_times_out_naming_it() {
    let dir = common::temp_dir("never-ready");
    let pidfile = dir.join("extsim.pid");
    let monolith_pidfile = dir.join("monolith.pid");
    // Neither serves, so neither ever answers its readiness URL.
    let scripts = [("extsim", &*sleeper(&pidfile)), ("monolith", &*sleeper(&monolith_pidfile))];

    let (status, lines, stderr) = run(&dir, scripts, &["--ready-timeout", "1"]);

    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}\nstdout:\n{}", lines.dump());
    assert!(stderr.contains("not ready after 1.0 s: extsim (http://"), "{stderr}");
    assert!(stderr.contains("/health: "), "the last answer is shown: {stderr}");
    assert!(stderr.contains("; monolith (http://"), "{stderr}");
    assert!(!lines.seen.iter().any(|l| l.starts_with("archlab: ")), "no ready summary:\n{}", lines.dump());
    assert!(!alive(read_pid(&pidfile)) && !alive(read_pid(&monolith_pidfile)), "both were stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_stop_request_kills_a_child_that_ignores_sigterm() {
    let dir = common::temp_dir("stubborn");
    let pidfile = dir.join("extsim.pid");
    // Traps SIGTERM, says so, and carries on; only SIGKILL ends it.
    let stubborn = format!(
        "trap 'echo got TERM' TERM\necho $$ > '{}'\necho sleeping\nwhile :; do sleep 1 & wait $!; done",
        pidfile.display()
    );
    let monolith_pidfile = dir.join("monolith.pid");
    let mut fake = Fake::spawn(&dir, [("extsim", &stubborn), ("monolith", &sleeper(&monolith_pidfile))], &[]);
    let (pid, lines) = (fake.child.id(), &mut fake.lines);

    let mut waiting = vec!["extsim   | sleeping", "monolith | sleeping"];
    let started = lines.wait_for(Duration::from_secs(10), |l| {
        waiting.retain(|w| *w != l);
        waiting.is_empty()
    });
    assert!(started.is_ok(), "both fakes started: {started:?}\n{}", lines.dump());
    common::signal(pid, Signal::SIGTERM);
    let ignored = lines.wait_for(Duration::from_secs(10), |l| l == "extsim   | got TERM");
    assert!(ignored.is_ok(), "extsim got the SIGTERM: {ignored:?}\n{}", lines.dump());

    let asked_again = Instant::now();
    common::signal(pid, Signal::SIGTERM);
    let (status, lines, stderr) = fake.finish();

    assert_eq!(status.code(), Some(0), "a requested stop; stderr:\n{stderr}\nstdout:\n{}", lines.dump());
    assert!(
        asked_again.elapsed() < archlab_harness::supervisor::GRACE / 2,
        "the second request cut the {:?} grace period short; took {:?}",
        archlab_harness::supervisor::GRACE,
        asked_again.elapsed()
    );
    assert!(!alive(read_pid(&pidfile)), "extsim was killed");
    assert!(!alive(read_pid(&monolith_pidfile)), "monolith was stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn under_on_failure_a_child_failing_during_start_up_is_retried_until_its_limit() {
    let dir = common::temp_dir("retried");
    let pidfile = dir.join("extsim.pid");
    let monolith = "echo 'cannot reach the database' >&2\nexit 3";

    let (status, lines, stderr) =
        run(&dir, [("extsim", &sleeper(&pidfile)), ("monolith", monolith)], &["--restart", "on-failure"]);

    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}\nstdout:\n{}", lines.dump());
    let restarted = lines.seen.iter().filter(|l| l.starts_with("archlab | restarted monolith pid=")).count();
    assert_eq!(restarted, archlab_harness::supervisor::RESTART_LIMIT as usize, "{}", lines.dump());
    assert!(
        lines.seen.iter().any(|l| l.starts_with("archlab | monolith exited (exit status: 3); left down: 6 restarts")),
        "{}",
        lines.dump()
    );
    assert!(stderr.contains("monolith exited during start-up (exit status: 3)"), "only once left down: {stderr}");
    assert!(!alive(read_pid(&pidfile)), "extsim was stopped before archlab exited");
    let _ = std::fs::remove_dir_all(&dir);
}
