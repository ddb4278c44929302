//! `POST /api/auth/login` and `POST /api/auth/logout`: tokens issued, refused and revoked.

use serde_json::json;

use crate::Target;
use crate::api::{Api, Method, PASSWORD, purchase_body, unique_email, unique_key};
use crate::shape;

/// Login answers 200 with exactly `{token, expires_at}`, a future RFC 3339 expiry and a token
/// that works and is not the signup token.
pub async fn login_returns_token_and_future_expiry<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let body = api.login(&user.email, &user.password).await.expect_json(200, "a valid login");
    shape::exact_keys(&body, &["token", "expires_at"], "login body");
    let expires = shape::timestamp(&body["expires_at"], "login expires_at");
    assert!(expires > chrono::Utc::now(), "expires_at must be in the future: {body}");
    let token = body["token"].as_str().unwrap_or_default();
    assert!(!token.is_empty(), "login token must be non-empty: {body}");
    assert_ne!(token, user.token, "each login is its own session");
    let me = api.get_me(token).await.expect_json(200, "GET /api/users/me with the login token");
    assert_eq!(me["user_id"], user.user_id, "the login token is the user's");
}

/// A wrong password answers 401 `invalid_credentials`.
pub async fn login_wrong_password_is_401<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for password in ["wrong password!", &format!("{PASSWORD} "), &PASSWORD.to_uppercase()] {
        api.login(&user.email, password).await.expect_error(
            401,
            "invalid_credentials",
            &format!("login with password {password:?}"),
        );
    }
}

/// An unknown e-mail answers 401 `invalid_credentials`, exactly like a wrong password.
pub async fn login_unknown_email_is_401<T: Target>(t: &T) {
    let api = Api::new(t);
    api.login(&unique_email(), PASSWORD).await.expect_error(401, "invalid_credentials", "login as an unknown e-mail");
}

/// Login finds the account whatever the e-mail's case and surrounding whitespace.
pub async fn login_email_is_case_insensitive<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for email in [user.email.to_uppercase(), format!("  {}  ", user.email)] {
        let body = api.login(&email, &user.password).await.expect_json(200, &format!("login as {email:?}"));
        let me = api
            .get_me(body["token"].as_str().unwrap_or_default())
            .await
            .expect_json(200, "GET /api/users/me with the login token");
        assert_eq!(me["user_id"], user.user_id, "login as {email:?}");
    }
}

/// A login body missing a field or of the wrong type answers 422.
pub async fn login_invalid_body_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for body in [
        json!({ "email": user.email }),
        json!({ "password": PASSWORD }),
        json!({ "email": user.email, "password": 12345678 }),
        json!({ "email": user.email, "password": PASSWORD, "remember": true }),
    ] {
        api.json_call(Method::POST, "/api/auth/login", None, &body).await.expect_error(
            422,
            "validation_failed",
            &format!("login with {body}"),
        );
    }
}

/// Logout answers 204 with no body; the token then answers 401 everywhere, logout included.
pub async fn logout_revokes_the_token<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let res = api.logout(&user.token).await;
    res.assert_status(204, "logout");
    assert!(res.body.is_empty(), "204 has no body, got {:?}", res.text());
    api.get_me(&user.token).await.expect_error(401, "unauthorized", "GET /api/users/me after logout");
    api.logout(&user.token).await.expect_error(401, "unauthorized", "a second logout");
    api.purchase(Some(&user.token), Some(&unique_key()), &purchase_body(100, "USD")).await.expect_error(
        401,
        "unauthorized",
        "a purchase after logout",
    );
}

/// Logging one session out leaves the user's other sessions working.
pub async fn logout_keeps_other_sessions<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let second = api.login(&user.email, &user.password).await.expect_json(200, "login");
    let second = second["token"].as_str().unwrap_or_default().to_owned();
    api.logout(&second).await.assert_status(204, "logout of the login session");
    api.get_me(&second).await.expect_error(401, "unauthorized", "the logged-out session");
    api.get_me(&user.token).await.expect_json(200, "the signup session after another session logged out");
    let third = api.login(&user.email, &user.password).await.expect_json(200, "login after a logout");
    api.get_me(third["token"].as_str().unwrap_or_default()).await.expect_json(200, "a session opened after a logout");
}
