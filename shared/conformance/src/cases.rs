//! Every conformance case, and the [`conformance_tests!`](crate::conformance_tests) macro that
//! lists them.
//!
//! A case is `pub async fn name<T: Target>(t: &T)` and panics, with the request and the answer
//! in the message, when the deployment strays from docs/api.md. Cases never assume a fresh
//! database: each one signs up its own users with unique e-mails, so they can run concurrently
//! against one shared deployment. When adding a case, add its name to the macro at the bottom
//! of this file; a unit test fails if a case is missing from the list.

use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Target;
use crate::api::{Api, Method, PASSWORD, purchase_body, unique_email, unique_key};
use crate::shape;

/// The limit the API puts on request bodies (docs/api.md: 413 "body over 64 KiB").
const BODY_LIMIT: usize = 64 * 1024;

/// A signup body of exactly `len` bytes: valid JSON whose name is padded to reach `len`.
fn signup_body_of_len(len: usize) -> Vec<u8> {
    let head = format!(r#"{{"email":"{}","password":"{PASSWORD}","name":""#, unique_email());
    let tail = r#""}"#;
    let pad = len.checked_sub(head.len() + tail.len()).expect("body length too small");
    let body = format!("{head}{}{tail}", "n".repeat(pad)).into_bytes();
    assert_eq!(body.len(), len);
    body
}

/// The receipts for `payment_id` among `notifications`.
fn receipts_for<'a>(notifications: &'a [Value], payment_id: &str) -> Vec<&'a Value> {
    notifications.iter().filter(|n| n["kind"] == "receipt" && n["payment_id"] == payment_id).collect()
}

/// Panics unless extsim holds exactly one charge keyed by `payment_id`.
async fn assert_charged_once(api: &Api, payment_id: &str, context: &str) {
    let charges = api.extsim_charges(payment_id).await;
    assert_eq!(
        charges.len(),
        1,
        "{context}: extsim must hold exactly one charge keyed by payment {payment_id}, got {charges:?}"
    );
    assert_eq!(
        charges[0]["idempotency_key"].as_str(),
        Some(payment_id),
        "{context}: the charge's idempotency_key must be the payment_id: {:?}",
        charges[0]
    );
}

// ---------------------------------------------------------------------------------------------
// signup

/// `POST /api/auth/signup` answers 201 with exactly `{user_id: uuid, token: non-empty}`.
pub async fn signup_returns_201_with_user_id_and_token<T: Target>(t: &T) {
    let api = Api::new(t);
    let body = api.signup(&unique_email(), PASSWORD, "Ada").await.expect_json(201, "a valid signup");
    shape::exact_keys(&body, &["user_id", "token"], "signup body");
    shape::uuid(&body["user_id"], "signup user_id");
    let token = body["token"].as_str().unwrap_or_default();
    assert!(!token.is_empty(), "signup token must be a non-empty string: {body}");
}

/// The signup token reads the new profile: e-mail trimmed and lower-cased, name trimmed,
/// status active, default preferences.
pub async fn signup_token_reads_own_profile_with_defaults<T: Target>(t: &T) {
    let api = Api::new(t);
    let email = unique_email();
    let messy = format!("  {}  ", email.to_uppercase());
    let body = api
        .signup(&messy, PASSWORD, "  Ada Lovelace  ")
        .await
        .expect_json(201, "signup with a padded, upper-case e-mail");
    let me = api
        .get_me(body["token"].as_str().unwrap_or_default())
        .await
        .expect_json(200, "GET /api/users/me with the signup token");
    shape::profile(&me, "profile after signup");
    assert_eq!(me["user_id"], body["user_id"], "profile user_id: {me}");
    assert_eq!(me["email"], email, "the e-mail is stored trimmed and lower-cased");
    assert_eq!(me["name"], "Ada Lovelace", "the name is stored trimmed");
    assert_eq!(me["status"], "active", "a new account is active");
    assert_eq!(me["preferences"], json!({ "email_receipts": true, "marketing_emails": false }), "default preferences");
}

/// A registered e-mail answers 409 `email_taken`, also in another case or padded.
pub async fn signup_duplicate_email_is_409<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for email in [user.email.clone(), user.email.to_uppercase(), format!(" {} ", user.email)] {
        api.signup(&email, PASSWORD, "Someone Else").await.expect_error(
            409,
            "email_taken",
            &format!("signup again as {email:?}"),
        );
    }
}

/// E-mails outside the rules answer 422 `validation_failed`; the longest legal one is accepted.
pub async fn signup_invalid_email_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let u = Uuid::new_v4().simple().to_string();
    let local = format!("x{u}");
    // A 254-character address with DNS-sized labels, and the same plus one character.
    let domain_of = |extra: usize| {
        format!("{}.{}.{}.{}.com", "a".repeat(60), "b".repeat(60), "c".repeat(60), "d".repeat(33 + extra))
    };
    let longest = format!("{local}@{}", domain_of(0));
    assert_eq!(longest.len(), 254);
    let too_long = format!("{local}@{}", domain_of(1));
    let invalid = [
        String::new(),
        format!("{u}.example.com"),
        format!("@{u}.example.com"),
        format!("{u}@"),
        format!("{u}@localhost"),
        format!("{u} x@example.com"),
        format!("{u}@exa mple.com"),
        format!("{u}@x@example.com"),
        format!("{u}\u{1}@example.com"),
        too_long,
    ];
    for email in invalid {
        api.signup(&email, PASSWORD, "Ada").await.expect_error(
            422,
            "validation_failed",
            &format!("signup as {email:?}"),
        );
    }
    api.signup(&longest, PASSWORD, "Ada").await.assert_status(201, "signup with a 254-character e-mail");
}

/// Passwords must be 8 to 128 characters: 7 and 129 answer 422, 8 and 128 answer 201.
pub async fn signup_password_length_rules<T: Target>(t: &T) {
    let api = Api::new(t);
    for len in [0, 7, 129] {
        api.signup(&unique_email(), &"p".repeat(len), "Ada").await.expect_error(
            422,
            "validation_failed",
            &format!("signup with a {len}-character password"),
        );
    }
    for len in [8, 128] {
        api.signup(&unique_email(), &"p".repeat(len), "Ada")
            .await
            .assert_status(201, &format!("signup with a {len}-character password"));
    }
}

/// Names must be 1 to 100 characters after trimming, with no control characters.
pub async fn signup_invalid_name_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    for name in [String::new(), "   ".to_owned(), "\t\n".to_owned(), "n".repeat(101), "Ada\u{7}Lovelace".to_owned()] {
        api.signup(&unique_email(), PASSWORD, &name).await.expect_error(
            422,
            "validation_failed",
            &format!("signup named {name:?}"),
        );
    }
    api.signup(&unique_email(), PASSWORD, &"n".repeat(100))
        .await
        .assert_status(201, "signup with a 100-character name");
}

/// A body missing any of `email`, `password`, `name` answers 422.
pub async fn signup_missing_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let full = json!({ "email": unique_email(), "password": PASSWORD, "name": "Ada" });
    for missing in ["email", "password", "name"] {
        let mut body = full.clone();
        body.as_object_mut().expect("object").remove(missing);
        api.signup_json(&body).await.expect_error(422, "validation_failed", &format!("signup without {missing}"));
    }
    api.signup_json(&json!({})).await.expect_error(422, "validation_failed", "signup with {}");
}

/// A field of the wrong JSON type answers 422.
pub async fn signup_mistyped_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    for body in [
        json!({ "email": unique_email(), "password": 12345678, "name": "Ada" }),
        json!({ "email": null, "password": PASSWORD, "name": "Ada" }),
        json!({ "email": unique_email(), "password": PASSWORD, "name": ["Ada"] }),
        json!({ "email": unique_email(), "password": PASSWORD, "name": true }),
    ] {
        api.signup_json(&body).await.expect_error(422, "validation_failed", &format!("signup with {body}"));
    }
}

/// An unknown field answers 422, and the account is not created.
pub async fn signup_unknown_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let email = unique_email();
    api.signup_json(&json!({ "email": email, "password": PASSWORD, "name": "Ada", "admin": true })).await.expect_error(
        422,
        "validation_failed",
        "signup with an unknown field",
    );
    api.signup(&email, PASSWORD, "Ada").await.assert_status(201, "the e-mail of a rejected signup is still free");
}

/// A rejected signup leaves nothing behind: the e-mail cannot log in and is still free.
pub async fn signup_rejected_input_creates_no_account<T: Target>(t: &T) {
    let api = Api::new(t);
    let email = unique_email();
    api.signup(&email, PASSWORD, "").await.expect_error(422, "validation_failed", "signup with an empty name");
    api.login(&email, PASSWORD).await.expect_error(401, "invalid_credentials", "login as the rejected signup");
    api.signup(&email, PASSWORD, "Ada").await.assert_status(201, "the e-mail of a rejected signup is still free");
}

/// `Content-Type: application/json; charset=utf-8` is JSON too.
pub async fn signup_accepts_json_content_type_with_charset<T: Target>(t: &T) {
    let api = Api::new(t);
    let body = json!({ "email": unique_email(), "password": PASSWORD, "name": "Ada" });
    let res = api
        .request(
            Method::POST,
            "/api/auth/signup",
            None,
            Some(serde_json::to_vec(&body).expect("serialize")),
            Some("application/json; charset=utf-8"),
        )
        .await
        .expect_json(201, "signup with a charset parameter");
    shape::uuid(&res["user_id"], "signup user_id");
}

/// A body over 64 KiB answers 413 `payload_too_large`; exactly 64 KiB is read (and then
/// rejected for its over-long name, not for its size).
pub async fn signup_body_over_64_kib_is_413<T: Target>(t: &T) {
    let api = Api::new(t);
    let over = signup_body_of_len(BODY_LIMIT + 1);
    api.request(Method::POST, "/api/auth/signup", None, Some(over), Some("application/json")).await.expect_error(
        413,
        "payload_too_large",
        "signup with a 64 KiB + 1 byte body",
    );
    let at_limit = signup_body_of_len(BODY_LIMIT);
    api.request(Method::POST, "/api/auth/signup", None, Some(at_limit), Some("application/json")).await.expect_error(
        422,
        "validation_failed",
        "signup with an exactly 64 KiB body (its name is too long)",
    );
}

/// Signup sends exactly one `welcome` notification, visible once the deployment has settled,
/// and settling again does not deliver it twice.
pub async fn signup_sends_exactly_one_welcome_notification<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for round in ["first", "second"] {
        t.settle().await;
        let list = api.notification_list(&user.token).await;
        assert_eq!(list.len(), 1, "after the {round} settle a new user has exactly one notification: {list:?}");
        shape::notification(&list[0], "welcome notification");
        assert_eq!(list[0]["kind"], "welcome", "{:?}", list[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// request bodies, on every JSON endpoint

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

// ---------------------------------------------------------------------------------------------
// login and logout

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

// ---------------------------------------------------------------------------------------------
// authentication on protected routes

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

// ---------------------------------------------------------------------------------------------
// users

/// PATCH changes name and preferences, answers the updated profile, and the change persists;
/// preferences merge field by field.
pub async fn patch_me_updates_name_and_preferences<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile before PATCH");
    let patched = api
        .patch_me(&user.token, &json!({ "name": "  Grace Hopper  ", "preferences": { "marketing_emails": true } }))
        .await
        .expect_json(200, "PATCH name and one preference");
    shape::profile(&patched, "PATCH answer");
    let mut expected = before.clone();
    expected["name"] = json!("Grace Hopper");
    expected["preferences"] = json!({ "email_receipts": true, "marketing_emails": true });
    assert_eq!(patched, expected, "PATCH answers the updated profile, other fields untouched");
    let after = api.get_me(&user.token).await.expect_json(200, "profile after PATCH");
    assert_eq!(after, expected, "the PATCH persisted");

    let patched = api
        .patch_me(&user.token, &json!({ "preferences": { "email_receipts": false } }))
        .await
        .expect_json(200, "PATCH the other preference");
    expected["preferences"] = json!({ "email_receipts": false, "marketing_emails": true });
    assert_eq!(patched, expected, "preferences merge field by field");
    let after = api.get_me(&user.token).await.expect_json(200, "profile after second PATCH");
    assert_eq!(after, expected, "the second PATCH persisted");
}

/// `PATCH {}` answers 200 with the profile unchanged.
pub async fn patch_me_empty_changes_nothing<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile before PATCH");
    for body in [json!({}), json!({ "preferences": {} })] {
        let patched = api.patch_me(&user.token, &body).await.expect_json(200, &format!("PATCH {body}"));
        assert_eq!(patched, before, "PATCH {body} changes nothing");
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile after PATCH {}");
    assert_eq!(after, before, "PATCH {{}} changes nothing");
}

/// PATCH with an invalid name answers 422 and changes nothing.
pub async fn patch_me_invalid_name_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile");
    for name in ["", "   ", &"n".repeat(101), "Ada\u{0}"] {
        api.patch_me(&user.token, &json!({ "name": name, "preferences": { "marketing_emails": true } }))
            .await
            .expect_error(422, "validation_failed", &format!("PATCH name {name:?}"));
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile");
    assert_eq!(after, before, "a rejected PATCH changes nothing at all");
}

/// PATCH with an unknown field, at the top or inside `preferences`, answers 422 and changes
/// nothing.
pub async fn patch_me_unknown_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile");
    for body in [
        json!({ "email": unique_email() }),
        json!({ "status": "suspended" }),
        json!({ "name": "Grace", "nickname": "amazing" }),
        json!({ "preferences": { "sms": true } }),
    ] {
        api.patch_me(&user.token, &body).await.expect_error(422, "validation_failed", &format!("PATCH {body}"));
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile");
    assert_eq!(after, before, "a rejected PATCH changes nothing at all");
}

/// PATCH with a field of the wrong type answers 422 and changes nothing.
pub async fn patch_me_mistyped_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let before = api.get_me(&user.token).await.expect_json(200, "profile");
    for body in [
        json!({ "name": 42 }),
        json!({ "preferences": { "email_receipts": "no" } }),
        json!({ "preferences": true }),
        json!([]),
    ] {
        api.patch_me(&user.token, &body).await.expect_error(422, "validation_failed", &format!("PATCH {body}"));
    }
    let after = api.get_me(&user.token).await.expect_json(200, "profile");
    assert_eq!(after, before, "a rejected PATCH changes nothing at all");
}

/// `GET /api/users/{own id}` answers the same profile as `/api/users/me`.
pub async fn get_user_by_own_id_is_200<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let me = api.get_me(&user.token).await.expect_json(200, "profile");
    let by_id = api
        .get(&format!("/api/users/{}", user.user_id), Some(&user.token))
        .await
        .expect_json(200, "GET /api/users/{own id}");
    assert_eq!(by_id, me, "the own profile by id equals /api/users/me");
}

/// Another user's id answers 404 `not_found` (never 403), as does an id nobody has.
pub async fn get_user_by_other_id_is_404<T: Target>(t: &T) {
    let api = Api::new(t);
    let alice = api.new_user().await;
    let bob = api.new_user().await;
    for id in [bob.user_id.clone(), Uuid::new_v4().to_string()] {
        api.get(&format!("/api/users/{id}"), Some(&alice.token)).await.expect_error(
            404,
            "not_found",
            &format!("GET /api/users/{id} as another user"),
        );
    }
}

/// A user id that is not a UUID answers 422 `validation_failed`.
pub async fn get_user_by_non_uuid_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for id in ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"] {
        api.get(&format!("/api/users/{id}"), Some(&user.token)).await.expect_error(
            422,
            "validation_failed",
            &format!("GET /api/users/{id}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// payments

/// A purchase answers 201 with exactly the payment shape and is charged once at extsim.
pub async fn purchase_returns_201_payment<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let payment = api
        .purchase(Some(&user.token), Some(&unique_key()), &purchase_body(1234, "EUR"))
        .await
        .expect_json(201, "a valid purchase");
    shape::payment(&payment, "purchase answer");
    assert_eq!(payment["status"], "succeeded", "{payment}");
    assert_eq!(payment["amount_cents"], 1234, "{payment}");
    assert_eq!(payment["currency"], "EUR", "{payment}");
    let pid = payment["payment_id"].as_str().unwrap_or_default();
    assert_charged_once(&api, pid, "a single purchase").await;
}

/// Every currency and both amount bounds are accepted and echoed back.
pub async fn purchase_accepts_each_currency_and_amount_bounds<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for (amount, currency) in [(1, "USD"), (100_000_000, "EUR"), (999, "GBP")] {
        let payment = api.buy(&user.token, amount, currency).await;
        shape::payment(&payment, "purchase answer");
        assert_eq!(
            (&payment["amount_cents"], &payment["currency"]),
            (&json!(amount), &json!(currency)),
            "purchase of {amount} {currency}: {payment}"
        );
    }
}

/// A purchase with no or an empty `Idempotency-Key` answers 400 `missing_idempotency_key`.
pub async fn purchase_without_idempotency_key_is_400<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for key in [None, Some("")] {
        api.purchase(Some(&user.token), key, &purchase_body(100, "USD")).await.expect_error(
            400,
            "missing_idempotency_key",
            &format!("purchase with Idempotency-Key {key:?}"),
        );
    }
    assert_eq!(api.payment_list(&user.token).await, Vec::<Value>::new(), "a rejected purchase records nothing");
}

/// Keys over 255 characters or not visible ASCII answer 400; a 255-character key is fine.
pub async fn purchase_with_unusable_idempotency_key_is_400<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let too_long = "k".repeat(256);
    let unusable: [&[u8]; 3] = [too_long.as_bytes(), b"has space", "cl\u{e9}".as_bytes()];
    for key in unusable {
        api.purchase_raw_key(Some(&user.token), Some(key), &purchase_body(100, "USD")).await.expect_error(
            400,
            "missing_idempotency_key",
            &format!("purchase with Idempotency-Key {:?}", String::from_utf8_lossy(key)),
        );
    }
    assert_eq!(api.payment_list(&user.token).await, Vec::<Value>::new(), "a rejected purchase records nothing");
    let longest = format!("{}{}", Uuid::new_v4().simple(), "k".repeat(255 - 32));
    assert_eq!(longest.len(), 255);
    api.purchase(Some(&user.token), Some(&longest), &purchase_body(100, "USD"))
        .await
        .assert_status(201, "purchase with a 255-character Idempotency-Key");
}

/// Amounts that are not integers from 1 to 100000000 answer 422 and charge nothing.
pub async fn purchase_invalid_amount_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for amount in [json!(0), json!(-1), json!(100_000_001), json!(1.5), json!("100"), json!(null)] {
        let body = json!({ "amount_cents": amount, "currency": "USD" });
        api.purchase(Some(&user.token), Some(&unique_key()), &body).await.expect_error(
            422,
            "validation_failed",
            &format!("purchase with amount_cents {amount}"),
        );
    }
    api.purchase(Some(&user.token), Some(&unique_key()), &json!({ "currency": "USD" })).await.expect_error(
        422,
        "validation_failed",
        "purchase without amount_cents",
    );
    assert_eq!(api.payment_list(&user.token).await, Vec::<Value>::new(), "a rejected purchase records nothing");
}

/// Currencies other than upper-case `USD`, `EUR`, `GBP` answer 422.
pub async fn purchase_invalid_currency_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for currency in [json!("XYZ"), json!("usd"), json!("Eur"), json!(""), json!(" USD"), json!(840), json!(null)] {
        let body = json!({ "amount_cents": 100, "currency": currency });
        api.purchase(Some(&user.token), Some(&unique_key()), &body).await.expect_error(
            422,
            "validation_failed",
            &format!("purchase with currency {currency}"),
        );
    }
    api.purchase(Some(&user.token), Some(&unique_key()), &json!({ "amount_cents": 100 })).await.expect_error(
        422,
        "validation_failed",
        "purchase without currency",
    );
    assert_eq!(api.payment_list(&user.token).await, Vec::<Value>::new(), "a rejected purchase records nothing");
}

/// A purchase body with an unknown field answers 422.
pub async fn purchase_unknown_field_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let body = json!({ "amount_cents": 100, "currency": "USD", "user_id": user.user_id });
    api.purchase(Some(&user.token), Some(&unique_key()), &body).await.expect_error(
        422,
        "validation_failed",
        "purchase with an unknown field",
    );
}

/// A purchase without a token answers 401 `unauthorized` and charges nothing.
pub async fn purchase_without_token_is_401<T: Target>(t: &T) {
    let api = Api::new(t);
    api.purchase(None, Some(&unique_key()), &purchase_body(100, "USD")).await.expect_error(
        401,
        "unauthorized",
        "purchase without a token",
    );
}

/// Replaying the same key and body answers the identical 201 body and never charges twice.
pub async fn purchase_replay_returns_same_payment_and_charges_once<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let key = unique_key();
    let body = purchase_body(4200, "GBP");
    let first = api.purchase(Some(&user.token), Some(&key), &body).await.expect_json(201, "first purchase");
    for round in 1..=2 {
        let again =
            api.purchase(Some(&user.token), Some(&key), &body).await.expect_json(201, &format!("replay {round}"));
        assert_eq!(again, first, "replay {round} answers the identical body");
    }
    let pid = first["payment_id"].as_str().unwrap_or_default();
    assert_charged_once(&api, pid, "a purchase replayed twice").await;
    let list = api.payment_list(&user.token).await;
    assert_eq!(list, vec![first.clone()], "a replayed purchase is recorded once");
}

/// "Same body" means the same JSON document: the same fields in another order and spacing
/// are a replay, not a different request.
pub async fn purchase_replay_with_reordered_body_is_a_replay<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let key = unique_key();
    let auth = format!("Bearer {}", user.token);
    let headers: [(&str, &[u8]); 3] = [
        ("authorization", auth.as_bytes()),
        ("content-type", b"application/json"),
        ("idempotency-key", key.as_bytes()),
    ];
    let first = api
        .send(Method::POST, "/api/payments", &headers, Some(br#"{"amount_cents":700,"currency":"USD"}"#.to_vec()))
        .await
        .expect_json(201, "first purchase");
    let again = api
        .send(
            Method::POST,
            "/api/payments",
            &headers,
            Some(b"{ \"currency\": \"USD\",\n  \"amount_cents\": 700 }".to_vec()),
        )
        .await
        .expect_json(201, "the same purchase with reordered fields");
    assert_eq!(again, first, "a reordered body is the same request");
    let pid = first["payment_id"].as_str().unwrap_or_default();
    assert_charged_once(&api, pid, "a purchase replayed with a reordered body").await;
}

/// The same key with a different body answers 422 `idempotency_key_reused` and leaves the
/// original payment as it was.
pub async fn purchase_same_key_different_body_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let key = unique_key();
    let first = api
        .purchase(Some(&user.token), Some(&key), &purchase_body(500, "USD"))
        .await
        .expect_json(201, "first purchase");
    for body in [purchase_body(600, "USD"), purchase_body(500, "EUR")] {
        api.purchase(Some(&user.token), Some(&key), &body).await.expect_error(
            422,
            "idempotency_key_reused",
            &format!("the same key with body {body}"),
        );
    }
    let again = api
        .purchase(Some(&user.token), Some(&key), &purchase_body(500, "USD"))
        .await
        .expect_json(201, "the original body after a reuse attempt");
    assert_eq!(again, first, "the original purchase still replays");
    let pid = first["payment_id"].as_str().unwrap_or_default();
    assert_charged_once(&api, pid, "a key reused with other bodies").await;
    assert_eq!(api.payment_list(&user.token).await, vec![first], "a reused key records nothing new");
}

/// Keys are scoped per user: two users with the same key get two payments, each charged once.
pub async fn idempotency_keys_are_scoped_per_user<T: Target>(t: &T) {
    let api = Api::new(t);
    let alice = api.new_user().await;
    let bob = api.new_user().await;
    let key = unique_key();
    let body = purchase_body(250, "USD");
    let a = api.purchase(Some(&alice.token), Some(&key), &body).await.expect_json(201, "alice's purchase");
    let b = api.purchase(Some(&bob.token), Some(&key), &body).await.expect_json(201, "bob's purchase with alice's key");
    assert_ne!(a["payment_id"], b["payment_id"], "the same key from two users makes two payments");
    for (user, payment) in [(&alice, &a), (&bob, &b)] {
        let pid = payment["payment_id"].as_str().unwrap_or_default();
        assert_charged_once(&api, pid, "a key shared by two users").await;
        assert_eq!(api.payment_list(&user.token).await, vec![payment.clone()], "each user sees only their own payment");
    }
}

/// Ten concurrent identical purchases (same key) all answer 201 with one payment, charged once.
pub async fn concurrent_identical_purchases_charge_once<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let key = unique_key();
    let body = purchase_body(999, "USD");
    let answers = join_all((0..10).map(|_| api.purchase(Some(&user.token), Some(&key), &body))).await;
    let bodies: Vec<Value> =
        answers.iter().enumerate().map(|(i, r)| r.expect_json(201, &format!("concurrent purchase #{i}"))).collect();
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(b, &bodies[0], "concurrent purchase #{i} answers the same payment as #0");
    }
    shape::payment(&bodies[0], "concurrent purchase answer");
    let pid = bodies[0]["payment_id"].as_str().unwrap_or_default();
    assert_charged_once(&api, pid, "ten concurrent identical purchases").await;
    assert_eq!(
        api.payment_list(&user.token).await,
        vec![bodies[0].clone()],
        "ten concurrent identical purchases record one payment"
    );
}

/// `GET /api/payments` lists the caller's payments, newest first, as the 201 bodies; nobody
/// else's.
pub async fn list_payments_newest_first_own_only<T: Target>(t: &T) {
    let api = Api::new(t);
    let alice = api.new_user().await;
    let bob = api.new_user().await;
    assert_eq!(api.payment_list(&alice.token).await, Vec::<Value>::new(), "a new user has no payments");
    let mut bought = Vec::new();
    for amount in [101, 202, 303] {
        bought.push(api.buy(&alice.token, amount, "USD").await);
    }
    let bobs = api.buy(&bob.token, 404, "EUR").await;
    let list = api.payment_list(&alice.token).await;
    for p in &list {
        shape::payment(p, "listed payment");
    }
    shape::newest_first(&list, "GET /api/payments");
    bought.reverse();
    assert_eq!(list, bought, "alice's payments, newest first, as the purchases answered them");
    assert_eq!(api.payment_list(&bob.token).await, vec![bobs], "bob sees only his payment");
}

/// `GET /api/payments/{id}` answers the caller's payment as the purchase answered it.
pub async fn get_payment_returns_own_payment<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    let payment = api.buy(&user.token, 321, "GBP").await;
    let pid = payment["payment_id"].as_str().unwrap_or_default();
    let got = api.get_payment(&user.token, pid).await.expect_json(200, "GET own payment");
    assert_eq!(got, payment, "GET /api/payments/{{id}} equals the 201 body");
}

/// Another user's payment and an unknown id both answer 404 `not_found`.
pub async fn get_payment_of_other_user_is_404<T: Target>(t: &T) {
    let api = Api::new(t);
    let alice = api.new_user().await;
    let bob = api.new_user().await;
    let payment = api.buy(&alice.token, 100, "USD").await;
    let pid = payment["payment_id"].as_str().unwrap_or_default().to_owned();
    for id in [pid, Uuid::new_v4().to_string()] {
        api.get_payment(&bob.token, &id).await.expect_error(
            404,
            "not_found",
            &format!("GET /api/payments/{id} as another user"),
        );
    }
}

/// A payment id that is not a UUID answers 422 `validation_failed`.
pub async fn get_payment_non_uuid_is_422<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    for id in ["not-a-uuid", "42"] {
        api.get_payment(&user.token, id).await.expect_error(
            422,
            "validation_failed",
            &format!("GET /api/payments/{id}"),
        );
    }
}

/// A purchase sends exactly one `receipt` for its payment, even when replayed; it lists
/// before the older welcome.
pub async fn purchase_sends_exactly_one_receipt<T: Target>(t: &T) {
    let api = Api::new(t);
    let user = api.new_user().await;
    // Deliver the welcome first, so "newest first" has a definite answer below.
    t.settle().await;
    let key = unique_key();
    let body = purchase_body(1500, "USD");
    let payment = api.purchase(Some(&user.token), Some(&key), &body).await.expect_json(201, "purchase");
    let replay = api.purchase(Some(&user.token), Some(&key), &body).await.expect_json(201, "replay");
    assert_eq!(replay, payment, "replay answers the identical body");
    let pid = payment["payment_id"].as_str().unwrap_or_default();
    for round in ["first", "second"] {
        t.settle().await;
        let list = api.notification_list(&user.token).await;
        for n in &list {
            shape::notification(n, "listed notification");
        }
        shape::newest_first(&list, "GET /api/notifications");
        assert_eq!(
            receipts_for(&list, pid).len(),
            1,
            "after the {round} settle: exactly one receipt for {pid}: {list:?}"
        );
        let kinds: Vec<&str> = list.iter().filter_map(|n| n["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            vec!["receipt", "welcome"],
            "after the {round} settle: the receipt, then the welcome: {list:?}"
        );
    }
}

/// Notifications are the caller's own: another user's receipt never shows.
pub async fn notifications_are_own_only<T: Target>(t: &T) {
    let api = Api::new(t);
    let alice = api.new_user().await;
    let bob = api.new_user().await;
    let payment = api.buy(&alice.token, 100, "USD").await;
    t.settle().await;
    let pid = payment["payment_id"].as_str().unwrap_or_default();
    let alices = api.notification_list(&alice.token).await;
    assert_eq!(receipts_for(&alices, pid).len(), 1, "alice has her receipt: {alices:?}");
    let bobs = api.notification_list(&bob.token).await;
    assert_eq!(bobs.len(), 1, "bob has only his welcome: {bobs:?}");
    assert_eq!(bobs[0]["kind"], "welcome", "{bobs:?}");
    let ids = |l: &[Value]| -> Vec<Value> { l.iter().map(|n| n["notification_id"].clone()).collect() };
    assert!(ids(&alices).iter().all(|id| !ids(&bobs).contains(id)), "alice and bob share no notification");
}

// ---------------------------------------------------------------------------------------------
// health, readiness and routing

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

// ---------------------------------------------------------------------------------------------
// the list

/// Expands to one `#[test]` per conformance case, each building its own target with `setup`.
///
/// `setup` is a path to an `async fn() -> impl Target` in the calling crate. Optional
/// attributes after it are put on every generated test, e.g.
/// `conformance_tests!(setup, #[ignore = "needs a running gateway"]);`. Each test runs on a
/// multi-threaded tokio runtime with two workers, like
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path $(, #[$attr:meta])* $(,)?) => {
        $crate::conformance_tests!(@each $setup, [$(#[$attr])*];
            // BEGIN CASES (every `pub async fn` of cases.rs, in file order)
            signup_returns_201_with_user_id_and_token,
            signup_token_reads_own_profile_with_defaults,
            signup_duplicate_email_is_409,
            signup_invalid_email_is_422,
            signup_password_length_rules,
            signup_invalid_name_is_422,
            signup_missing_field_is_422,
            signup_mistyped_field_is_422,
            signup_unknown_field_is_422,
            signup_rejected_input_creates_no_account,
            signup_accepts_json_content_type_with_charset,
            signup_body_over_64_kib_is_413,
            signup_sends_exactly_one_welcome_notification,
            json_body_without_json_content_type_is_415,
            malformed_json_body_is_400,
            login_returns_token_and_future_expiry,
            login_wrong_password_is_401,
            login_unknown_email_is_401,
            login_email_is_case_insensitive,
            login_invalid_body_is_422,
            logout_revokes_the_token,
            logout_keeps_other_sessions,
            missing_authorization_is_401,
            garbled_token_is_401,
            empty_bearer_token_is_401,
            wrong_auth_scheme_is_401,
            patch_me_updates_name_and_preferences,
            patch_me_empty_changes_nothing,
            patch_me_invalid_name_is_422,
            patch_me_unknown_field_is_422,
            patch_me_mistyped_field_is_422,
            get_user_by_own_id_is_200,
            get_user_by_other_id_is_404,
            get_user_by_non_uuid_is_422,
            purchase_returns_201_payment,
            purchase_accepts_each_currency_and_amount_bounds,
            purchase_without_idempotency_key_is_400,
            purchase_with_unusable_idempotency_key_is_400,
            purchase_invalid_amount_is_422,
            purchase_invalid_currency_is_422,
            purchase_unknown_field_is_422,
            purchase_without_token_is_401,
            purchase_replay_returns_same_payment_and_charges_once,
            purchase_replay_with_reordered_body_is_a_replay,
            purchase_same_key_different_body_is_422,
            idempotency_keys_are_scoped_per_user,
            concurrent_identical_purchases_charge_once,
            list_payments_newest_first_own_only,
            get_payment_returns_own_payment,
            get_payment_of_other_user_is_404,
            get_payment_non_uuid_is_422,
            purchase_sends_exactly_one_receipt,
            notifications_are_own_only,
            health_is_ok,
            ready_is_ready,
            unknown_route_is_404,
            wrong_method_is_405,
            // END CASES
        );
    };
    (@each $setup:path, $attrs:tt; $($case:ident,)*) => {
        $( $crate::conformance_tests!(@one $setup, $attrs, $case); )*
    };
    (@one $setup:path, [$(#[$attr:meta])*], $case:ident) => {
        $(#[$attr])*
        #[test]
        fn $case() {
            $crate::__run(async {
                let t = $setup().await;
                $crate::cases::$case(&t).await;
            });
        }
    };
}

#[cfg(test)]
mod tests {
    /// The macro's list and this file's `pub async fn`s must name the same cases, in order.
    #[test]
    fn every_case_is_listed_in_the_macro() {
        let src = include_str!("cases.rs");
        let defined: Vec<&str> = src
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .map(|rest| rest.split(['<', '(']).next().unwrap_or_default())
            .collect();
        let begin = ["// BEGIN", " CASES"].concat();
        let end = ["// END", " CASES"].concat();
        let list = src
            .split_once(begin.as_str())
            .and_then(|(_, rest)| rest.split_once(end.as_str()))
            .map(|(list, _)| list)
            .expect("the macro's case list markers");
        let listed: Vec<&str> = list
            .lines()
            .skip(1) // the rest of the BEGIN marker's line
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| !l.is_empty())
            .collect();
        assert!(defined.len() > 40, "found only {defined:?}");
        assert_eq!(listed, defined, "conformance_tests! must list every case of cases.rs, in file order");
    }
}
