//! The small vocabulary every archlab crate shares, in both builds.
//!
//! Start with [`Error`]: one error type crosses every port, in-process or remote, so that a
//! monolith call and a gRPC or HTTP call fail in the same words and map to the same public
//! answer. Then the validated values ([`Email`], [`Money`]), the HTTP edge ([`http`]), the
//! database plumbing ([`db`]), the transactional outbox ([`outbox`]), the one back-off policy
//! every retry loop uses ([`Backoff`]) and the in-module fault flags ([`Faults`]) that tests
//! and workshops use to break things on purpose.
//!
//! # Layout
//! - `error`: [`Error`], its kinds, and how it becomes an HTTP answer.
//! - `values`: validated newtypes parsed once at the edge.
//! - `http`: extractors and fallbacks that give every bad request the same JSON error shape.
//! - `db`: create-if-missing and connect, per-domain migrations.
//! - `outbox`: enqueue in the caller's transaction, claim with `FOR UPDATE SKIP LOCKED`.
//! - `backoff`: exponential back-off, for the outbox and the broker consumer alike.
//! - `faults`: named fault points that can be switched on at run time.
//! - `health`: `/health` and `/ready`.

mod backoff;
mod error;
mod faults;
mod values;

pub mod config;
pub mod db;
pub mod health;
pub mod http;
pub mod outbox;

pub use backoff::{Backoff, Retries};
pub use config::NotificationMode;
pub use error::{Error, ErrorBody, ErrorKind, Result};
pub use faults::Faults;
pub use values::{Currency, Email, Money};
