//! Bearer authentication on every protected route: a missing, garbled, empty or
//! wrong-scheme credential answers 401 on each of them, whatever the request otherwise holds.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::Target;
use crate::api::{Api, Method, purchase_body, unique_key};

/// The protected routes, each with a body that would otherwise be acceptable.
fn protected_routes() -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/api/users/me".to_owned(), None),
        (Method::PATCH, "/api/users/me".to_owned(), Some(json!({}))),
        (Method::GET, format!("/api/users/{}", Uuid::new_v4()), None),
        (Method::POST, "/api/payments".to_owned(), Some(purchase_body(100, "USD"))),
        (Method::GET, "/api/payments".to_owned(), None),
        (Method::GET, format!("/api/payments/{}", Uuid::new_v4()), None),
        (Method::GET, "/api/notifications".to_owned(), None),
        (Method::POST, "/api/auth/logout".to_owned(), None),
    ]
}

/// Sends each protected route with `authorization` (or none) and expects 401 `unauthorized`.
async fn expect_unauthorized_everywhere(api: &Api, authorization: Option<&[u8]>, context: &str) {
    let key = unique_key();
    for (method, path, body) in protected_routes() {
        let mut headers: Vec<(&str, &[u8])> = vec![("idempotency-key", key.as_bytes())];
        if let Some(auth) = authorization {
            headers.push(("authorization", auth));
        }
        let bytes = body.map(|b| {
            headers.push(("content-type", b"application/json"));
            serde_json::to_vec(&b).expect("serialize")
        });
        api.send(method.clone(), &path, &headers, bytes).await.expect_error(
            401,
            "unauthorized",
            &format!("{context}: {method} {path}"),
        );
    }
}

/// Every protected route answers 401 `unauthorized` without an `Authorization` header.
pub async fn missing_authorization_is_401<T: Target>(t: &T) {
    let api = Api::new(t);
    expect_unauthorized_everywhere(&api, None, "no Authorization header").await;
}

/// Tokens the deployment never issued answer 401 `unauthorized`.
pub async fn garbled_token_is_401<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let tampered = {
        let mut s = user.token.clone();
        let last = s.pop().expect("non-empty token");
        s.push(if last == 'A' { 'B' } else { 'A' });
        s
    };
    for token in
        ["garbage".to_owned(), Uuid::new_v4().to_string(), "0".repeat(64), tampered, format!("{}x", user.token)]
    {
        let auth = format!("Bearer {token}");
        expect_unauthorized_everywhere(&api, Some(auth.as_bytes()), &format!("Authorization {auth:?}")).await;
    }
}

/// `Bearer` with an empty token answers 401 `unauthorized`.
pub async fn empty_bearer_token_is_401<T: Target>(t: &T) {
    let api = Api::new(t);
    for auth in ["Bearer ", "Bearer", ""] {
        expect_unauthorized_everywhere(&api, Some(auth.as_bytes()), &format!("Authorization {auth:?}")).await;
    }
}

/// A valid token under another scheme, or without one, answers 401 `unauthorized`.
pub async fn wrong_auth_scheme_is_401<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for auth in [
        // "user:password" in Base64.
        "Basic dXNlcjpwYXNzd29yZA==".to_owned(),
        format!("Basic {}", user.token),
        format!("Token {}", user.token),
        user.token.clone(),
    ] {
        api.send(Method::GET, "/api/users/me", &[("authorization", auth.as_bytes())], None).await.expect_error(
            401,
            "unauthorized",
            &format!("GET /api/users/me with Authorization {auth:?}"),
        );
    }
    api.get_me(&user.token).await.expect_json(200, "the same token under Bearer");
}
