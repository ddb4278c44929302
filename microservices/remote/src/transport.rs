//! Which transport the remote clients use, and the tower stack around every call.
//!
//! Both transports are tower services wrapped in the same layers, so a later resilience
//! layer (retry, circuit breaker, bulkhead) is added once, here, and applies to gRPC and
//! HTTP alike.

use clap::Args;
use std::str::FromStr;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;

/// `INTERNAL_TRANSPORT`: how services call each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// tonic over HTTP/2 (the default).
    Grpc,
    /// JSON over HTTP/1.1 (reqwest and axum).
    Http,
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "grpc" => Ok(Self::Grpc),
            "http" => Ok(Self::Http),
            other => Err(format!("must be 'grpc' or 'http', not {other:?}")),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        })
    }
}

/// How remote clients behave; the same knobs for every client and both transports.
#[derive(Args, Debug, Clone)]
pub struct ClientConfig {
    /// `grpc` or `http`.
    #[arg(long, env = "INTERNAL_TRANSPORT", default_value = "grpc")]
    pub transport: Transport,
    /// Deadline of one internal call, in milliseconds.
    #[arg(long, env = "INTERNAL_TIMEOUT_MS", default_value_t = 3000)]
    pub internal_timeout_ms: u64,
    /// Most calls in flight from one client at once.
    #[arg(long, env = "INTERNAL_CONCURRENCY", default_value_t = 256)]
    pub internal_concurrency: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self { transport: Transport::Grpc, internal_timeout_ms: 3000, internal_concurrency: 256 }
    }
}

impl ClientConfig {
    /// The layers every remote call goes through, outermost first.
    pub fn layers(&self) -> ServiceBuilder<Stack<ConcurrencyLimitLayer, Stack<TimeoutLayer, Identity>>> {
        ServiceBuilder::new()
            .layer(TimeoutLayer::new(Duration::from_millis(self.internal_timeout_ms)))
            .layer(ConcurrencyLimitLayer::new(self.internal_concurrency))
    }
}
