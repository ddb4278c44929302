//! The wire contract of the microservices build: one gRPC package per internal port.
//!
//! Each `.proto` under `proto/archlab/` mirrors one port trait of a domain crate, method for
//! method, with plain wire types (UUIDs as strings, times as Unix microseconds, money as
//! `amount_cents` + `currency`). This crate is only generated code; converting to and from
//! the domain types, with validation, happens in `archlab-remote`'s gRPC adapters. The
//! monolith never uses it.
//!
//! # Layout
//! - [`auth::v1`] — `Auth.VerifySession`.
//! - [`users::v1`] — `Users.CreateProfile`, `GetProfile`, `DeleteProfile`.
//! - [`notifications::v1`] — `Notifications.Deliver`.

/// `archlab.auth.v1`: the auth port.
pub mod auth {
    /// Version 1 of the auth package.
    pub mod v1 {
        tonic::include_proto!("archlab.auth.v1");
    }
}

/// `archlab.users.v1`: the users port.
pub mod users {
    /// Version 1 of the users package.
    pub mod v1 {
        tonic::include_proto!("archlab.users.v1");
    }
}

/// `archlab.notifications.v1`: the notifications port.
pub mod notifications {
    /// Version 1 of the notifications package.
    pub mod v1 {
        tonic::include_proto!("archlab.notifications.v1");
    }
}
