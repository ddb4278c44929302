//! The circuit breaker and the bulkhead around every client's calls, and the refusals they
//! (and the deadline) answer with instead of sending a call.
//!
//! Both come from `tower-resilience`; this module only configures them, counts what they do
//! in `/metrics` (`archlab_resilience_total`), and turns their refusals into one error type,
//! [`Refusal`], which `crate::errors` and `crate::http::HttpUpstream` report as the shared
//! `Unavailable` naming the dependency: a refused call reads like a dependency that did not
//! answer, never like a bug of ours.
//!
//! - The breaker watches the attempts that reach the wire. Once at least
//!   [`BREAKER_MIN_CALLS`] have been made in the last [`BREAKER_WINDOW`] and half or more of
//!   them failed (no answer, a broken connection, or an answer saying "unavailable"), it
//!   opens: calls fail at once for `INTERNAL_BREAKER_OPEN_MS`, and the dependency gets time
//!   to recover instead of a queue of calls it cannot serve. Then it lets
//!   [`BREAKER_TRIAL_CALLS`] trial calls through (half-open): if they succeed it closes, if
//!   not it opens again.
//! - The bulkhead caps the calls in flight to one dependency (`INTERNAL_CONCURRENCY`), and,
//!   unlike a plain concurrency limit, refuses a call that has waited
//!   `INTERNAL_BULKHEAD_WAIT_MS` for a free slot, so a slow dependency fills its own
//!   bulkhead and the caller answers 503 quickly rather than piling up every request.

use crate::retry::Answer;
use archlab_kernel::metrics;
use std::fmt;
use std::time::Duration;
use tower::BoxError;
use tower_resilience::bulkhead::{BulkheadError, BulkheadLayer};
use tower_resilience::circuitbreaker::{CircuitBreakerLayer, CircuitState, FnClassifier, SlidingWindowType};

/// How far back the breaker looks (a time-based window). Not tower-resilience's count-based
/// window: in 0.13 that one counts every call since the breaker last changed state, not the
/// last N, so after a healthy spell it opens only once the failures outnumber every success
/// since; measured (retry-storm-guarded, 50 reads/s), it took 4 s of 70 % failures after 3 s
/// of successes, and would take longer the longer the healthy spell.
pub const BREAKER_WINDOW: Duration = Duration::from_secs(2);
/// Calls the breaker needs in its window before it judges the failure rate.
pub const BREAKER_MIN_CALLS: usize = 10;
/// Failure rate at or above which the breaker opens.
pub const BREAKER_FAILURE_RATE: f64 = 0.5;
/// Trial calls let through in the half-open state.
pub const BREAKER_TRIAL_CALLS: usize = 3;

/// A call refused before it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The dependency's circuit breaker is open.
    BreakerOpen,
    /// The bulkhead had no free slot within its bounded wait.
    BulkheadFull,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BreakerOpen => "circuit breaker open, not called",
            Self::BulkheadFull => "too many calls in flight, not called",
        })
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// The refusal somewhere in `e`'s chain of sources, if any.
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut next = Some(e);
        while let Some(e) = next {
            if let Some(refusal) = e.downcast_ref::<Refusal>() {
                return Some(*refusal);
            }
            if e.is::<BulkheadError>() {
                return Some(Self::BulkheadFull);
            }
            next = e.source();
        }
        None
    }
}

/// Whether an attempt counts against the dependency's health: what a retry would count as
/// transient (`crate::retry::transient`), and a callee that ran out of the time it was given.
fn failed<A: Answer>(result: &Result<A, BoxError>) -> bool {
    crate::retry::transient(result) || matches!(result, Ok(answer) if answer.expired())
}

/// How the breaker judges an attempt: [`failed`].
pub type Judge<A> = fn(&Result<A, BoxError>) -> bool;

/// The breaker for one client's calls, opened for `open` after too many failures.
pub fn breaker<A: Answer + Send + 'static>(
    dependency: &'static str,
    open: Duration,
) -> CircuitBreakerLayer<FnClassifier<Judge<A>>> {
    CircuitBreakerLayer::builder()
        .name(dependency)
        .failure_rate_threshold(BREAKER_FAILURE_RATE)
        .sliding_window_type(SlidingWindowType::TimeBased)
        .sliding_window_duration(BREAKER_WINDOW)
        .minimum_number_of_calls(BREAKER_MIN_CALLS)
        .wait_duration_in_open(open)
        .permitted_calls_in_half_open(BREAKER_TRIAL_CALLS)
        .failure_classifier(failed::<A> as Judge<A>)
        .on_state_transition(move |from, to| {
            tracing::warn!(dependency, ?from, ?to, "circuit breaker");
            match to {
                CircuitState::Open => metrics::BREAKER_OPENED.inc(),
                CircuitState::HalfOpen => metrics::BREAKER_HALF_OPENED.inc(),
                CircuitState::Closed => metrics::BREAKER_CLOSED.inc(),
            }
        })
        .on_call_rejected(|| metrics::BREAKER_REJECTED.inc())
        .build()
        .expect("the breaker constants are valid")
}

/// The bulkhead for one client's calls: `slots` in flight, a wait of at most `wait`.
pub fn bulkhead(slots: usize, wait: Duration) -> BulkheadLayer {
    BulkheadLayer::builder()
        .max_concurrent_calls(slots.max(1))
        .max_wait_duration(wait)
        .on_call_rejected(|_| metrics::BULKHEAD_REJECTED.inc())
        .build()
        .expect("a bulkhead of at least one slot is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_found_under_other_errors() {
        let open: BoxError = Refusal::BreakerOpen.into();
        assert_eq!(Refusal::find(open.as_ref()), Some(Refusal::BreakerOpen));
        // How the gRPC clients see it: a status whose source is the refusal.
        let status = tonic::Status::from_error(Box::new(Refusal::BulkheadFull));
        assert_eq!(Refusal::find(&status), Some(Refusal::BulkheadFull), "found through a wrapper's source");
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Refusal::find(&plain), None);
    }
}
