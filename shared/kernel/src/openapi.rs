//! How a route declares the errors it can answer, for the OpenAPI document.
//!
//! Every handler of the public API carries `#[utoipa::path]` next to its code (in each domain
//! crate's `http` module); its error answers are [`Answer`]s — a kind, which decides the
//! status, and a code from a `codes` module — grouped by what the handler does ([`answers`]).
//! [`error_responses!`](crate::error_responses) turns a list of them into one response per
//! status whose body is [`ErrorBody`](crate::ErrorBody) with `code` limited to the codes
//! declared for that status, so a client (or schemathesis) can check an answer's code
//! against the contract. The whole document is assembled in `shared/openapi`.

use crate::ErrorKind;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{AllOfBuilder, Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

/// Re-exported for [`error_responses!`](crate::error_responses), so callers need no import.
pub use utoipa;

/// The name of the bearer-token security scheme in the document's components.
pub const BEARER_SCHEME: &str = "bearer";

/// The name of the error body's schema in the document's components.
pub const ERROR_SCHEMA: &str = "ErrorBody";

/// A string of `min..=max` characters: JSON Schema counts code points, as `chars()` does.
pub fn text(min: usize, max: usize) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).min_length(Some(min)).max_length(Some(max))
}

/// `schema`, or `null` (an optional field that serde also reads from `null`).
pub fn nullable(schema: ObjectBuilder) -> Object {
    let mut built = schema.build();
    let types: Vec<Type> = match &built.schema_type {
        SchemaType::Type(t) => vec![t.clone(), Type::Null],
        SchemaType::Array(ts) => ts.iter().cloned().chain([Type::Null]).collect(),
        SchemaType::AnyValue => return built,
    };
    built.schema_type = SchemaType::from_iter(types);
    built
}

/// One error an operation can answer: its kind (and so its status) and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Decides the status.
    pub kind: ErrorKind,
    /// One of the `codes` constants.
    pub code: &'static str,
}

impl Answer {
    /// `code`, answered with `kind`'s status.
    pub const fn new(kind: ErrorKind, code: &'static str) -> Self {
        Self { kind, code }
    }
}

/// The answers that come with what a handler does, shared by every domain.
pub mod answers {
    use super::Answer;
    use crate::ErrorKind::*;
    use crate::codes::*;

    /// Every `/api` operation: a bug (500), a dependency down (503, the database or another
    /// module or service), a path that is not canonical (400, refused by the shared edge in
    /// both builds before any route), and what the gateway answers on any route it forwards
    /// before a service sees it: a body it cannot read (400) or one over the limit (413).
    pub const EVERY: &[Answer] = &[
        Answer::new(Internal, INTERNAL),
        Answer::new(BadRequest, INVALID_PATH),
        Answer::new(Unavailable, DEPENDENCY_UNAVAILABLE),
        Answer::new(BadRequest, UNREADABLE_BODY),
        Answer::new(PayloadTooLarge, PAYLOAD_TOO_LARGE),
    ];

    /// Operations reading a JSON body (`archlab_kernel::http::Json`).
    pub const JSON_BODY: &[Answer] = &[
        Answer::new(BadRequest, MALFORMED_JSON),
        Answer::new(PayloadTooLarge, PAYLOAD_TOO_LARGE),
        Answer::new(UnsupportedMediaType, UNSUPPORTED_MEDIA_TYPE),
        Answer::new(Unprocessable, VALIDATION_FAILED),
    ];

    /// Operations behind a bearer token.
    pub const BEARER: &[Answer] = &[Answer::new(Unauthorized, UNAUTHORIZED)];

    /// Any path of the document with a method it does not list (the edge's fallback); not
    /// an operation's answer, so the document holds it as a reusable response.
    pub const WRONG_METHOD: &[Answer] = &[Answer::new(MethodNotAllowed, METHOD_NOT_ALLOWED)];

    /// Operations on one resource by its `{id}` (`archlab_kernel::http::IdPath`): not a
    /// UUID (422), not the caller's or not there (404).
    pub const BY_ID: &[Answer] = &[Answer::new(Unprocessable, VALIDATION_FAILED), Answer::new(NotFound, NOT_FOUND)];
}

/// One response per status for the answers in `groups`, each code listed once.
pub fn responses(groups: &[&[Answer]]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    for answer in groups.iter().copied().flatten() {
        let codes = by_status.entry(answer.kind.status().as_u16()).or_default();
        if !codes.contains(&answer.code) {
            codes.push(answer.code);
        }
    }
    by_status.into_iter().map(|(status, codes)| (status.to_string(), response(status, &codes).into())).collect()
}

/// An error response whose `error.code` is one of `codes`.
fn response(status: u16, codes: &[&'static str]) -> Response {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let listed = codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    let narrowed = ObjectBuilder::new().property(
        "error",
        ObjectBuilder::new()
            .property("code", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.to_vec()))),
    );
    let schema = AllOfBuilder::new().item(Ref::from_schema_name(ERROR_SCHEMA)).item(narrowed);
    ResponseBuilder::new()
        .description(format!("{reason}: {listed} (see docs/api.md)"))
        .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
        .build()
}

/// Declare a type whose OpenAPI responses are the errors in the given answer groups, for
/// `#[utoipa::path(responses(..., ThatType))]`.
///
/// ```
/// use archlab_kernel::openapi::{Answer, answers};
/// use archlab_kernel::ErrorKind;
///
/// const TAKEN: &[Answer] = &[Answer::new(ErrorKind::Conflict, "name_taken")];
/// archlab_kernel::error_responses!(
///     /// What renaming can answer.
///     RenameErrors = [answers::EVERY, answers::JSON_BODY, TAKEN]
/// );
///
/// use archlab_kernel::openapi::utoipa::IntoResponses;
/// assert!(RenameErrors::responses().contains_key("409"));
/// ```
#[macro_export]
macro_rules! error_responses {
    ($(#[$doc:meta])* $vis:vis $name:ident = [$($group:expr),+ $(,)?]) => {
        $(#[$doc])*
        $vis struct $name;

        impl $crate::openapi::utoipa::IntoResponses for $name {
            fn responses() -> ::std::collections::BTreeMap<
                ::std::string::String,
                $crate::openapi::utoipa::openapi::RefOr<$crate::openapi::utoipa::openapi::Response>,
            > {
                $crate::openapi::responses(&[$($group),+])
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes;

    #[test]
    fn responses_group_codes_by_status_once_each() {
        let r = responses(&[answers::EVERY, answers::JSON_BODY, answers::BEARER]);
        let codes_of = |status: &str| -> Vec<String> {
            let json = serde_json::to_value(&r[status]).unwrap();
            let code =
                &json["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["properties"]["code"];
            code["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(codes_of("400"), [codes::INVALID_PATH, codes::UNREADABLE_BODY, codes::MALFORMED_JSON]);
        assert_eq!(codes_of("413"), [codes::PAYLOAD_TOO_LARGE], "listed once though two groups name it");
        assert_eq!(codes_of("401"), [codes::UNAUTHORIZED]);
        assert!(!r.contains_key("404"), "no group here answers 404");
    }
}
