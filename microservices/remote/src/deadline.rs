//! Deadline propagation: the caller's remaining budget travels with every internal call.
//!
//! A process holds at most one deadline per request it is serving: the instant after which
//! its caller no longer waits. It lives in a tokio task-local, set by [`BudgetLayer`] on
//! the servers (from the call's `grpc-timeout` or [`BUDGET_HEADER`]) and by the clients'
//! [`DeadlineLayer`] for the call they are making. A client call then gets
//! `min(its own timeout, what is left of the caller's budget)`, sends what is left of that
//! on (as `grpc-timeout` over gRPC, which tonic servers also enforce, and as
//! [`BUDGET_HEADER`] over HTTP), and fails fast, without touching the wire, when nothing is
//! left. Work the caller has given up on is not started three hops further down.
//!
//! The monolith has no counterpart: an in-process call shares its caller's clock.

use crate::retry::Answer;
use archlab_kernel::metrics;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// The HTTP header carrying the caller's remaining budget, in whole milliseconds.
pub const BUDGET_HEADER: &str = "x-archlab-budget-ms";
/// The gRPC header carrying the caller's remaining budget (`<digits><unit>`, gRPC's spelling).
pub const GRPC_TIMEOUT_HEADER: &str = "grpc-timeout";

tokio::task_local! {
    /// The deadline of the request this task is serving, or of the call it is making.
    static DEADLINE: Option<Instant>;
}

/// The deadline in force for the work this task is doing, if any.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|d| *d).ok().flatten()
}

/// What is left of the deadline in force (zero once it has passed), if there is one.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

/// Run `work` under a deadline `budget` from now, or sooner if one already in force ends first.
pub async fn within<F: Future>(budget: Duration, work: F) -> F::Output {
    let mut deadline = Instant::now() + budget;
    if let Some(outer) = current() {
        deadline = deadline.min(outer);
    }
    DEADLINE.scope(Some(deadline), work).await
}

/// Why the deadline layer refused or ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineError {
    /// Nothing was left of the caller's budget: the call was not sent.
    Spent,
    /// No answer within the call's budget (its own timeout, or less when the caller's
    /// budget was shorter); the milliseconds are that budget.
    Elapsed(u64),
}

impl fmt::Display for DeadlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spent => f.write_str("the caller's deadline was spent before the call"),
            Self::Elapsed(ms) => write!(f, "timed out after {ms} ms"),
        }
    }
}

impl std::error::Error for DeadlineError {}

/// The budget a call starts with: its own timeout, shortened to the caller's deadline when
/// `propagate` is on.
pub fn budget_of(timeout: Duration, propagate: bool) -> (Instant, Duration) {
    let now = Instant::now();
    let mut deadline = now + timeout;
    if propagate && let Some(outer) = current() {
        deadline = deadline.min(outer);
    }
    (deadline, deadline.saturating_duration_since(now))
}

// ---- client side

/// The outer client layer: bounds the whole call (queueing, every attempt, every backoff) by
/// its budget and refuses a call whose budget is spent; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    timeout: Duration,
    propagate: bool,
}

impl DeadlineLayer {
    /// Calls bounded by `timeout`, and by the caller's deadline when `propagate` is on.
    pub fn new(timeout: Duration, propagate: bool) -> Self {
        Self { timeout, propagate }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner, layer: *self }
    }
}

/// The service [`DeadlineLayer`] makes.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S, R> Service<R> for Deadline<S>
where
    S: Service<R>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    S::Response: Answer + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let (deadline, budget) = budget_of(self.layer.timeout, self.layer.propagate);
        if budget < Duration::from_millis(1) {
            metrics::DEADLINE_SPENT.inc();
            return Box::pin(std::future::ready(Err(DeadlineError::Spent.into())));
        }
        let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
        // The inner layers (and every retry they make) see this call's deadline.
        let call = DEADLINE.sync_scope(Some(deadline), || self.inner.call(request));
        Box::pin(DEADLINE.scope(Some(deadline), async move {
            match tokio::time::timeout_at(deadline, call).await {
                // The callee stopped at the budget it was sent: the same timeout, seen first there.
                Ok(Ok(answer)) if answer.expired() => Err(DeadlineError::Elapsed(budget_ms).into()),
                Ok(answer) => answer.map_err(Into::into),
                Err(_) => Err(DeadlineError::Elapsed(budget_ms).into()),
            }
        }))
    }
}

/// A request whose headers can carry the remaining budget.
pub trait Stampable {
    /// The request's headers.
    fn headers_mut(&mut self) -> &mut http::HeaderMap;
}

impl Stampable for reqwest::Request {
    fn headers_mut(&mut self) -> &mut http::HeaderMap {
        reqwest::Request::headers_mut(self)
    }
}

impl<B> Stampable for http::Request<B> {
    fn headers_mut(&mut self) -> &mut http::HeaderMap {
        http::Request::headers_mut(self)
    }
}

/// Which header carries the budget on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `grpc-timeout: <ms>m`.
    Grpc,
    /// `x-archlab-budget-ms: <ms>`.
    Http,
}

/// The inner client layer: writes what is left of the deadline into each attempt just
/// before it is sent (so a retry carries less than the first attempt did), or removes any
/// such header when propagation is off.
#[derive(Debug, Clone, Copy)]
pub struct StampLayer {
    spelling: Spelling,
    propagate: bool,
}

impl StampLayer {
    /// Stamp the budget in `spelling` when `propagate` is on.
    pub fn new(spelling: Spelling, propagate: bool) -> Self {
        Self { spelling, propagate }
    }
}

impl<S> Layer<S> for StampLayer {
    type Service = Stamp<S>;
    fn layer(&self, inner: S) -> Stamp<S> {
        Stamp { inner, layer: *self }
    }
}

/// The service [`StampLayer`] makes.
#[derive(Debug, Clone)]
pub struct Stamp<S> {
    inner: S,
    layer: StampLayer,
}

impl<S, R: Stampable> Service<R> for Stamp<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: R) -> S::Future {
        let headers = request.headers_mut();
        // Never pass on a budget someone else wrote (the gateway forwards client headers).
        headers.remove(BUDGET_HEADER);
        if self.layer.spelling == Spelling::Grpc {
            headers.remove(GRPC_TIMEOUT_HEADER);
        }
        if self.layer.propagate
            && let Some(left) = remaining()
        {
            // At least 1 ms: a zero budget would read as "no deadline" to some servers.
            let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).clamp(1, 99_999_999);
            let (name, value) = match self.layer.spelling {
                Spelling::Grpc => (GRPC_TIMEOUT_HEADER, format!("{ms}m")),
                Spelling::Http => (BUDGET_HEADER, ms.to_string()),
            };
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        self.inner.call(request)
    }
}

// ---- server side

/// The longest budget a server accepts; longer ones are cut to it (no internal call is
/// meant to take an hour, and an absurd value must not overflow the clock).
pub const MAX_BUDGET: Duration = Duration::from_secs(3600);

/// The budget a request arrived with: `grpc-timeout` (gRPC's units) or [`BUDGET_HEADER`]
/// (milliseconds), at most [`MAX_BUDGET`]; `None` when absent or malformed (a bad header is
/// ignored, not an error).
pub fn incoming_budget(headers: &http::HeaderMap) -> Option<Duration> {
    let budget = match headers.get(GRPC_TIMEOUT_HEADER) {
        Some(value) => parse_grpc_timeout(value.to_str().ok()?)?,
        None => Duration::from_millis(headers.get(BUDGET_HEADER)?.to_str().ok()?.trim().parse().ok()?),
    };
    Some(budget.min(MAX_BUDGET))
}

/// `grpc-timeout`: at most 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
fn parse_grpc_timeout(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The server layer: each request runs under the deadline its caller sent (see the module
/// docs), so the calls it makes in turn get what is left of it. Used by both servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct BudgetLayer;

impl<S> Layer<S> for BudgetLayer {
    type Service = Budgeted<S>;
    fn layer(&self, inner: S) -> Budgeted<S> {
        Budgeted { inner }
    }
}

/// The service [`BudgetLayer`] makes.
#[derive(Debug, Clone)]
pub struct Budgeted<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Budgeted<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tokio::task::futures::TaskLocalFuture<Option<Instant>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let deadline = incoming_budget(request.headers()).map(|budget| Instant::now() + budget);
        DEADLINE.scope(deadline, self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_garbage_is_ignored() {
        for (text, expected) in [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("7u", Some(Duration::from_micros(7))),
            ("9n", Some(Duration::from_nanos(9))),
            ("", None),
            ("m", None),
            ("123456789m", None),
            ("12x", None),
            ("-1m", None),
        ] {
            assert_eq!(parse_grpc_timeout(text), expected, "{text:?}");
        }
        let mut headers = http::HeaderMap::new();
        headers.insert(BUDGET_HEADER, http::HeaderValue::from_static("1500"));
        assert_eq!(incoming_budget(&headers), Some(Duration::from_millis(1500)));
        headers.insert(BUDGET_HEADER, http::HeaderValue::from_static("18446744073709551615"));
        assert_eq!(incoming_budget(&headers), Some(MAX_BUDGET), "an absurd budget is cut, not an overflow");
        headers.insert(BUDGET_HEADER, http::HeaderValue::from_static("soon"));
        assert_eq!(incoming_budget(&headers), None, "a malformed budget is no budget");
    }

    #[tokio::test]
    async fn a_nested_budget_never_outlives_the_outer_one() {
        within(Duration::from_millis(200), async {
            let outer = remaining().expect("a deadline is in force");
            within(Duration::from_secs(60), async {
                let inner = remaining().expect("still in force");
                assert!(inner <= outer, "the inner budget {inner:?} exceeds the outer {outer:?}");
            })
            .await;
            let (_, budget) = budget_of(Duration::from_secs(3), true);
            assert!(budget <= Duration::from_millis(200), "propagated: {budget:?}");
            let (_, budget) = budget_of(Duration::from_secs(3), false);
            assert_eq!(budget, Duration::from_secs(3), "not propagated");
        })
        .await;
        assert_eq!(remaining(), None, "no deadline outside the scope");
    }
}
