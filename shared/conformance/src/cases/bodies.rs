//! Request bodies on every JSON endpoint: the `Content-Type`, malformed-JSON and object rules that
//! docs/api.md states once for all of them.

use serde_json::{Value, json};

use crate::Target;
use crate::api::{Api, Method, PASSWORD, purchase_body, unique_email, unique_key};

/// A JSON body sent without `Content-Type: application/json` answers 415, on every JSON endpoint.
pub async fn json_body_without_json_content_type_is_415<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let key = unique_key();
    let signup = json!({ "email": unique_email(), "password": PASSWORD, "name": "Ada" });
    let login = json!({ "email": user.email, "password": PASSWORD });
    let patch = json!({ "name": "Grace" });
    let buy = purchase_body(100, "USD");
    let auth = format!("Bearer {}", user.token);
    let endpoints: [(Method, &str, &Value, bool); 4] = [
        (Method::POST, "/api/auth/signup", &signup, false),
        (Method::POST, "/api/auth/login", &login, false),
        (Method::PATCH, "/api/users/me", &patch, true),
        (Method::POST, "/api/payments", &buy, true),
    ];
    for (method, path, body, authed) in endpoints {
        let bytes = serde_json::to_vec(body).expect("serialize");
        for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            let mut headers: Vec<(&str, &[u8])> = vec![("idempotency-key", key.as_bytes())];
            if authed {
                headers.push(("authorization", auth.as_bytes()));
            }
            if let Some(ct) = content_type {
                headers.push(("content-type", ct.as_bytes()));
            }
            api.send(method.clone(), path, &headers, Some(bytes.clone())).await.expect_error(
                415,
                "unsupported_media_type",
                &format!("{method} {path} with Content-Type {content_type:?}"),
            );
        }
    }
    // Nothing above took effect.
    assert_eq!(api.payment_list(&user.token).await, Vec::<Value>::new());
    let me = api.get_me(&user.token).await.expect_json(200, "profile after 415s");
    assert_eq!(me["name"], user.name, "a 415 PATCH changed nothing");
}

/// A body that is not valid JSON answers 400 `malformed_json`, on every JSON endpoint.
pub async fn malformed_json_body_is_400<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let key = unique_key();
    let auth = format!("Bearer {}", user.token);
    let endpoints = [
        (Method::POST, "/api/auth/signup", false),
        (Method::POST, "/api/auth/login", false),
        (Method::PATCH, "/api/users/me", true),
        (Method::POST, "/api/payments", true),
    ];
    let garbage: [&[u8]; 5] =
        [b"", b"{", br#"{"email": "a@b.co", "password": "#, b"not json at all", br#"{"name": "x"} trailing"#];
    for (method, path, authed) in endpoints {
        for body in garbage {
            let mut headers: Vec<(&str, &[u8])> =
                vec![("content-type", b"application/json"), ("idempotency-key", key.as_bytes())];
            if authed {
                headers.push(("authorization", auth.as_bytes()));
            }
            api.send(method.clone(), path, &headers, Some(body.to_vec())).await.expect_error(
                400,
                "malformed_json",
                &format!("{method} {path} with body {:?}", String::from_utf8_lossy(body)),
            );
        }
    }
}

/// A JSON array where the body (or a field) is an object answers 422 `validation_failed`, on
/// every JSON endpoint, though serde alone would read `[a, b]` as the struct's fields in order.
pub async fn json_array_for_an_object_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let auth = format!("Bearer {}", user.token);
    let key = unique_key();
    let endpoints: [(Method, &str, Value, bool); 5] = [
        (Method::POST, "/api/auth/signup", json!([unique_email(), PASSWORD, "Ada"]), false),
        (Method::POST, "/api/auth/login", json!([user.email, PASSWORD]), false),
        (Method::PATCH, "/api/users/me", json!(["Grace", null]), true),
        (Method::PATCH, "/api/users/me", json!({ "preferences": [true, true] }), true),
        (Method::POST, "/api/payments", json!([100, "USD"]), true),
    ];
    for (method, path, body, authed) in endpoints {
        let mut headers: Vec<(&str, &[u8])> =
            vec![("content-type", b"application/json"), ("idempotency-key", key.as_bytes())];
        if authed {
            headers.push(("authorization", auth.as_bytes()));
        }
        let bytes = serde_json::to_vec(&body).expect("serialize");
        api.send(method.clone(), path, &headers, Some(bytes)).await.expect_error(
            422,
            "validation_failed",
            &format!("{method} {path} with body {body}"),
        );
    }
    // Nothing above took effect.
    assert_eq!(api.payment_list(&user.token).await, Vec::<Value>::new());
    let me = api.get_me(&user.token).await.expect_json(200, "profile after the 422s");
    assert_eq!((&me["name"], &me["preferences"]["marketing_emails"]), (&json!(user.name), &json!(false)), "{me}");
}
