//! What a deployment answers without any domain: `/health`, `/ready`, and unknown routes and
//! wrong methods in the API's JSON error shape.

use serde_json::json;
use uuid::Uuid;

use crate::Target;
use crate::api::{Api, Method};
use crate::shape;

/// `GET /health` answers 200 `{"status": "ok"}`.
pub async fn health_is_ok<T: Target>(t: &T) {
    let api = Api::new(t);
    let body = api.get("/health", None).await.expect_json(200, "GET /health");
    assert_eq!(body, json!({ "status": "ok" }));
}

/// `GET /ready` answers 200 `{"status": "ready", "checks": {name: "ok", ...}}`.
pub async fn ready_is_ready<T: Target>(t: &T) {
    let api = Api::new(t);
    let body = api.get("/ready", None).await.expect_json(200, "GET /ready");
    shape::exact_keys(&body, &["status", "checks"], "GET /ready");
    assert_eq!(body["status"], "ready", "{body}");
    let checks = body["checks"].as_object().unwrap_or_else(|| panic!("GET /ready: checks must be an object: {body}"));
    assert!(!checks.is_empty(), "GET /ready: a ready deployment names what it checked: {body}");
    for (name, result) in checks {
        assert_eq!(result, "ok", "GET /ready: check {name} in {body}");
    }
}

/// Unknown routes answer 404 `not_found` with the JSON error body.
pub async fn unknown_route_is_404<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for path in ["/nope", "/health/extra"] {
        api.get(path, None).await.expect_error(404, "not_found", &format!("GET {path}"));
    }
    for (method, path) in [
        (Method::GET, "/api/nope"),
        (Method::GET, "/api/users/me/extra"),
        (Method::POST, "/api/auth/nope"),
        (Method::GET, "/api/payments/x/y"),
    ] {
        api.request(method.clone(), path, Some(&user.token), None, None).await.expect_error(
            404,
            "not_found",
            &format!("{method} {path} with a token"),
        );
    }
}

/// Known paths with the wrong method answer 405 `method_not_allowed` with the JSON error body.
pub async fn wrong_method_is_405<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for (method, path) in [
        (Method::DELETE, "/api/auth/signup".to_owned()),
        (Method::GET, "/api/auth/login".to_owned()),
        (Method::GET, "/api/auth/logout".to_owned()),
        (Method::DELETE, "/api/users/me".to_owned()),
        (Method::PUT, "/api/payments".to_owned()),
        (Method::DELETE, format!("/api/payments/{}", Uuid::new_v4())),
        (Method::POST, "/api/notifications".to_owned()),
        (Method::POST, "/health".to_owned()),
    ] {
        api.request(method.clone(), &path, Some(&user.token), None, None).await.expect_error(
            405,
            "method_not_allowed",
            &format!("{method} {path} with a token"),
        );
    }
}
