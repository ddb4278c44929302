//! The integration tests of this crate, in one test binary: each file is a module, so the
//! crate and its dependencies are linked once rather than once per file. nextest still runs
//! every test in a process of its own; `cargo test -p <crate> --test it <module>::` runs one
//! file's tests.

mod audit;
mod chaos;
mod common;
mod compare_smoke;
mod cost_postgres;
mod crash_loop;
mod fake_binaries;
mod load;
mod migrate;
mod missing_binary;
mod restart_micro;
mod topology;
mod up_monolith;
