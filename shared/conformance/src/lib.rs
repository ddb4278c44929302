//! A black-box conformance suite for archlab's public HTTP API (docs/api.md).
//!
//! The monolith and the microservices gateway promise the very same API, so the very same
//! cases run against both: the suite only needs a base URL (plus extsim's, to count charges,
//! and a way to deliver pending asynchronous work). A deployment describes itself by
//! implementing [`Target`]; each case in [`cases`] is an `async fn(&impl Target)` that panics,
//! naming the request and the answer, when the deployment strays from the contract.
//!
//! # Usage
//!
//! In another crate's integration tests (e.g. `monolith/tests/it/conformance.rs`), write an
//! `async fn` that starts a deployment and returns a [`Target`], then let the macro generate
//! one `#[test]` per case:
//!
//! ```no_run
//! use archlab_conformance::Target;
//!
//! struct Running { base: String, extsim: String }
//!
//! impl Target for Running {
//!     fn base_url(&self) -> &str { &self.base }
//!     fn extsim_url(&self) -> &str { &self.extsim }
//!     async fn settle(&self) { /* run the outbox worker until nothing is pending */ }
//! }
//!
//! async fn setup() -> Running {
//!     // Start the app on port 0 against a fresh database, and an extsim.
//!     Running { base: "http://127.0.0.1:8080".into(), extsim: "http://127.0.0.1:8090".into() }
//! }
//!
//! archlab_conformance::conformance_tests!(setup);
//! # fn main() {}
//! ```
//!
//! Each generated test calls `setup()` and then one case, on a multi-threaded tokio runtime
//! with two workers. Attributes may follow the setup path and go on every test, e.g.
//! `conformance_tests!(setup, #[ignore = "needs the gateway running"]);`. Cases never sleep:
//! effects that are delivered asynchronously (the welcome and receipt notifications) are
//! awaited through [`Target::settle`]. Cases sign up their own users with unique e-mails, so
//! they also pass against one shared, long-running deployment.
//!
//! # Layout
//!
//! - [`cases`]: every case, one file per section of the API (`cases/signup.rs`,
//!   `cases/payments.rs`, …), and in `cases/mod.rs` the [`conformance_tests!`] macro listing
//!   them all (a unit test checks the two agree).
//! - [`api`]: [`Api`], a reqwest wrapper that speaks both well-formed and malformed HTTP and
//!   returns a [`Resp`] with assertion helpers (`expect_json`, `expect_error`).
//! - [`shape`]: exact-shape checks for profiles, payments and notifications.
//! - [`raw`]: requests written byte for byte on TCP ([`raw::send_raw`]), for the spellings
//!   reqwest would normalise, and the table of non-canonical path spellings
//!   ([`raw::SPELLINGS`]) over every route docs/api.md lists.
//! - [`contract`]: the OpenAPI document (docs/openapi.json) a deployment serves, and
//!   schemathesis fuzzing the deployment against it; each build's tests call it once
//!   (`monolith/tests/it/contract.rs`, `microservices/system-tests/tests/it/contract.rs`).
//! - [`faults`]: the fault points' admin endpoint (unknown points, malformed requests, a
//!   failing share, latency), for both builds, outside the macro like [`limits`].
//! - [`limits`]: the signup and login limits, also for both builds but outside the macro:
//!   each check spends a budget on purpose and needs a deployment of its own.
//! - [`in_doubt`]: purchases cut off mid-flight and charges whose answer is lost end settled,
//!   also for both builds outside the macro: each turns the provider's knobs and reads the
//!   payments database of a deployment of its own.

pub mod api;
pub mod cases;
pub mod contract;
pub mod faults;
pub mod in_doubt;
pub mod limits;
pub mod raw;
pub mod shape;

pub use api::{Api, Resp, User, unique_email, unique_key};

/// Re-exported so [`conformance_tests!`] works in crates that do not depend on tokio.
#[doc(hidden)]
pub use tokio;

/// What the suite needs from a running deployment.
pub trait Target: Send + Sync {
    /// Base URL of the public API, e.g. "http://127.0.0.1:41234" (no trailing slash).
    fn base_url(&self) -> &str;
    /// Base URL of the extsim third-party simulator this deployment charges and emails through.
    fn extsim_url(&self) -> &str;
    /// Deliver everything that is pending now (outboxes, queues), so asynchronous effects such as
    /// the welcome notification are visible when it returns. No sleeping: the deployment drives its workers.
    fn settle(&self) -> impl std::future::Future<Output = ()> + Send;
}

/// Runs one generated test on a fresh two-worker runtime (what
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` does). The macro calls this
/// instead of the attribute because tokio's `crate = "..."` option cannot name `$crate`.
#[doc(hidden)]
pub fn __run<F: std::future::Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the tokio runtime")
        .block_on(test);
}
