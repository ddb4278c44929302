//! A binary of this workspace run as a real child process, watched through `/proc`: for the
//! tests that need what only a process shows (its exit signal, CPU time, resident memory).
//!
//! The binaries must be built first (`cargo build --workspace --bins`, which `make test`
//! does); [`bin`] finds them next to the test executable's `deps/` directory.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The path of workspace binary `name` in the cargo target directory these tests run from.
///
/// # Panics
/// When it is not built, saying how to build it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("a test runs from target/<profile>/deps");
    let path = dir.join(name);
    assert!(path.is_file(), "{} is not built: run `cargo build --workspace --bins` first", path.display());
    path
}

/// Free loopback addresses: bound on port 0 all at once (so they differ), then released
/// for a child to bind.
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> =
        (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free loopback port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound listener has an address"))
}

/// A running child process; killed (SIGKILL) and reaped when dropped.
pub struct Child {
    child: std::process::Child,
    /// Its process id.
    pub pid: u32,
    /// Where its stderr goes, shown by [`Child::stderr`].
    log: PathBuf,
}

impl Child {
    /// Start workspace binary `name` with `env` on top of this process's environment, its
    /// stdout discarded and its stderr kept in a file.
    pub fn spawn(name: &str, env: &[(&str, String)]) -> Child {
        no_core_files();
        let log = std::env::temp_dir().join(format!("archlab-test-{name}-{}.log", uuid::Uuid::new_v4().simple()));
        let stderr = File::create(&log).expect("creating the child's log file");
        let child = Command::new(bin(name))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Child { pid: child.id(), child, log }
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `addr` accepts connections (it has bound its listeners), or panic after
    /// `within` with its stderr; panics at once if it has exited.
    pub async fn wait_listening(&mut self, addr: SocketAddr, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the child") {
                panic!("the child exited ({status}) before listening on {addr}; stderr:\n{}", self.stderr());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on {addr} after {within:?} (a binary older than this test? \
                 `cargo build --workspace --bins`); stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its exit status once it has exited, or `None` if it still runs after `within`.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the child") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// CPU time it has used so far, user and system, all threads (`/proc/<pid>/stat`).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).expect("reading /proc/<pid>/stat");
        // The command name may hold spaces; the fields after it are space-separated, the
        // first of them (field 3, state) at index 0: utime is field 14, stime field 15.
        let after_name = stat.rsplit_once(')').expect("a stat line names its command in parentheses").1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        let per_second =
            nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().filter(|t| *t > 0).unwrap_or(100)
                as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / per_second)
    }

    /// Its resident memory in bytes (`VmRSS` in `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("reading /proc/<pid>/status");
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("a VmRSS line in kB");
        kib * 1024
    }
}

/// No core files from this process's children (they inherit the limit): a child that
/// aborts on purpose must not leave one in the crate's folder. Lowers only the soft limit.
fn no_core_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_CORE) {
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, hard);
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
