//! The HTTP edge every router shares, driven through `tower::ServiceExt::oneshot`.
//!
//! Covers: each `ErrorKind` answers with its documented status and the
//! `{"error": {"code", "message"}}` body; a 500 never shows its cause; the `http::Json`
//! extractor turns malformed JSON, a wrong content type, a missing field and an oversized
//! body into 400, 415, 422 and 413 in that shape; `http::edge` answers unknown routes and
//! methods in JSON too, and refuses a non-canonical path before any of it; path ids, bearer tokens and the authenticated `Caller` are
//! checked the same way.

use archlab_kernel::http::{Authenticator, BODY_LIMIT, BearerToken, Caller, IdPath, Json, edge, with_authenticator};
use archlab_kernel::{Error, ErrorKind};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

#[tokio::test]
async fn every_error_kind_answers_with_its_status_and_the_json_error_shape() {
    let cases = [
        (ErrorKind::BadRequest, 400),
        (ErrorKind::Unauthorized, 401),
        (ErrorKind::NotFound, 404),
        (ErrorKind::MethodNotAllowed, 405),
        (ErrorKind::Conflict, 409),
        (ErrorKind::PayloadTooLarge, 413),
        (ErrorKind::UnsupportedMediaType, 415),
        (ErrorKind::Unprocessable, 422),
        (ErrorKind::BadGateway, 502),
        (ErrorKind::Unavailable, 503),
        (ErrorKind::Internal, 500),
    ];
    for (kind, status) in cases {
        let response = Error::new(kind, "some_code", "what happened").into_response();

        assert_eq!(response.status().as_u16(), status, "{kind:?}");
        assert_eq!(ErrorKind::from_status(response.status()), kind, "{kind:?} does not round-trip");
        assert_json_content_type(&response);
        assert_eq!(body_json(response).await, json!({"error": {"code": "some_code", "message": "what happened"}}));
    }
}

#[tokio::test]
async fn the_named_constructors_carry_their_codes() {
    let cases = [
        (Error::validation("name must not be empty"), 422, "validation_failed"),
        (Error::unauthorized("no token"), 401, "unauthorized"),
        (Error::not_found("user"), 404, "not_found"),
        (Error::conflict("email_taken", "taken"), 409, "email_taken"),
        (Error::unavailable("database", "down"), 503, "dependency_unavailable"),
    ];
    for (error, status, code) in cases {
        let response = error.clone().into_response();
        assert_eq!(response.status().as_u16(), status, "{error:?}");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["message"], error.message);
    }
    assert!(Error::unavailable("database", "down").is_transient());
    assert!(Error::new(ErrorKind::BadGateway, "x", "y").is_transient());
    assert!(!Error::not_found("user").is_transient());
}

#[tokio::test]
async fn an_internal_error_never_shows_its_cause() {
    let response = Error::internal("password=hunter2 at db.rs:42").into_response();

    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = String::from_utf8(body_bytes(response).await).unwrap();
    assert!(!text.contains("hunter2"), "the cause leaked: {text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"error": {"code": "internal", "message": "internal error"}})
    );
}

#[tokio::test]
async fn a_valid_json_body_reaches_the_handler() {
    let response = app().oneshot(json_post(r#"{"name": "Ada", "age": 36}"#)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await, json!({"hello": "Ada", "age": 36}));
}

#[tokio::test]
async fn malformed_json_is_a_400_malformed_json() {
    for body in [r#"{"name": "Ada""#, "not json at all", ""] {
        let response = app().oneshot(json_post(body)).await.unwrap();
        assert_error(response, 400, "malformed_json").await;
    }
}

#[tokio::test]
async fn malformed_json_wins_over_a_missing_field() {
    // `{"age": 1,` both misses `name` and is not JSON: syntax is reported first.
    let response = app().oneshot(json_post(r#"{"age": 1,"#)).await.unwrap();
    assert_error(response, 400, "malformed_json").await;
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_a_415() {
    let wrong = Request::post("/echo")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"name": "Ada", "age": 36}"#))
        .unwrap();
    assert_error(app().oneshot(wrong).await.unwrap(), 415, "unsupported_media_type").await;

    let missing = Request::post("/echo").body(Body::from(r#"{"name": "Ada", "age": 36}"#)).unwrap();
    assert_error(app().oneshot(missing).await.unwrap(), 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn a_missing_or_mistyped_field_is_a_422_validation_failed() {
    for body in [r#"{"name": "Ada"}"#, r#"{"name": "Ada", "age": "old"}"#, r#"[1, 2]"#] {
        let response = app().oneshot(json_post(body)).await.unwrap();
        let message = assert_error(response, 422, "validation_failed").await;
        assert!(!message.is_empty(), "{body}: a 422 should say what is wrong");
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413_at_the_edge() {
    let filler = "x".repeat(BODY_LIMIT);
    let body = format!(r#"{{"name": "{filler}", "age": 1}}"#);
    assert!(body.len() > 64 * 1024);

    let response = edge(app()).oneshot(json_post(&body)).await.unwrap();

    assert_error(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_accepted() {
    let overhead = r#"{"name": "", "age": 1}"#.len();
    let body = format!(r#"{{"name": "{}", "age": 1}}"#, "x".repeat(BODY_LIMIT - overhead));
    assert_eq!(body.len(), BODY_LIMIT);

    let response = edge(app()).oneshot(json_post(&body)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_edge_answers_unknown_routes_and_methods_in_json() {
    let response = edge(app()).oneshot(json_post_to("/nowhere", "{}")).await.unwrap();
    assert_error(response, 404, "not_found").await;

    let get = Request::get("/echo").body(Body::empty()).unwrap();
    assert_error(edge(app()).oneshot(get).await.unwrap(), 405, "method_not_allowed").await;
}

#[tokio::test]
async fn the_edge_refuses_a_non_canonical_path_before_any_route_fallback_or_405() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let router = Router::new().route(
        "/items/{id}",
        get(move || async move {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            "reached"
        }),
    );
    // Matched by `/items/{id}` (GET), only by the fallback, and by the route with the wrong method.
    for (method, uri) in [
        ("GET", r"/items/..\..\internal"),
        ("GET", "/items/%2e%2e"),
        ("GET", "/items/x;jsessionid=1"),
        ("GET", "/items/../../internal/users"),
        ("GET", "//items/x"),
        ("POST", "/items/%2E"),
    ] {
        let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        let message = assert_error(edge(router.clone()).oneshot(request).await.unwrap(), 400, "invalid_path").await;
        assert!(message.starts_with("the path is not canonical"), "{uri}: {message}");
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0, "no handler ran");
    let ok = edge(router).oneshot(get_request("/items/x", None)).await.unwrap();
    assert_eq!(body_bytes(ok).await, b"reached", "a canonical path still reaches its route");
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_a_422() {
    let app = Router::new().route("/items/{id}", get(|IdPath(id): IdPath| async move { id.to_string() }));
    let id = Uuid::new_v4();

    let ok = app.clone().oneshot(get_request(&format!("/items/{id}"), None)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(body_bytes(ok).await, id.to_string().into_bytes());

    let bad = app.oneshot(get_request("/items/42", None)).await.unwrap();
    assert_error(bad, 422, "validation_failed").await;
}

#[tokio::test]
async fn bearer_tokens_must_be_present_and_well_formed() {
    let app = Router::new().route("/me", get(|BearerToken(t): BearerToken| async move { t }));

    let ok = app.clone().oneshot(get_request("/me", Some("Bearer abc123"))).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(body_bytes(ok).await, b"abc123");

    let too_long = format!("Bearer {}", "t".repeat(257));
    for header in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer "), Some("bearer abc123"), Some(too_long.as_str())] {
        let response = app.clone().oneshot(get_request("/me", header)).await.unwrap();
        assert_error(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn the_caller_comes_from_the_installed_authenticator() {
    let routes = || Router::new().route("/whoami", get(|caller: Caller| async move { caller.user_id.to_string() }));
    let user_id = Uuid::new_v4();
    let app = with_authenticator(routes(), Arc::new(OneUser { token: "letmein", user_id }));

    let ok = app.clone().oneshot(get_request("/whoami", Some("Bearer letmein"))).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(body_bytes(ok).await, user_id.to_string().into_bytes());

    let refused = app.oneshot(get_request("/whoami", Some("Bearer guess"))).await.unwrap();
    assert_error(refused, 401, "unauthorized").await;

    // A router without an authenticator is a wiring bug: a 500 that says nothing more.
    let unwired = routes().oneshot(get_request("/whoami", Some("Bearer letmein"))).await.unwrap();
    let message = assert_error(unwired, 500, "internal").await;
    assert_eq!(message, "internal error");
}

// --- helpers ---

/// Lets exactly one token in, as `user_id`.
struct OneUser {
    token: &'static str,
    user_id: Uuid,
}

#[async_trait]
impl Authenticator for OneUser {
    async fn authenticate(&self, request: &axum::http::request::Parts) -> archlab_kernel::Result<Caller> {
        let BearerToken(token) = BearerToken::from_headers(&request.headers)?;
        if token != self.token {
            return Err(Error::unauthorized("unknown token"));
        }
        Ok(Caller { user_id: self.user_id })
    }
}

fn get_request(path: &str, authorization: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.body(Body::empty()).unwrap()
}

#[derive(Deserialize)]
struct Person {
    name: String,
    age: u32,
}

/// A one-route app whose handler takes the lab's `Json` extractor.
fn app() -> Router {
    Router::new()
        .route("/echo", post(|Json(p): Json<Person>| async move { axum::Json(json!({"hello": p.name, "age": p.age})) }))
}

fn json_post(body: &str) -> Request<Body> {
    json_post_to("/echo", body)
}

fn json_post_to(path: &str, body: &str) -> Request<Body> {
    Request::post(path).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_owned())).unwrap()
}

/// Checks status, content type and shape of an error answer; returns its message.
async fn assert_error(response: Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "expected {status} {code}");
    assert_json_content_type(&response);
    let body = body_json(response).await;
    assert_eq!(body["error"]["code"], code, "body: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("no message in {body}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "extra top-level fields: {body}");
    message.to_owned()
}

fn assert_json_content_type(response: &Response) {
    let ct = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    assert_eq!(ct, Some("application/json"));
}

async fn body_bytes(response: Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()
}

async fn body_json(response: Response) -> Value {
    serde_json::from_slice(&body_bytes(response).await).unwrap()
}
