//! The shared [`Error`] across a gRPC boundary and back, unchanged.
//!
//! In the monolith a port's error is a value returned by a function call. Here it crosses a
//! network, so it is flattened into a `tonic::Status`: the gRPC code is the nearest standard
//! one (for generic gRPC tooling), and the exact `kind` and `code` ride along in metadata
//! (`x-archlab-kind`, `x-archlab-code`) with the message as the status message. The caller
//! restores the very error the service returned, so a remote `not_found` reads exactly like
//! an in-process one. Anything else that can go wrong on the way (connection refused, a
//! timeout, a status from something that is not an archlab service) becomes `Unavailable`,
//! naming the dependency.

use archlab_kernel::{Error, ErrorKind};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// Metadata key carrying the exact [`ErrorKind`] (snake_case, as in JSON).
pub const KIND_KEY: &str = "x-archlab-kind";
/// Metadata key carrying the exact error `code`.
pub const CODE_KEY: &str = "x-archlab-code";
/// Metadata key carrying an error's retry hint, in milliseconds.
pub const RETRY_AFTER_KEY: &str = "x-archlab-retry-after-ms";

/// The gRPC code a kind is reported as; the exact kind travels in metadata.
pub fn grpc_code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::BadRequest | ErrorKind::Unprocessable | ErrorKind::UnsupportedMediaType => Code::InvalidArgument,
        ErrorKind::Unauthorized => Code::Unauthenticated,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::MethodNotAllowed => Code::Unimplemented,
        ErrorKind::Conflict => Code::AlreadyExists,
        ErrorKind::PayloadTooLarge | ErrorKind::TooManyRequests => Code::ResourceExhausted,
        ErrorKind::BadGateway | ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

/// Codes of this crate's own errors. Both are raised while a client is built at start-up,
/// never answered to a request, so they are not in docs/api.md.
pub mod codes {
    archlab_kernel::error_codes! {
        /// 500: a peer's gRPC URL does not parse.
        INVALID_URL = "invalid_url";
        /// 500: a peer's HTTP URL or client settings are unusable.
        BAD_CONFIG = "bad_config";
    }
}

/// A port's error as the gRPC status a server answers with.
///
/// Called inside the call's server span (`archlab_kernel::trace::grpc_server_span`), it
/// records the status code there, and marks the span failed when the error is the server's
/// (internal, or a dependency of its own unavailable), as the RPC conventions say.
pub fn to_status(e: Error) -> Status {
    let span = tracing::Span::current();
    span.record("rpc.grpc.status_code", grpc_code(e.kind) as i32);
    if matches!(e.kind, ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::BadGateway) {
        archlab_kernel::trace::record_error(&span, &e.code);
    }
    let mut status = Status::new(grpc_code(e.kind), e.message);
    let md = status.metadata_mut();
    md.insert(KIND_KEY, MetadataValue::from_static(e.kind.as_str()));
    // Codes are snake_case ASCII by convention; one that is not still keeps its kind.
    match MetadataValue::try_from(e.code.as_ref()) {
        Ok(code) => {
            md.insert(CODE_KEY, code);
        }
        Err(_) => tracing::warn!(code = %e.code, "error code is not valid gRPC metadata; sent without it"),
    }
    if let Some(wait) = e.retry_after {
        md.insert(RETRY_AFTER_KEY, MetadataValue::from(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)));
    }
    status
}

/// The error a client returns for `status`: the exact server error when it carries archlab
/// metadata, otherwise `Unavailable` naming `dependency` (transport failure, timeout, a
/// status from something that is not an archlab service).
pub fn from_status(status: &Status, dependency: &str) -> Error {
    let md = status.metadata();
    let kind = md.get(KIND_KEY).and_then(|v| v.to_str().ok()).and_then(|name| name.parse::<ErrorKind>().ok());
    if let Some(kind) = kind {
        let code = md.get(CODE_KEY).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let code = code.unwrap_or_else(|| kind.as_str().to_owned());
        let error = Error::new(kind, code, status.message());
        let retry_after = md.get(RETRY_AFTER_KEY).and_then(|v| v.to_str().ok()?.parse().ok());
        return match retry_after {
            Some(ms) => error.with_retry_after(std::time::Duration::from_millis(ms)),
            None => error,
        };
    }
    // The details are for the operator; the caller learns which dependency failed and how.
    tracing::warn!(
        dependency,
        grpc_code = ?status.code(),
        message = status.message(),
        source = ?std::error::Error::source(status),
        "remote call failed"
    );
    Error::unavailable(dependency, format_args!("call failed ({:?})", status.code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_error_crosses_grpc_with_its_kind_code_and_retry_hint() {
        let limited = Error::too_many_requests("rate_limited", "slow down", Duration::from_millis(1500));
        let status = to_status(limited.clone());
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(from_status(&status, "auth-service"), limited);
        let plain = Error::validation("no");
        assert_eq!(from_status(&to_status(plain.clone()), "auth-service"), plain, "no hint stays no hint");
    }
}
