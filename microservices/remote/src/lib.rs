//! The distribution concern, in one place: the ports bound over a network.
//!
//! The domain crates define ports (`AuthApi`, `UsersApi`, `NotificationsApi`) and the
//! monolith binds them to in-process services. This crate binds the very same traits across
//! process boundaries, and nothing in it is a domain rule:
//!
//! - [`grpc`]: tonic servers that expose a port, and clients that implement it (default).
//! - [`http`]: the same over HTTP/JSON (`INTERNAL_TRANSPORT=http`), so the two can be compared.
//! - [`transport`]: which of the two, and the tower stack every client call goes through,
//!   each resilience policy with its switch: [`deadline`] (the caller's budget travels with
//!   the call), [`resilience`] (bulkhead, circuit breaker), [`retry`] (idempotent calls only).
//! - [`identity`]: how the gateway tells a service who the verified caller is.
//! - [`service_credential`]: how a service proves an internal call comes from inside, and
//!   how the callee refuses every call that does not.
//! - [`broker`]: RabbitMQ — the outbox relay's publisher and the notifications consumer.
//! - [`errors`]: the shared `Error` across gRPC status codes and back, unchanged.
//! - [`clients`]: each service's upstreams, as `Arc<dyn Port>` on the chosen transport.
//! - [`relay`]: the outbox worker publishing to the broker (the monolith calls in-process).
//! - [`host`]: one service's HTTP and gRPC servers and background tasks, stopped together.

pub mod broker;
pub mod clients;
pub mod deadline;
pub mod errors;
pub mod grpc;
pub mod host;
pub mod http;
pub mod identity;
pub mod relay;
pub mod replicas;
pub mod resilience;
pub mod retry;
pub mod service_credential;
pub mod transport;
pub use clients::Upstreams;
pub use host::Host;
pub use relay::Relay;
pub use service_credential::ServiceCredentials;
pub use transport::{ClientConfig, Switch, Transport};
