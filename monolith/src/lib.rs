//! The modular monolith: the four domains in one process over one database.
//!
//! Every port is bound to the in-process service (a direct async call), every domain keeps
//! its own schema in the one database `archlab_monolith`, and signup is one ACID transaction.
//! Put these files beside their counterparts in `microservices/` to see exactly what a
//! network between the modules changes:
//!
//! - [`app`]: wiring. Ports bound in-process; one pool; one router of all four domains.
//! - [`signup_tx`]: signup as one transaction (the microservices run a saga instead).
//! - [`events`]: the outbox worker delivers events by calling notifications in-process (the
//!   microservices publish to RabbitMQ instead).
//! - [`config`]: the environment variables.

pub mod app;
pub mod config;
pub mod events;
pub mod signup_tx;

pub use app::{App, Handle};
pub use config::Config;
