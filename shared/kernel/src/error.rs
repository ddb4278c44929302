//! One error type for every port and every edge.
//!
//! It carries a kind (which decides the HTTP and gRPC status), a stable machine `code` and a
//! human message. Because it is plain data it survives a trip over gRPC or HTTP unchanged,
//! so a remote caller sees exactly the error an in-process caller would.

use crate::codes;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Duration;

/// Result with the shared [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely: decides the status code on every transport.
///
/// Its serde names (`not_found`, ...) are its one spelling: [`ErrorKind::as_str`] and
/// [`str::parse`] read them, and gRPC metadata carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// 400: the request could not be read.
    BadRequest,
    /// 401: no usable identity.
    Unauthorized,
    /// 404: no such resource for this caller.
    NotFound,
    /// 405: known path, wrong method.
    MethodNotAllowed,
    /// 409: conflicts with existing state.
    Conflict,
    /// 413: body too large.
    PayloadTooLarge,
    /// 415: wrong content type.
    UnsupportedMediaType,
    /// 422: well-formed but breaks a rule.
    Unprocessable,
    /// 429: too many attempts; the answer says when to retry.
    TooManyRequests,
    /// 502: a third party failed.
    BadGateway,
    /// 503: a dependency of ours is unavailable.
    Unavailable,
    /// 500: a bug.
    Internal,
}

impl ErrorKind {
    /// The wire name, e.g. `not_found`: the snake_case serde writes.
    pub fn as_str(self) -> &'static str {
        crate::wire::name(&self)
    }

    /// The HTTP status for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The kind an HTTP status stands for (used when an error comes back over HTTP).
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => ErrorKind::BadRequest,
            401 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::PayloadTooLarge,
            415 => ErrorKind::UnsupportedMediaType,
            422 => ErrorKind::Unprocessable,
            429 => ErrorKind::TooManyRequests,
            502 => ErrorKind::BadGateway,
            503 | 504 => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        }
    }
}

impl std::str::FromStr for ErrorKind {
    type Err = crate::wire::UnknownName;

    /// The kind named `s` (see [`ErrorKind::as_str`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::wire::parse(s)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error every port and handler returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// Decides the status code.
    pub kind: ErrorKind,
    /// Stable machine-readable code, e.g. `email_taken`.
    pub code: Cow<'static, str>,
    /// Human-readable message; never carries internals for 5xx.
    pub message: String,
    /// When the caller may try again: answered as `Retry-After` (whole seconds, at least 1).
    /// Set by the limits that refuse work (429, and 503 when hashing is saturated).
    pub retry_after: Option<Duration>,
}

impl Error {
    /// An error of any kind with its code and message.
    pub fn new(kind: ErrorKind, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { kind, code: code.into(), message: message.into(), retry_after: None }
    }

    /// The same error, telling the caller to retry after `wait`.
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// 429 with a specific code, retryable after `wait`.
    pub fn too_many_requests(code: &'static str, message: impl Into<String>, wait: Duration) -> Self {
        Self::new(ErrorKind::TooManyRequests, code, message).with_retry_after(wait)
    }

    /// 422 `validation_failed`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, codes::VALIDATION_FAILED, message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, codes::UNAUTHORIZED, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, codes::NOT_FOUND, format!("{what} not found"))
    }

    /// 409 with a specific code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    /// 413 `payload_too_large`: a body over [`crate::http::BODY_LIMIT`].
    pub fn payload_too_large() -> Self {
        Self::new(
            ErrorKind::PayloadTooLarge,
            codes::PAYLOAD_TOO_LARGE,
            format!("body exceeds {} bytes", crate::http::BODY_LIMIT),
        )
    }

    /// 503 `dependency_unavailable`: `dependency` names what failed.
    pub fn unavailable(dependency: &str, message: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::Unavailable, codes::DEPENDENCY_UNAVAILABLE, format!("{dependency} unavailable: {message}"))
    }

    /// 500 `internal`: logs the cause here and keeps it out of the answer.
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(%cause, %at, "internal error");
        Self::new(ErrorKind::Internal, codes::INTERNAL, "internal error")
    }

    /// True for errors a retry may cure (503, 502).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable | ErrorKind::BadGateway)
    }
}

/// The SQLSTATE a fenced table answers writes with (`read_only_sql_transaction`).
pub const MOVED_SQLSTATE: &str = "25006";

impl From<sqlx::Error> for Error {
    #[track_caller]
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => {
                tracing::warn!(error = %e, "database unavailable");
                Error::unavailable("database", "the database did not answer")
            }
            // A module's tables fenced by `archlab migrate`: its rows live in another database
            // now, and this process is still bound to the old one until it is replaced.
            sqlx::Error::Database(db) if db.code().as_deref() == Some(MOVED_SQLSTATE) => {
                tracing::warn!(error = %e, "write refused: the module has moved");
                Error::unavailable("database", db.message())
            }
            _ => Error::internal(e),
        }
    }
}

/// The JSON body of every error answer: `{"error": {"code", "message", "trace_id"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine code.
    pub code: String,
    /// Human message.
    pub message: String,
    /// The request's trace (32 lowercase hex digits): `archlab traces show <trace_id>`.
    /// Present whenever the answering process runs with telemetry, as every binary does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false, pattern = "^[0-9a-f]{32}$")]
    pub trace_id: Option<String>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // Built inside the request's span (see `http::edge`), so the id names this request's trace.
        let trace_id = crate::trace::current_trace_id();
        let body = ErrorBody { error: ErrorDetail { code: self.code.into_owned(), message: self.message, trace_id } };
        let mut response = (self.kind.status(), axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, retry_after_secs(wait).into());
        }
        response
    }
}

/// `Retry-After` in whole seconds, rounded up and never 0 (0 would invite an instant retry).
fn retry_after_secs(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kinds_name_is_its_json_name_and_parses_back() {
        for status in [400, 401, 404, 405, 409, 413, 415, 422, 429, 500, 502, 503] {
            let kind = ErrorKind::from_status(StatusCode::from_u16(status).unwrap());
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str(), "{kind:?}");
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(ErrorKind::PayloadTooLarge.as_str(), "payload_too_large");
        assert!("PayloadTooLarge".parse::<ErrorKind>().is_err());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let secs = |ms| retry_after_secs(Duration::from_millis(ms));
        assert_eq!([secs(0), secs(1), secs(999), secs(1000), secs(1001), secs(179_500)], [1, 1, 1, 1, 2, 180]);
    }

    #[test]
    fn an_error_with_a_retry_hint_answers_retry_after() {
        let limited = Error::too_many_requests("rate_limited", "slow down", Duration::from_millis(2500));
        let response = limited.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "3");
        let plain = Error::validation("no").into_response();
        assert!(plain.headers().get(http::header::RETRY_AFTER).is_none(), "no hint, no header");
    }
}
