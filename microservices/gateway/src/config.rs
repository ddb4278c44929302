//! The gateway's configuration: its address, where each service's public HTTP listens, and
//! the shared client and identity groups the services read too.

use archlab_remote::ClientConfig;
use archlab_remote::identity::IdentityArgs;
use clap::Parser;
use std::net::SocketAddr;

/// Everything the gateway reads from its environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "gateway", about = "archlab's API gateway in front of the four services")]
pub struct Config {
    /// Where the public API listens.
    #[arg(long, env = "GATEWAY_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// auth-service's HTTP endpoint (`/api/auth/*`).
    #[arg(long, env = "AUTH_HTTP_URL", default_value = "http://127.0.0.1:8001")]
    pub auth_http_url: String,
    /// users-service's HTTP endpoint (`/api/users/*`).
    #[arg(long, env = "USERS_HTTP_URL", default_value = "http://127.0.0.1:8002")]
    pub users_http_url: String,
    /// payments-service's HTTP endpoint (`/api/payments*`).
    #[arg(long, env = "PAYMENTS_HTTP_URL", default_value = "http://127.0.0.1:8003")]
    pub payments_http_url: String,
    /// notifications-service's HTTP endpoint (`/api/notifications`).
    #[arg(long, env = "NOTIFICATIONS_HTTP_URL", default_value = "http://127.0.0.1:8004")]
    pub notifications_http_url: String,
    /// auth-service's gRPC endpoint, for session checks when `INTERNAL_TRANSPORT=grpc`.
    #[arg(long, env = "AUTH_GRPC_URL", default_value = "http://127.0.0.1:9001")]
    pub auth_grpc_url: String,
    /// Deadline of one forwarded request, in milliseconds. Longer than `INTERNAL_TIMEOUT_MS`
    /// on purpose: a purchase behind the gateway makes several internal calls and a
    /// third-party charge (`EXTERNAL_TIMEOUT_MS`), and the gateway should not give up on a
    /// request the services would still have completed.
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT_MS", default_value_t = 15_000)]
    pub upstream_timeout_ms: u64,
    /// Transport and limits of the gateway's own calls (session checks; forwarding uses the
    /// same layers with `upstream_timeout_ms`).
    #[command(flatten)]
    pub client: ClientConfig,
    /// The secret identities are signed with.
    #[command(flatten)]
    pub identity: IdentityArgs,
}

impl Config {
    /// The client settings forwarded requests go through: the shared ones, with the
    /// gateway's own deadline.
    pub fn forwarding(&self) -> ClientConfig {
        ClientConfig { internal_timeout_ms: self.upstream_timeout_ms, ..self.client.clone() }
    }
}
