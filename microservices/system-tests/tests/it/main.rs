//! The integration tests of this crate, in one test binary: each file is a module, so the
//! crate and its dependencies are linked once rather than once per file. nextest still runs
//! every test in a process of its own; `cargo test -p <crate> --test it <module>::` runs one
//! file's tests.

mod conformance;
mod contract;
mod events;
mod faults;
mod faults_process;
mod hybrid;
mod in_doubt;
mod internal_auth;
mod limits;
mod replicas;
mod saga;
mod secrets;
mod traces;
