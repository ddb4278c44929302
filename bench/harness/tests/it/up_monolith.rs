//! `archlab up monolith` end to end: the real `extsim` and `monolith` binaries on free ports
//! against a fresh database, then SIGTERM, then nothing left listening.
//!
//! Needs PostgreSQL at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432`), like
//! every API test in the workspace.

use crate::common;

use common::{Collected, Lines};
use nix::sys::signal::Signal;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// First start creates and migrates a database; a cold machine may be slow.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// The cargo target dir `archlab` was built into, with `extsim` and `monolith` in it,
/// building them first if they are missing.
fn bin_dir() -> PathBuf {
    let dir = common::archlab().parent().expect("archlab lives in a directory").to_path_buf();
    let missing = |dir: &Path| ["extsim", "monolith"].iter().any(|bin| !dir.join(bin).is_file());
    if missing(&dir) {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", "archlab-monolith", "-p", "archlab-extsim"])
            .current_dir(workspace)
            .status()
            .expect("running cargo build for the monolith and extsim binaries");
        assert!(status.success(), "`cargo build -p archlab-monolith -p archlab-extsim` failed: {status}");
        assert!(!missing(&dir), "built, yet extsim or monolith is still missing from {}", dir.display());
    }
    dir
}

/// A running `archlab up monolith` on free ports, past its ready summary.
struct Up {
    child: std::process::Child,
    pid: u32,
    lines: Lines,
    stderr: Collected,
    extsim: SocketAddr,
    monolith: SocketAddr,
}

impl Up {
    /// `archlab up monolith <extra>`.
    fn start(extra: &[&str]) -> Self {
        let bin_dir = bin_dir();
        let [extsim, monolith] = common::free_addrs::<2>();
        let database = format!("archlab_test_harness_{:016x}", rand::random::<u64>());
        let mut child = Command::new(common::archlab())
            .args(["up", "monolith", "--bin-dir"])
            .arg(&bin_dir)
            .args(extra)
            .env_remove("MONOLITH_ADMIN_ADDR")
            .env("EXTSIM_ADDR", extsim.to_string())
            .env("MONOLITH_ADDR", monolith.to_string())
            .env("MONOLITH_DATABASE", &database)
            .env_remove("EXTSIM_URL")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting archlab");
        let pid = child.id();
        let mut lines = Lines::read(child.stdout.take().expect("piped stdout"));
        let stderr = Collected::read(child.stderr.take().expect("piped stderr"));
        if let Err(why) = lines.wait_for(READY_WITHIN, |line| line.starts_with("archlab: monolith ready")) {
            // Do not leave the topology running behind a failed test.
            common::signal(pid, Signal::SIGTERM);
            let status = common::wait_with_timeout(child, Duration::from_secs(30), "stopping after a failed start");
            let stderr = stderr.wait(Duration::from_secs(5));
            panic!("no ready summary ({why}); archlab {status}; stdout:\n{}\nstderr:\n{stderr}", lines.dump());
        }
        Self { child, pid, lines, stderr, extsim, monolith }
    }

    /// Wait for archlab to exit; its status and its stderr.
    fn exit(mut self, context: &str) -> (std::process::ExitStatus, Lines, String) {
        let status = common::wait_with_timeout(self.child, Duration::from_secs(30), context);
        self.lines.rest(Duration::from_secs(5));
        (status, self.lines, self.stderr.wait(Duration::from_secs(5)))
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

#[test]
fn up_monolith_serves_until_sigterm_then_leaves_nothing_listening() {
    let mut up = Up::start(&["--admin"]);
    let (extsim, monolith) = (up.extsim, up.monolith);
    let monolith_url = format!("http://{monolith}");
    let summary_rows = up.lines.wait_for(Duration::from_secs(5), |line| line.contains("Ctrl-C stops everything"));
    let lines = &up.lines;
    assert!(summary_rows.is_ok(), "the summary block ends; stdout:\n{}", lines.dump());
    assert!(lines.seen.iter().any(|l| l.contains("public API") && l.ends_with(&monolith_url)), "{}", lines.dump());
    assert!(
        lines.seen.iter().any(|l| l.starts_with("monolith | ")),
        "monolith's output is prefixed:\n{}",
        lines.dump()
    );
    assert!(lines.seen.iter().any(|l| l.starts_with("extsim   | ")), "extsim's output is prefixed:\n{}", lines.dump());

    let health = tokio::runtime::Runtime::new()
        .expect("a runtime for one request")
        .block_on(async { reqwest::get(format!("{monolith_url}/health")).await.map(|r| r.status()) });
    assert_eq!(health.ok(), Some(reqwest::StatusCode::OK), "GET /health on the monolith");

    // `--admin`: the summary names the monolith's fault admin endpoint, and it answers there
    // (not on the public port) with the fault points the monolith reaches.
    let admin_url = lines
        .seen
        .iter()
        .find_map(|l| {
            l.trim_start().strip_prefix("fault admin").and_then(|rest| rest.trim().strip_prefix("monolith  "))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no admin endpoint in the summary:\n{}", lines.dump()));
    assert!(admin_url.starts_with("http://127.0.0.1:") && admin_url != monolith_url, "{admin_url}");
    let faults = tokio::runtime::Runtime::new().expect("a runtime for one request").block_on(async {
        let response = reqwest::get(format!("{admin_url}/admin/faults")).await?;
        Ok::<_, reqwest::Error>((response.status(), response.text().await?))
    });
    let (status, body) = faults.expect("GET /admin/faults on the printed address");
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(body.contains("users.create_profile"), "{body}");

    common::signal(up.pid, Signal::SIGTERM);
    let (status, lines, stderr) = up.exit("after SIGTERM");
    assert_eq!(status.code(), Some(0), "a requested stop exits 0; stdout:\n{}\nstderr:\n{stderr}", lines.dump());
    assert!(!accepts(monolith), "the monolith's port {monolith} still accepts connections");
    assert!(!accepts(extsim), "extsim's port {extsim} still accepts connections");
}

#[test]
fn a_child_dying_after_ready_leaves_the_rest_running_until_asked_to_stop() {
    let mut up = Up::start(&[]);
    let summary_rows = up.lines.wait_for(Duration::from_secs(5), |line| line.contains("Ctrl-C stops everything"));
    assert!(summary_rows.is_ok(), "the summary block ends; stdout:\n{}", up.lines.dump());
    assert!(
        up.lines.seen.iter().any(|l| l.trim_start().starts_with("fault admin endpoints   none")),
        "without --admin the summary says there is no admin endpoint:\n{}",
        up.lines.dump()
    );
    let extsim = up.extsim;
    // The harness prints each child's pid as it starts it: `archlab | started monolith pid=1234`.
    let monolith_pid: u32 = up
        .lines
        .seen
        .iter()
        .find_map(|line| line.split_once("started monolith pid=").map(|(_, pid)| pid.trim().parse()))
        .expect("archlab logged the monolith's pid")
        .expect("the pid is a number");

    common::signal(monolith_pid, Signal::SIGKILL);
    // The default policy is `off`: the exit is announced and the monolith stays down.
    let announced = up.lines.wait_for(Duration::from_secs(10), |line| line.starts_with("archlab | monolith exited"));
    let line = announced.unwrap_or_else(|why| panic!("no exit line ({why}); stdout:\n{}", up.lines.dump()));
    assert_eq!(line, "archlab | monolith exited (signal: 9 (SIGKILL)); left down: restart policy off");
    assert!(accepts(extsim), "extsim was taken down with the monolith: {extsim} refuses connections");
    assert!(!accepts(up.monolith), "the monolith was started again under policy off");

    // Had archlab given up on its own it would exit 1; a requested stop exits 0.
    common::signal(up.pid, Signal::SIGTERM);
    let (status, lines, stderr) = up.exit("after the monolith was killed, then SIGTERM");
    assert_eq!(status.code(), Some(0), "ran on until asked to stop; stdout:\n{}\nstderr:\n{stderr}", lines.dump());
    assert!(!lines.seen.iter().any(|l| l.contains("restarted monolith")), "{}", lines.dump());
    assert!(!accepts(extsim), "extsim was stopped at the end, yet {extsim} still accepts connections");
}
