//! The integration tests of this crate, in one test binary: each file is a module, so the
//! crate and its dependencies are linked once rather than once per file. nextest still runs
//! every test in a process of its own; `cargo test -p <crate> --test it <module>::` runs one
//! file's tests.

mod atomicity;
mod common;
mod conformance;
mod contract;
mod faults;
mod faults_process;
mod in_doubt;
mod limits;
mod sessions;
mod traces;
