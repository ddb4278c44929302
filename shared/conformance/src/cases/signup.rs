//! `POST /api/auth/signup`: what it answers, what it validates, how big a body it reads, and
//! the one welcome notification it causes.

use serde_json::json;
use uuid::Uuid;

use crate::Target;
use crate::api::{Api, Method, PASSWORD, unique_email};
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
