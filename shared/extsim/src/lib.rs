//! `archlab-extsim`: the outside world, simulated.
//!
//! Both builds of archlab (the monolith and the microservices) call two third parties: a
//! Stripe-like payment API and an email API. This crate is a small, real HTTP server standing
//! in for both, so that the two architectures meet exactly the same outside world. It is
//! external to both builds: neither links it, they only talk HTTP to it.
//!
//! Three things make it useful for experiments:
//!
//! - **Idempotency keys.** `POST /v1/charges` and `POST /v1/emails` require an
//!   `Idempotency-Key` header. A retry with the same key and body replays the first answer
//!   (`"replayed": true`) instead of charging twice; the same key with another body is a
//!   `409 idempotency_conflict`. This is what lets callers retry safely.
//! - **Knobs turned at run time.** `PUT /admin/config` sets the latency, failure rate and
//!   lost-reply rate of each API while a load test or a chaos experiment is running. A
//!   simulated failure (`503 simulated_failure`) records nothing, like a request that never
//!   reached the provider. A lost reply is the opposite: the charge or email is recorded,
//!   then the connection is dropped without an answer, so the caller is left in doubt.
//! - **A record.** Every accepted charge and email is kept (`GET /v1/charges`,
//!   `GET /v1/emails`) and, with a log directory, appended as JSON lines to `charges.jsonl`
//!   and `emails.jsonl`. The consistency audit reconciles our databases against it: a
//!   payment we think we took must be here exactly once.
//!
//! Start reading at [`app`] for the routes, then `charges.rs` for the idempotency rules
//! (`emails.rs` is the same shape). Other crates' tests use [`spawn_local`] to start one and
//! [`Client`] to count what it accepted.
//!
//! # Layout
//!
//! - `config.rs`: [`Config`], the address and optional log directory (clap, env vars).
//! - `server.rs`: [`app`], [`App`] (the `Server` shape every archlab process has: bind, then
//!   serve until told to stop), [`spawn_local`].
//! - `state.rs`: [`AppState`], shared by every handler: the knobs and the two logs.
//! - `ledger.rs`: the idempotent, append-only log both APIs record into.
//! - `charges.rs`, `emails.rs`: the two simulated APIs, each with its own `router()`.
//! - `admin.rs`: [`SimConfig`] and the admin and health routes.
//! - `hangup.rs`: how a reply is lost: the listener that keeps a handle on each connection,
//!   and the layer that drops it instead of answering.
//! - `extract.rs`: extractors whose rejections use our error shape.
//! - `client.rs`: [`Client`], a typed reqwest client for the read and admin endpoints.
//! - `error.rs`: [`Error`] and how each variant becomes `{"error":{"code","message"}}`.

mod admin;
mod charges;
mod client;
mod config;
mod emails;
mod error;
mod extract;
mod hangup;
mod ledger;
mod server;
mod state;

pub use admin::{Behaviour, BehaviourPatch, SimConfig, SimConfigPatch};
pub use charges::{Charge, ChargeReceipt, NewCharge};
pub use client::Client;
pub use config::Config;
pub use emails::{Email, EmailReceipt, NewEmail};
pub use error::{Error, Result};
pub use server::{App, app, spawn_local};
pub use state::AppState;
