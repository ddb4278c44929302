//! The ports over gRPC: servers that expose a port, clients that implement it.
//!
//! This is the microservices build's binding of `AuthApi`, `UsersApi` and `NotificationsApi`;
//! the monolith binds the same traits to the in-process services and has no counterpart to
//! this module. Only the wire differs: a client returns exactly the value or [`Error`]
//! the service returned, so callers cannot tell the two builds apart, except that a remote
//! call can also fail as `Unavailable` (the dependency is down, or too slow).
//!
//! # Layout
//! - [`GrpcServer`] hosts any subset of the three ports, each refusing calls without a valid
//!   service credential (see [`crate::service_credential`]), plus `grpc.health.v1`.
//! - [`GrpcAuthClient`], [`GrpcUsersClient`], [`GrpcNotificationsClient`]: the ports as
//!   clients; every call goes through [`ClientConfig::layers`](crate::ClientConfig::layers)
//!   and carries the calling process's service credential.
//! - `convert`: proto ⇄ domain types, validating whatever arrives.
//!
//! [`Error`]: archlab_kernel::Error

mod client;
mod convert;
mod server;

pub use client::{
    AUTH_SERVICE, GrpcAuthClient, GrpcNotificationsClient, GrpcUsersClient, NOTIFICATIONS_SERVICE, USERS_SERVICE,
};
pub use server::GrpcServer;
