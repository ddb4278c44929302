//! Retries of internal calls: which calls may be sent twice, and tower's retry policy for them.
//!
//! A call is retried only when sending it again cannot do anything the first one did not:
//! reads, and writes whose callee recognises a repeat (an idempotency key, or a natural
//! one such as the user id of a profile). [`idempotent`] is the one table that says which;
//! any call it does not name is sent once, whatever happens.
//!
//! A retryable call that fails transiently (no answer, a broken connection, or an answer
//! saying the callee is unavailable) is sent again after an exponential backoff with jitter,
//! at most [`MAX_RETRIES`] times, and only while the client's retry budget
//! (`tower::retry::budget::TpsBudget`) allows: retries stay under [`RETRY_PERCENT`] of the
//! calls made plus [`MIN_RETRIES_PER_SEC`] per second, so a struggling dependency sees at
//! most that much extra load from this client, however many calls fail. The whole call,
//! backoffs included, stays within its deadline (`crate::deadline`).

use crate::deadline::DeadlineError;
use crate::resilience::Refusal;
use archlab_kernel::metrics;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tower::BoxError;
use tower::retry::Policy;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::rng::HasherRng;

/// Most retries of one call (so at most `1 + MAX_RETRIES` attempts).
pub const MAX_RETRIES: u32 = 2;
/// The first backoff; each further one doubles, plus a random jitter of up to 100 %.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(25);
/// The longest backoff.
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Retries allowed per call made, over the budget's window.
pub const RETRY_PERCENT: f32 = 0.2;
/// Retries allowed per second on top, so a client making few calls can still retry.
pub const MIN_RETRIES_PER_SEC: u32 = 10;
/// How long a call made counts towards the budget.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// The header by which a caller marks a write as safe to repeat (the public API's).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Whether the call `method path` may be sent again after a failure: the whole
/// classification, for both transports and for the gateway's forwards.
pub fn idempotent(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    match (method, path) {
        // gRPC (every call a POST) and its HTTP twins, call by call.
        // Reads.
        (_, "/archlab.auth.v1.Auth/VerifySession" | "/archlab.users.v1.Users/GetProfile") => true,
        (&Method::POST, "/internal/auth/verify-session") => true,
        // Keyed by the user id: a repeat answers the profile the first one created.
        (_, "/archlab.users.v1.Users/CreateProfile") | (&Method::POST, "/internal/users/profiles") => true,
        // Deleting what is already gone answers the same.
        (_, "/archlab.users.v1.Users/DeleteProfile") => true,
        // Keyed by the event id: a repeat answers `duplicate` and sends nothing.
        (_, "/archlab.notifications.v1.Notifications/Deliver") | (&Method::POST, "/internal/notifications/deliver") => {
            true
        }
        // `GET` and `DELETE /internal/users/profiles/{id}` fall under the rules below.
        // Anything else (the gateway's forwards of the public API): reads, and writes the
        // caller marked with an idempotency key. Login, logout, signup are sent once.
        (&Method::GET | &Method::HEAD | &Method::OPTIONS, _) => true,
        (&Method::DELETE, p) if p.starts_with("/internal/users/profiles/") => true,
        _ => headers.contains_key(IDEMPOTENCY_KEY),
    }
}

/// A request that can be sent again: its method, path and headers, and a copy of it.
pub trait Resend: Sized {
    /// The request's method.
    fn method(&self) -> &Method;
    /// The request's path, as it goes on the wire.
    fn path(&self) -> &str;
    /// The request's headers.
    fn headers(&self) -> &HeaderMap;
    /// A copy to send again, or `None` when the body cannot be copied.
    fn resend(&self) -> Option<Self>;
}

impl Resend for reqwest::Request {
    fn method(&self) -> &Method {
        reqwest::Request::method(self)
    }
    fn path(&self) -> &str {
        self.url().path()
    }
    fn headers(&self) -> &HeaderMap {
        reqwest::Request::headers(self)
    }
    fn resend(&self) -> Option<Self> {
        self.try_clone()
    }
}

/// A gRPC call with its (small, unary) body read in full, so that it can be sent again.
impl Resend for http::Request<Bytes> {
    fn method(&self) -> &Method {
        http::Request::method(self)
    }
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn headers(&self) -> &HeaderMap {
        http::Request::headers(self)
    }
    fn resend(&self) -> Option<Self> {
        Some(self.clone())
    }
}

/// An answer that may say the callee is unavailable (worth another attempt), or that it
/// gave up at the deadline the call carried.
pub trait Answer {
    /// True when the answer says "not now": 502, 503, 504, or gRPC `UNAVAILABLE`.
    fn unavailable(&self) -> bool;
    /// True when the callee stopped at the call's deadline: gRPC `CANCELLED` or
    /// `DEADLINE_EXCEEDED`, which tonic answers when `grpc-timeout` runs out and no archlab
    /// service answers on its own (`crate::errors::grpc_code`).
    fn expired(&self) -> bool;
}

fn unavailable_status(status: StatusCode) -> bool {
    matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
}

impl Answer for reqwest::Response {
    fn unavailable(&self) -> bool {
        unavailable_status(self.status())
    }
    fn expired(&self) -> bool {
        // HTTP callees do not cut a call at its budget; the caller's deadline does.
        false
    }
}

impl<B> Answer for http::Response<B> {
    fn unavailable(&self) -> bool {
        // An error status of a unary call arrives in the headers ("trailers only").
        let grpc_unavailable = self.headers().get("grpc-status").is_some_and(|v| v.as_bytes() == b"14");
        grpc_unavailable || unavailable_status(self.status())
    }
    fn expired(&self) -> bool {
        self.headers().get("grpc-status").is_some_and(|v| matches!(v.as_bytes(), b"1" | b"4"))
    }
}

/// Whether a failed attempt is worth another one: no answer or a broken connection is; a
/// refusal of our own (deadline, breaker, bulkhead) is not, since another attempt would be
/// refused the same way.
pub fn transient(result: &Result<impl Answer, BoxError>) -> bool {
    match result {
        Ok(answer) => answer.unavailable(),
        Err(e) => Refusal::find(e.as_ref()).is_none() && !is_deadline(e.as_ref()),
    }
}

fn is_deadline(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<DeadlineError>() || e.is::<tower::timeout::error::Elapsed>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// tower's retry [`Policy`] for internal calls; see the module docs. One per client: its
/// budget is shared by every call through that client.
#[derive(Clone)]
pub struct RetryPolicy {
    /// `None`: no budget, every transient failure is retried up to [`MAX_RETRIES`] times
    /// (`INTERNAL_RETRY_BUDGET=off`, what a retry storm experiment compares against).
    budget: Option<Arc<TpsBudget>>,
    backoff: ExponentialBackoff,
    retries_left: u32,
    deposited: bool,
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy").field("retries_left", &self.retries_left).finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// A policy with a fresh budget and the defaults above.
    pub fn new() -> Self {
        Self::with_budget(true)
    }

    /// A policy with a fresh budget, or (`budgeted` false) with none: then every transient
    /// failure is retried up to [`MAX_RETRIES`] times, however many calls fail.
    pub fn with_budget(budgeted: bool) -> Self {
        let mut maker = ExponentialBackoffMaker::new(FIRST_BACKOFF, MAX_BACKOFF, 1.0, HasherRng::default())
            .expect("the backoff constants are valid");
        Self {
            budget: budgeted.then(|| Arc::new(TpsBudget::new(BUDGET_WINDOW, MIN_RETRIES_PER_SEC, RETRY_PERCENT))),
            backoff: maker.make_backoff(),
            retries_left: MAX_RETRIES,
            deposited: false,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Resend, A: Answer> Policy<R, A, BoxError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _request: &mut R, result: &mut Result<A, BoxError>) -> Option<Self::Future> {
        if self.retries_left == 0 || !transient(result) {
            return None;
        }
        if self.budget.as_ref().is_some_and(|budget| !budget.withdraw()) {
            metrics::RETRIES_REFUSED.inc();
            return None;
        }
        self.retries_left -= 1;
        metrics::RETRIES.inc();
        Some(self.backoff.next_backoff())
    }

    fn clone_request(&mut self, request: &R) -> Option<R> {
        // Called once before the first attempt and once before each retry: every call made
        // earns its share of retries exactly once.
        if !self.deposited {
            self.deposited = true;
            if let Some(budget) = &self.budget {
                budget.deposit();
            }
        }
        // A call that may not be repeated keeps no copy, so it is never retried.
        if !idempotent(request.method(), request.path(), request.headers()) {
            return None;
        }
        request.resend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_keyed_writes_are_retried_and_nothing_else() {
        let none = HeaderMap::new();
        let mut keyed = HeaderMap::new();
        keyed.insert(IDEMPOTENCY_KEY, http::HeaderValue::from_static("k-1"));
        let id = "/internal/users/profiles/6f1c2a44-0000-4000-8000-000000000000";
        for (method, path, headers, expected) in [
            (Method::POST, "/archlab.auth.v1.Auth/VerifySession", &none, true),
            (Method::POST, "/archlab.users.v1.Users/GetProfile", &none, true),
            (Method::POST, "/archlab.users.v1.Users/CreateProfile", &none, true),
            (Method::POST, "/archlab.users.v1.Users/DeleteProfile", &none, true),
            (Method::POST, "/archlab.notifications.v1.Notifications/Deliver", &none, true),
            (Method::POST, "/archlab.users.v1.Users/Unknown", &none, false),
            (Method::POST, "/internal/auth/verify-session", &none, true),
            (Method::POST, "/internal/users/profiles", &none, true),
            (Method::GET, id, &none, true),
            (Method::DELETE, id, &none, true),
            (Method::POST, "/internal/notifications/deliver", &none, true),
            (Method::GET, "/api/payments", &none, true),
            (Method::POST, "/api/payments", &none, false),
            (Method::POST, "/api/payments", &keyed, true),
            (Method::POST, "/api/auth/login", &none, false),
            (Method::POST, "/api/auth/logout", &none, false),
            (Method::POST, "/api/auth/signup", &none, false),
            (Method::PATCH, "/api/users/me", &none, false),
            (Method::DELETE, "/api/users/me", &none, false),
        ] {
            assert_eq!(
                idempotent(&method, path, headers),
                expected,
                "{method} {path} (keyed: {})",
                !headers.is_empty()
            );
        }
    }

    #[test]
    fn the_generated_grpc_paths_are_the_ones_the_table_names() {
        use archlab_proto::auth::v1::auth_server::SERVICE_NAME as AUTH;
        use archlab_proto::notifications::v1::notifications_server::SERVICE_NAME as NOTIFICATIONS;
        use archlab_proto::users::v1::users_server::SERVICE_NAME as USERS;
        let none = HeaderMap::new();
        for path in [
            format!("/{AUTH}/VerifySession"),
            format!("/{USERS}/GetProfile"),
            format!("/{USERS}/CreateProfile"),
            format!("/{USERS}/DeleteProfile"),
            format!("/{NOTIFICATIONS}/Deliver"),
        ] {
            assert!(idempotent(&Method::POST, &path, &none), "{path} is named by its proto service");
        }
    }

    #[test]
    fn only_unavailable_answers_and_transport_failures_are_transient() {
        let answer = |status: u16, grpc: Option<&'static str>| {
            let mut builder = http::Response::builder().status(status);
            if let Some(code) = grpc {
                builder = builder.header("grpc-status", code);
            }
            Ok::<_, BoxError>(builder.body(()).expect("response"))
        };
        assert!(transient(&answer(503, None)));
        assert!(transient(&answer(200, Some("14"))), "gRPC UNAVAILABLE");
        assert!(!transient(&answer(200, Some("5"))), "gRPC NOT_FOUND is an answer");
        assert!(!transient(&answer(404, None)));
        assert!(!transient(&answer(500, None)), "a bug is not fixed by asking again");
        assert!(!transient(&answer(200, Some("1"))), "a callee out of time is not asked again");
        let expired = |r: Result<http::Response<()>, BoxError>| r.expect("an answer").expired();
        assert!(expired(answer(200, Some("1"))) && expired(answer(200, Some("4"))), "CANCELLED, DEADLINE_EXCEEDED");
        assert!(!expired(answer(200, Some("14"))) && !expired(answer(200, None)));
        let io: BoxError = std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
        assert!(transient(&Err::<http::Response<()>, _>(io)));
        let spent: BoxError = DeadlineError::Spent.into();
        assert!(!transient(&Err::<http::Response<()>, _>(spent)));
        let open: BoxError = Refusal::BreakerOpen.into();
        assert!(!transient(&Err::<http::Response<()>, _>(open)));
    }
}
