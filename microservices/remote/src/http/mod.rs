//! The ports over HTTP/JSON (`INTERNAL_TRANSPORT=http`): the counterpart of [`crate::grpc`].
//!
//! Put this module beside `grpc/` (`src/grpc/mod.rs`) to compare the two transports: the same three ports,
//! the same `Error` arriving unchanged on the far side, the same tower layers around every
//! call. What differs is the encoding (JSON text instead of protobuf) and the connection
//! (HTTP/1.1 with a pool instead of one multiplexed HTTP/2 channel).
//!
//! | port call | route | answer |
//! |---|---|---|
//! | `AuthApi::verify_session` | `POST /internal/auth/verify-session` `{token}` | 200 `Session` |
//! | `UsersApi::create_profile` | `POST /internal/users/profiles` `NewProfile` | 200 `Profile` |
//! | `UsersApi::get_profile` | `GET /internal/users/profiles/{id}` | 200 `Profile` |
//! | `UsersApi::delete_profile` | `DELETE /internal/users/profiles/{id}` | 204 |
//! | `NotificationsApi::deliver` | `POST /internal/notifications/deliver` `NotificationEvent` | 200 `Delivery` |
//!
//! Every route answers only calls carrying a valid service credential for its service, method
//! and path (see [`crate::service_credential`]); the clients add it to every call.
//!
//! Errors travel as the public API's own `{"error": {"code", "message"}}` body with the
//! status of their kind, so the client rebuilds the very `Error` the service returned.
//! Failing to get an answer at all becomes 503 `dependency_unavailable` naming the service.
//!
//! # Layout
//! - `server`: the axum routes each service merges into its router.
//! - `client`: `HttpAuthClient`, `HttpUsersClient`, `HttpNotificationsClient`, the ports'
//!   implementations.
//! - `upstream`: [`HttpUpstream`], the base URL + tower stack both the clients and the
//!   gateway's forwarding send through.

mod client;
mod server;
mod upstream;

pub use client::{HttpAuthClient, HttpNotificationsClient, HttpUsersClient};
pub use server::{VerifySessionRequest, auth_routes, notifications_routes, users_routes};
pub use upstream::{Answer, HttpStack, HttpUpstream};

const VERIFY_SESSION: &str = "/internal/auth/verify-session";
const PROFILES: &str = "/internal/users/profiles";
const DELIVER: &str = "/internal/notifications/deliver";

/// The dependency names errors carry, the same as the gRPC clients'.
use crate::grpc::{AUTH_SERVICE, NOTIFICATIONS_SERVICE, USERS_SERVICE};
