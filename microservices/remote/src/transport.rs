//! Which transport the remote clients use, and the tower stack around every call.
//!
//! Both transports are tower services wrapped in the same layers, so a later resilience
//! layer (retry, circuit breaker, bulkhead) is added once, here, and applies to gRPC and
//! HTTP alike. Below these layers, next to the wire, every port client adds the calling
//! process's service credential (`ServiceCredentials::sign_layer`, in
//! microservices/remote/src/service_credential.rs).

use archlab_kernel::metrics::{self, CountLayer};
use clap::Args;
use std::time::Duration;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::limit::ConcurrencyLimitLayer;
use tower::timeout::TimeoutLayer;

pub use archlab_kernel::Transport;

/// How remote clients behave; the same knobs for every client and both transports.
#[derive(Args, Debug, Clone)]
pub struct ClientConfig {
    /// `grpc` or `http`.
    #[arg(long, env = "INTERNAL_TRANSPORT", value_enum, default_value_t)]
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
        Self { transport: Transport::default(), internal_timeout_ms: 3000, internal_concurrency: 256 }
    }
}

/// The tower stack of [`ClientConfig::layers`], outermost last in the type.
pub type Layers = ServiceBuilder<Stack<ConcurrencyLimitLayer, Stack<TimeoutLayer, Stack<CountLayer, Identity>>>>;

impl ClientConfig {
    /// The layers every remote call goes through, outermost first: counted (`/metrics`),
    /// deadline, concurrency limit.
    pub fn layers(&self) -> Layers {
        ServiceBuilder::new()
            .layer(metrics::INTERNAL_RPC.layer())
            .layer(TimeoutLayer::new(Duration::from_millis(self.internal_timeout_ms)))
            .layer(ConcurrencyLimitLayer::new(self.internal_concurrency))
    }
}
