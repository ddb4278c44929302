//! The integration tests of this crate, in one test binary: each file is a module, so the
//! crate and its dependencies are linked once rather than once per file. nextest still runs
//! every test in a process of its own; `cargo test -p <crate> --test it <module>::` runs one
//! file's tests.

mod broker;
mod grpc;
mod grpc_errors;
mod http;
mod identity;
mod resilience;
mod service_credential;
