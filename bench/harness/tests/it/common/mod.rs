//! Helpers the harness's end-to-end tests share.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;

/// The `archlab` binary cargo built for these tests.
pub fn archlab() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_archlab"))
}

/// Free loopback addresses: bound on port 0 all at once (so they differ), then released.
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> =
        (0..N).map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free loopback port")).collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound listener has an address"))
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archlab-harness-{label}-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// The harness's stdout, line by line, as it arrives; every line is also kept for failure messages.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl Lines {
    /// Start reading `stdout` on a thread.
    pub fn read(stdout: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { rx, seen: Vec::new() }
    }

    /// Wait up to `timeout` in all for a line matching `want`; `Err` says why not (timeout or
    /// end of output).
    pub fn wait_for(&mut self, timeout: Duration, mut want: impl FnMut(&str) -> bool) -> Result<String, String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(format!("nothing matched within {timeout:?}")),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err("the output ended".to_owned()),
            }
        }
    }

    /// Collect the rest of the output, until the writer closes it or `timeout` passes.
    pub fn rest(&mut self, timeout: Duration) {
        let _ = self.wait_for(timeout, |_| false);
    }

    /// Everything seen, for an assertion message.
    pub fn dump(&self) -> String {
        self.seen.join("\n")
    }
}

/// A stream read to its end on a thread, so the child never blocks on a full pipe.
pub struct Collected(mpsc::Receiver<String>);

impl Collected {
    /// Start reading `stream`.
    pub fn read(mut stream: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        });
        Self(rx)
    }

    /// Everything the stream carried, once its writer has closed it (up to `timeout`).
    pub fn wait(self, timeout: Duration) -> String {
        self.0.recv_timeout(timeout).unwrap_or_else(|_| format!("(still open after {timeout:?})"))
    }
}

/// Wait for `child` to exit within `timeout`; on timeout kill it and panic with `context`.
pub fn wait_with_timeout(mut child: Child, timeout: Duration, context: &str) -> std::process::ExitStatus {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(timeout) {
        Ok(status) => status.expect("waiting on archlab"),
        Err(_) => {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("archlab did not exit within {timeout:?}: {context}");
        }
    }
}

/// Send `signal` to process `pid`.
pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pids fit in i32"));
    nix::sys::signal::kill(pid, signal).expect("signalling archlab");
}

/// The cargo target dir `archlab` was built into, holding `names`, building the missing ones.
pub fn bin_dir(names: &[&str]) -> PathBuf {
    let dir = archlab().parent().expect("archlab lives in a directory").to_path_buf();
    let missing =
        |dir: &Path| names.iter().filter(|bin| !dir.join(bin).is_file()).map(|b| b.to_string()).collect::<Vec<_>>();
    let absent = missing(&dir);
    if !absent.is_empty() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut build = Command::new(cargo);
        build.arg("build").current_dir(workspace);
        for bin in &absent {
            // Package names follow the binaries': `auth-service` → `archlab-auth-service`.
            build.args(["-p", &format!("archlab-{bin}")]);
        }
        let status = build.status().expect("running cargo build for the missing binaries");
        assert!(status.success(), "building {absent:?} failed: {status}");
        assert!(missing(&dir).is_empty(), "built, yet {:?} is still missing from {}", missing(&dir), dir.display());
    }
    dir
}
