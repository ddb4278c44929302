//! The crate's one error type, and the only place it becomes an HTTP answer.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Shorthand for results whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the simulator or in its [`Client`](crate::Client).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `Idempotency-Key` header is absent, empty, too long or not visible ASCII.
    #[error("an Idempotency-Key header of 1 to 255 visible ASCII characters is required")]
    MissingIdempotencyKey,
    /// The body, query or admin setting is malformed or out of range.
    #[error("{0}")]
    InvalidRequest(String),
    /// The idempotency key was already used with a different request body.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyConflict,
    /// The configured failure rate decided this request fails; nothing was recorded.
    #[error("simulated failure: nothing was recorded, retry with the same Idempotency-Key")]
    SimulatedFailure,
    /// No route matches the request.
    #[error("no such route")]
    NotFound,
    /// Appending to the durable log failed (server side).
    #[error("durable log: {0}")]
    Log(#[from] std::io::Error),
    /// The simulator answered the client with an error (client side).
    #[error("extsim answered {status}: {code}: {message}")]
    Rejected {
        /// HTTP status of the answer.
        status: u16,
        /// The `error.code` of the answer.
        code: String,
        /// The `error.message` of the answer.
        message: String,
    },
    /// The client could not reach the simulator or decode its answer (client side).
    #[error("extsim request failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// Wire shape of every error: `{"error":{"code","message"}}`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorDetail {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl Error {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::MissingIdempotencyKey => (StatusCode::BAD_REQUEST, "missing_idempotency_key"),
            Error::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            Error::IdempotencyConflict => (StatusCode::CONFLICT, "idempotency_conflict"),
            Error::SimulatedFailure => (StatusCode::SERVICE_UNAVAILABLE, "simulated_failure"),
            Error::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Error::Log(_) | Error::Rejected { .. } | Error::Http(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Logged here, never shown: a 500's internals stay on our side.
            tracing::error!(error = %self, "request failed");
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let body = ErrorBody { error: ErrorDetail { code: code.to_owned(), message } };
        (status, Json(body)).into_response()
    }
}
