//! The small vocabulary every archlab crate shares, in both builds.
//!
//! Start with [`Error`]: one error type crosses every port, in-process or remote, so that a
//! monolith call and a gRPC or HTTP call fail in the same words and map to the same public
//! answer. Then the validated values ([`Email`], [`Money`]), the HTTP edge ([`http`]), the
//! database plumbing ([`db`]), the transactional outbox ([`outbox`]), the one back-off policy
//! every retry loop uses ([`Backoff`]) and the in-module fault points ([`Faults`]) that tests
//! and workshops use to break things on purpose.
//!
//! # Layout
//! - `error`: [`Error`], its kinds, and how it becomes an HTTP answer.
//! - `codes`: the generic error codes, and [`error_codes!`] that every domain declares its own with.
//! - `wire`: the wire names of kinds and statuses, read from their serde derive.
//! - `values`: validated newtypes parsed once at the edge.
//! - `http`: extractors and fallbacks that give every bad request the same JSON error shape
//!   (`strict_json` reads a body's objects as objects only).
//! - `db`: create-if-missing and connect, per-domain migrations.
//! - `outbox`: the table every domain's events leave by, enqueue in the caller's transaction,
//!   claim with `FOR UPDATE SKIP LOCKED`.
//! - `backoff`: exponential back-off, for the outbox and the broker consumer alike.
//! - `faults`: the registry of named fault points, what each can be set to do (fail, wait,
//!   burn CPU, leak, abort), and their loopback-only admin endpoint.
//! - `health`: `/health`, `/ready` and `/metrics`.
//! - `metrics`: counters of the calls a process makes to others, shown by `/metrics`.
//! - `openapi`: how a route declares the errors it answers in the OpenAPI document.
//! - `config`: the configuration groups both builds read, with the same variable names.
//! - `processes`: every process's name, variables, default addresses and database.
//! - `server`: [`Server`], the one shape every process has (build → handle → run).
//! - `trace`: W3C trace context in and out of every boundary, and the spans around them.

mod backoff;
mod error;
mod strict_json;
mod values;

pub mod codes;
pub mod config;
pub mod db;
pub mod faults;
pub mod health;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod processes;
pub mod server;
pub mod trace;
pub mod wire;

pub use backoff::{Backoff, Retries};
pub use config::{NotificationMode, Transport};
pub use error::{Error, ErrorBody, ErrorDetail, ErrorKind, Result};
pub use faults::Faults;
pub use server::{Addrs, Server};
pub use values::{Currency, Email, Money, whole_number};
