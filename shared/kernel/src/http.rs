//! The HTTP edge shared by every router in both builds.
//!
//! Every way a request can be malformed — a path that is not canonical, bad JSON, wrong
//! content type, oversized body, a path id that is not a UUID, a missing or garbled token, an
//! unknown route — ends here as the same `{"error": {"code", "message"}}` shape, so the
//! monolith and the gateway answer bad input identically.
//!
//! `path` (`shared/kernel/src/http/path.rs`) holds the canonical-path rule [`edge`] enforces.

mod path;

pub use path::require_canonical_path;

use crate::{Error, ErrorKind, Result, codes};
use async_trait::async_trait;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tracing::Instrument;
use uuid::Uuid;

/// Largest request body accepted anywhere: 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body whose rejections use the lab's error shape.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Syntax first, then shape: a body that is not JSON at all is a 400 even when it
        // would also miss a field.
        let axum::Json(value) =
            axum::Json::<serde_json::Value>::from_request(req, state).await.map_err(json_rejection)?;
        // Shape through `strict_json`: a struct is read from an object only, never an array.
        crate::strict_json::from_value(value).map(Json).map_err(|e| Error::validation(e.to_string()))
    }
}

fn json_rejection(r: JsonRejection) -> Error {
    let detail = r.body_text();
    match r.status().as_u16() {
        413 => Error::payload_too_large(),
        415 => Error::new(
            ErrorKind::UnsupportedMediaType,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        ),
        422 => Error::validation(detail),
        _ => Error::new(ErrorKind::BadRequest, codes::MALFORMED_JSON, "the body is not valid JSON"),
    }
}

/// A UUID from the last path segment; anything else is a 422.
pub struct IdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| not_a_uuid())?;
        parse_id(&raw).map(IdPath)
    }
}

/// A path id (already percent-decoded) as [`IdPath`] reads it: any UUID spelling
/// `Uuid::parse_str` accepts, else 422 `validation_failed`. The gateway parses ids with it
/// too, so both builds refuse the same ids with the same answer.
pub fn parse_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| not_a_uuid())
}

fn not_a_uuid() -> Error {
    Error::validation("id must be a UUID")
}

/// The raw token of an `Authorization: Bearer <token>` header, shape-checked only.
#[derive(Clone)]
pub struct BearerToken(pub String);

impl BearerToken {
    /// Read the bearer token from headers; 401 when absent or garbled.
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Self> {
        let value = headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| Error::unauthorized("missing Authorization header"))?
            .to_str()
            .map_err(|_| Error::unauthorized("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256 && t.chars().all(|c| c.is_ascii_graphic()))
            .ok_or_else(|| Error::unauthorized("expected 'Authorization: Bearer <token>'"))?;
        Ok(Self(token.to_owned()))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Self::from_headers(&parts.headers)
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Whose request this is.
    pub user_id: Uuid,
}

/// Turns a request (its method, path and headers; never its body) into a [`Caller`].
///
/// The monolith binds this to the in-process session check, which reads only the headers;
/// behind the microservices gateway, services bind it to the gateway's signed identity
/// header, which is valid for one method and path only. Routes only see [`Caller`], so they
/// are the same code in both builds.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Who is calling, or 401.
    async fn authenticate(&self, request: &Parts) -> Result<Caller>;
}

/// The authenticator routes find in request extensions (see [`with_authenticator`]).
pub type SharedAuthenticator = Arc<dyn Authenticator>;

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let authn = parts
            .extensions
            .get::<SharedAuthenticator>()
            .cloned()
            .ok_or_else(|| Error::internal("no Authenticator installed on this router"))?;
        authn.authenticate(parts).await
    }
}

/// Make `authn` available to the [`Caller`] extractor of every route in `router`.
pub fn with_authenticator(router: Router, authn: SharedAuthenticator) -> Router {
    router.layer(axum::Extension(authn))
}

/// Wrap a composed public router with the lab-wide edge: non-canonical paths refused (400
/// `invalid_path`, before any route or fallback runs), body limit, JSON 404 and 405, and
/// around all of it the request's server span (continuing the caller's `traceparent`,
/// answering its own, see [`crate::trace`]).
///
/// The span and the body limit wrap the composed router once, as one service, rather than
/// being `Router::layer`ed onto it: a router layer wraps every route in another boxed
/// service, and each request then clones and boxes the whole nest of them on its way to the
/// handler. The result is a router that sends every request to that service; it is the
/// outermost piece of every build (serve it, `oneshot` it; nothing is merged into it).
pub fn edge(router: Router) -> Router {
    // Only a matched route knows its template; an empty router has none to name.
    let router = match router.has_routes() {
        true => router.route_layer(axum::middleware::from_fn(name_route)),
        false => router,
    };
    let router = router.fallback(|| async { Error::not_found("route") }).method_not_allowed_fallback(|| async {
        Error::new(ErrorKind::MethodNotAllowed, codes::METHOD_NOT_ALLOWED, "method not allowed on this path")
    });
    let service = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn(traced))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .service(router);
    Router::new().fallback_service(service)
}

/// The outermost [`edge`] layer: every request runs inside its server span, and every answer
/// (errors included, whose body repeats it as `trace_id`) carries that span's `traceparent`.
/// Inside the span, a non-canonical path is answered here (see [`require_canonical_path`])
/// and never reaches a route or a fallback.
///
/// One middleware rather than two stacked ones: each `from_fn` layer costs every request a
/// boxed future and a clone of the service under it, and the path check needs nothing the
/// span does not already hold.
async fn traced(request: Request, next: Next) -> Response {
    let span = crate::trace::http_server_span(request.method(), request.uri().path(), request.headers());
    let mut response = canonical_paths_only(request, next).instrument(span.clone()).await;
    crate::trace::record_http_status(&span, response.status());
    crate::trace::inject_span(&span, response.headers_mut());
    response
}

/// Name the server span after the route template that matched (`GET /api/payments/{id}`).
async fn name_route(request: Request, next: Next) -> Response {
    if let Some(route) = request.extensions().get::<axum::extract::MatchedPath>() {
        crate::trace::record_route(request.method(), route.as_str());
    }
    next.run(request).await
}

/// Answer a non-canonical path here (see [`require_canonical_path`]); pass the rest on.
async fn canonical_paths_only(request: Request, next: Next) -> Response {
    match require_canonical_path(request.uri().path()) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            tracing::debug!(reason = %refused.message, "refused a non-canonical path");
            refused.into_response()
        }
    }
}
