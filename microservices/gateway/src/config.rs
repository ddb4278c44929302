//! The gateway's configuration: its address, where each service's public HTTP listens, and
//! the shared client and identity groups the services read too.

use archlab_kernel::config::AbuseArgs;
use archlab_kernel::processes::GATEWAY;
use archlab_remote::identity::IdentityArgs;
use archlab_remote::{ClientConfig, Switch, Upstreams};
use clap::Parser;
use std::net::SocketAddr;

/// Everything the gateway reads from its environment.
#[derive(Parser, Debug, Clone)]
#[command(name = GATEWAY.name, about = "archlab's API gateway in front of the four services")]
pub struct Config {
    /// Where the public API listens.
    #[arg(long, env = GATEWAY.http.addr_var, default_value = GATEWAY.http.default_addr)]
    pub addr: SocketAddr,
    /// Where the services are: each one's public HTTP (forwarding) and auth-service's gRPC
    /// (session checks when `INTERNAL_TRANSPORT=grpc`); the same flags the services read.
    #[command(flatten)]
    pub upstreams: Upstreams,
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
    /// Signup and login limits: the gateway applies the per-address one, since only it
    /// sees the client's address; auth-service applies the others.
    #[command(flatten)]
    pub limits: AbuseArgs,
    /// `on`: forward every route without checking bearer tokens or signing an identity, the
    /// `Authorization` header passed on as it came: the front door of replicated monoliths
    /// (`archlab up monolith --replicas monolith=2`), which authenticate for themselves.
    /// Services behind a pass-through gateway refuse every protected route (they trust only
    /// a signed identity), so the mistake fails closed.
    #[arg(long, env = "GATEWAY_PASS_THROUGH", value_enum, default_value_t = Switch::Off)]
    pub pass_through: Switch,
}

impl Config {
    /// The client settings forwarded requests go through: the shared ones, with the
    /// gateway's own deadline.
    pub fn forwarding(&self) -> ClientConfig {
        ClientConfig { internal_timeout_ms: self.upstream_timeout_ms, ..self.client.clone() }
    }
}
