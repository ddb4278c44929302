//! The generic error codes: those any edge or any domain may answer.
//!
//! A domain's own codes live in that domain crate's `codes` module, declared with
//! [`error_codes!`](crate::error_codes); every module's `ALL` is checked against the table
//! in `docs/api.md` (see `shared/conformance/tests/error_codes.rs`), so the docs cannot
//! drift from what the code answers.

/// Declare error codes: one `pub const` each, and `ALL` listing every one of them.
///
/// ```
/// mod codes {
///     archlab_kernel::error_codes! {
///         /// 409: the name is already used.
///         NAME_TAKEN = "name_taken";
///     }
/// }
/// assert_eq!(codes::ALL, [codes::NAME_TAKEN]);
/// ```
#[macro_export]
macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal;)+) => {
        $($(#[$doc])* pub const $name: &str = $code;)+
        /// Every code of this module.
        pub const ALL: &[&str] = &[$($name),+];
    };
}

crate::error_codes! {
    /// 400: a request path that is not canonical (see [`require_canonical_path`](crate::http::require_canonical_path)).
    INVALID_PATH = "invalid_path";
    /// 400: the body is not valid JSON.
    MALFORMED_JSON = "malformed_json";
    /// 400: the request body could not be read at all (the gateway reads it to forward it).
    UNREADABLE_BODY = "unreadable_body";
    /// 401: no usable identity (see [`Error::unauthorized`](crate::Error::unauthorized)).
    UNAUTHORIZED = "unauthorized";
    /// 404: no such route, or no such resource for this caller.
    NOT_FOUND = "not_found";
    /// 405: known path, wrong method.
    METHOD_NOT_ALLOWED = "method_not_allowed";
    /// 413: a body over [`BODY_LIMIT`](crate::http::BODY_LIMIT).
    PAYLOAD_TOO_LARGE = "payload_too_large";
    /// 415: a JSON body without `Content-Type: application/json`.
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type";
    /// 422: a field missing, mistyped, unknown or outside its rules.
    VALIDATION_FAILED = "validation_failed";
    /// 503: a dependency of ours failed (see [`Error::unavailable`](crate::Error::unavailable)).
    DEPENDENCY_UNAVAILABLE = "dependency_unavailable";
    /// 500: a bug; the answer never says more (see [`Error::internal`](crate::Error::internal)).
    INTERNAL = "internal";
}
