//! A bin dir without the binaries: a clear error before anything starts.

use crate::common;

use std::process::Command;

fn up_in_empty_dir(extra: &[&str]) -> (std::process::ExitStatus, String) {
    let dir = common::temp_dir("empty");
    let output = Command::new(common::archlab())
        .args(["up", "monolith", "--bin-dir"])
        .arg(&dir)
        .args(extra)
        .output()
        .expect("running archlab");
    let _ = std::fs::remove_dir(&dir);
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_missing_binary_is_named_with_how_to_build_it() {
    let (status, stderr) = up_in_empty_dir(&[]);
    assert!(!status.success(), "exit status {status}, stderr:\n{stderr}");
    assert!(stderr.contains("`extsim`, `monolith`"), "both missing binaries named:\n{stderr}");
    assert!(stderr.contains("cargo build --release") && stderr.contains("make build"), "{stderr}");
}

#[test]
fn no_extsim_does_not_ask_for_the_extsim_binary() {
    let (status, stderr) = up_in_empty_dir(&["--no-extsim"]);
    assert!(!status.success(), "exit status {status}, stderr:\n{stderr}");
    assert!(stderr.contains("missing binary `monolith`"), "{stderr}");
    assert!(!stderr.contains("extsim`"), "extsim is not needed with --no-extsim:\n{stderr}");
}
