//! Which transport the remote clients use, and the tower stack around every call.
//!
//! Both transports are tower services wrapped in the same layers, so a resilience policy is
//! added once, here, and applies to gRPC and HTTP alike. Each policy has its own switch, so
//! an experiment can compare a build with and without it. Outermost first:
//!
//! | layer | what it does | switch (default) |
//! |---|---|---|
//! | count | `archlab_calls_total{kind="internal_rpc"}`, once per call | always |
//! | deadline (`crate::deadline`) | bounds the whole call by `min(INTERNAL_TIMEOUT_MS, caller's remaining budget)`; refuses a call whose budget is spent | `INTERNAL_DEADLINE_PROPAGATION` (`on`) |
//! | bulkhead (`crate::resilience`) | at most `INTERNAL_CONCURRENCY` calls in flight, a bounded wait for a slot | `INTERNAL_BULKHEAD` (`on`), `INTERNAL_BULKHEAD_WAIT_MS` (`100`) |
//! | retry (`crate::retry`) | idempotent calls only, backoff with jitter, within a retry budget | `INTERNAL_RETRY` (`on`), `INTERNAL_RETRY_BUDGET` (`on`) |
//! | circuit breaker (`crate::resilience`) | fails fast while the dependency keeps failing | `INTERNAL_BREAKER` (`off`), `INTERNAL_BREAKER_OPEN_MS` (`5000`) |
//! | stamp (`crate::deadline`) | writes the remaining budget into each attempt | with propagation |
//!
//! Below these layers, next to the wire, every port client adds the calling process's
//! service credential (`ServiceCredentials::sign_layer`, in
//! microservices/remote/src/service_credential.rs), so each attempt carries a fresh one.
//! With the bulkhead off, the limit is tower's plain concurrency limit, whose wait for a
//! slot is bounded by nothing (the behaviour before the bulkhead).

use crate::deadline::{DeadlineLayer, Spelling, StampLayer, Stampable};
use crate::resilience::Refusal;
use crate::retry::{Answer, Resend, RetryPolicy};
use archlab_kernel::metrics;
use clap::Args;
use std::time::Duration;
use tower::limit::ConcurrencyLimitLayer;
use tower::retry::RetryLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_resilience::bulkhead::BulkheadServiceError;
use tower_resilience::circuitbreaker::CircuitBreakerError;

pub use archlab_kernel::Transport;

/// A resilience policy's switch: `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Switch {
    /// The policy applies.
    #[default]
    On,
    /// The policy is left out of the stack.
    Off,
}

impl Switch {
    /// True when on.
    pub fn is_on(self) -> bool {
        self == Self::On
    }
}

/// How remote clients behave; the same knobs for every client and both transports.
#[derive(Args, Debug, Clone)]
pub struct ClientConfig {
    /// `grpc` or `http`.
    #[arg(long, env = "INTERNAL_TRANSPORT", value_enum, default_value_t)]
    pub transport: Transport,
    /// Deadline of one internal call, in milliseconds (retries included).
    #[arg(long, env = "INTERNAL_TIMEOUT_MS", default_value_t = 3000)]
    pub internal_timeout_ms: u64,
    /// Most calls in flight from one client at once.
    #[arg(long, env = "INTERNAL_CONCURRENCY", default_value_t = 256)]
    pub internal_concurrency: usize,
    /// Pass the caller's remaining budget on with each call, and never wait longer than it.
    #[arg(long, env = "INTERNAL_DEADLINE_PROPAGATION", value_enum, default_value_t)]
    pub deadline_propagation: Switch,
    /// Retry idempotent calls that failed transiently, within a retry budget.
    #[arg(long, env = "INTERNAL_RETRY", value_enum, default_value_t)]
    pub retry: Switch,
    /// Keep retries within the retry budget (20 % of calls + 10/s per client); `off` retries
    /// every transient failure up to the retry limit, as a client without a budget does (what
    /// the retry-storm experiment compares against).
    #[arg(long, env = "INTERNAL_RETRY_BUDGET", value_enum, default_value_t)]
    pub retry_budget: Switch,
    /// A circuit breaker per dependency. Off by default: on, a burst of shed signups (503
    /// from the password-hashing cap) opened the gateway's breaker to auth-service and
    /// turned a momentary shed into five seconds of refusing every auth call.
    #[arg(long, env = "INTERNAL_BREAKER", value_enum, default_value_t = Switch::Off)]
    pub breaker: Switch,
    /// How long an open breaker refuses calls before it lets trial calls through, in ms.
    #[arg(long, env = "INTERNAL_BREAKER_OPEN_MS", default_value_t = DEFAULT_BREAKER_OPEN_MS)]
    pub breaker_open_ms: u64,
    /// Refuse a call that waited `INTERNAL_BULKHEAD_WAIT_MS` for one of the
    /// `INTERNAL_CONCURRENCY` slots (`off`: wait without a bound, as a plain limit does).
    #[arg(long, env = "INTERNAL_BULKHEAD", value_enum, default_value_t)]
    pub bulkhead: Switch,
    /// Longest wait for a free slot in the bulkhead, in milliseconds.
    #[arg(long, env = "INTERNAL_BULKHEAD_WAIT_MS", default_value_t = DEFAULT_BULKHEAD_WAIT_MS)]
    pub bulkhead_wait_ms: u64,
}

/// Default of `INTERNAL_BREAKER_OPEN_MS`.
pub const DEFAULT_BREAKER_OPEN_MS: u64 = 5000;
/// Default of `INTERNAL_BULKHEAD_WAIT_MS`.
pub const DEFAULT_BULKHEAD_WAIT_MS: u64 = 100;

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            transport: Transport::default(),
            internal_timeout_ms: 3000,
            internal_concurrency: 256,
            deadline_propagation: Switch::On,
            retry: Switch::On,
            retry_budget: Switch::On,
            breaker: Switch::Off,
            breaker_open_ms: DEFAULT_BREAKER_OPEN_MS,
            bulkhead: Switch::On,
            bulkhead_wait_ms: DEFAULT_BULKHEAD_WAIT_MS,
        }
    }
}

/// A type-erased stack of layers, as the clients hold it.
pub type Stack<R, A> = BoxCloneSyncService<R, A, BoxError>;

impl ClientConfig {
    /// The deadline of one call before any caller's budget shortens it.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.internal_timeout_ms)
    }

    /// The outer layers, once per call: counted, bounded by the deadline, admitted by the
    /// bulkhead (see the module docs).
    pub fn calls<R, A, S>(&self, inner: S) -> Stack<R, A>
    where
        R: Send + 'static,
        A: Answer + Send + 'static,
        S: Service<R, Response = A> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let limited: Stack<R, A> = if self.bulkhead.is_on() {
            let wait = Duration::from_millis(self.bulkhead_wait_ms);
            let bulkhead = crate::resilience::bulkhead(self.internal_concurrency, wait);
            let inner = inner.map_err(Into::<BoxError>::into as fn(S::Error) -> BoxError);
            BoxCloneSyncService::new(bulkhead.layer(inner).map_err(|e| match e {
                BulkheadServiceError::Inner(e) => e,
                BulkheadServiceError::Bulkhead(_) => Refusal::BulkheadFull.into(),
            }))
        } else {
            let limit = ConcurrencyLimitLayer::new(self.internal_concurrency.max(1));
            BoxCloneSyncService::new(tower::Layer::layer(&limit, inner).map_err(Into::into))
        };
        let stack = ServiceBuilder::new()
            .layer(metrics::INTERNAL_RPC.layer())
            .layer(DeadlineLayer::new(self.timeout(), self.deadline_propagation.is_on()))
            .service(limited);
        BoxCloneSyncService::new(stack)
    }

    /// The inner layers, once per attempt: retried (idempotent calls only), watched by the
    /// breaker, stamped with the remaining budget (see the module docs).
    pub fn attempts<R, A, S>(&self, dependency: &'static str, spelling: Spelling, wire: S) -> Stack<R, A>
    where
        R: Resend + Stampable + Send + Sync + 'static,
        A: Answer + Send + 'static,
        S: Service<R, Response = A> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
    {
        let stamped = StampLayer::new(spelling, self.deadline_propagation.is_on());
        let wire: Stack<R, A> = BoxCloneSyncService::new(tower::Layer::layer(&stamped, wire).map_err(Into::into));
        let guarded: Stack<R, A> = if self.breaker.is_on() {
            let open = Duration::from_millis(self.breaker_open_ms);
            let breaker = crate::resilience::breaker::<A>(dependency, open).layer(wire);
            BoxCloneSyncService::new(breaker.map_err(|e: CircuitBreakerError<BoxError>| match e {
                CircuitBreakerError::OpenCircuit => Refusal::BreakerOpen.into(),
                CircuitBreakerError::Inner(e) => e,
            }))
        } else {
            wire
        };
        if self.retry.is_on() {
            BoxCloneSyncService::new(
                RetryLayer::new(RetryPolicy::with_budget(self.retry_budget.is_on())).layer(guarded),
            )
        } else {
            guarded
        }
    }
}
