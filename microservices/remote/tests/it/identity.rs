//! The signed identity header: what the gateway signs the services accept, and nothing else —
//! not with another key, not for another user, not on another route.

use archlab_kernel::http::{Authenticator, Caller};
use archlab_kernel::{Error, ErrorKind};
use archlab_remote::identity::{IDENTITY_HEADER, IDENTITY_KEY_PURPOSE, IdentitySigner, SignedIdentityAuthenticator};
use archlab_remote::service_credential::SERVICE_KEY_PURPOSE;
use hmac::{Hmac, Mac};
use http::request::Parts;
use http::{HeaderValue, Method};
use sha2::Sha256;
use uuid::Uuid;

const SECRET: &[u8] = b"identity-test-secret";

/// The route most tests sign for and are verified on.
const ME: (Method, &str) = (Method::GET, "/api/users/me");

/// A request `method path` carrying `values` as its identity headers, as a service receives it.
fn request_with(method: &Method, path: &str, values: &[HeaderValue]) -> Parts {
    let mut request = http::Request::builder().method(method).uri(path);
    for value in values {
        request = request.header(IDENTITY_HEADER, value);
    }
    request.body(()).expect("a valid request").into_parts().0
}

fn on_me(value: HeaderValue) -> Parts {
    request_with(&ME.0, ME.1, &[value])
}

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A header built by hand, the way the module docs describe it, with the key derived for
/// `purpose` from `secret`, for `GET /api/users/me`.
fn by_hand_keyed(secret: &[u8], purpose: &str, user_id: Uuid, issued_unix_ms: i64) -> HeaderValue {
    let key = hmac(secret, purpose);
    let payload = format!("{user_id}.{issued_unix_ms}");
    let signature = hex::encode(hmac(&key, &format!("{payload}.{} {}", ME.0, ME.1)));
    HeaderValue::try_from(format!("{payload}.{signature}")).expect("header value")
}

fn by_hand(secret: &[u8], user_id: Uuid, issued_unix_ms: i64) -> HeaderValue {
    by_hand_keyed(secret, IDENTITY_KEY_PURPOSE, user_id, issued_unix_ms)
}

fn sign_me(user_id: Uuid) -> HeaderValue {
    IdentitySigner::new(SECRET).sign(user_id, &ME.0, ME.1)
}

async fn refused_on(request: Parts) -> Error {
    let err = SignedIdentityAuthenticator::new(SECRET)
        .authenticate(&request)
        .await
        .expect_err(&format!("{request:?} must be refused"));
    assert_eq!((err.kind, err.code.as_ref()), (ErrorKind::Unauthorized, "unauthorized"), "{request:?}: {err}");
    err
}

async fn refused(value: HeaderValue) -> Error {
    refused_on(on_me(value)).await
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn a_signed_identity_round_trips() {
    let user_id = Uuid::new_v4();
    let caller = SignedIdentityAuthenticator::new(SECRET).authenticate(&on_me(sign_me(user_id))).await.expect("valid");
    assert_eq!(caller, Caller { user_id });
}

#[tokio::test]
async fn an_identity_captured_on_one_route_is_refused_on_every_other() {
    let user_id = Uuid::new_v4();
    let captured = sign_me(user_id);
    let authn = SignedIdentityAuthenticator::new(SECRET);
    // The control: on its own route it opens.
    assert_eq!(authn.authenticate(&on_me(captured.clone())).await.expect("its own route").user_id, user_id);
    for (method, path) in [
        (Method::PATCH, "/api/users/me"),
        (Method::GET, "/api/payments"),
        (Method::POST, "/api/payments"),
        (Method::GET, "/api/notifications"),
        (Method::POST, "/api/auth/logout"),
        (Method::GET, "/api/users/me/"),
        (Method::GET, "/API/users/me"),
        (Method::GET, "/api/users/%6De"),
    ] {
        let err = refused_on(request_with(&method, path, std::slice::from_ref(&captured))).await;
        assert!(err.message.contains("signature"), "{method} {path}: {err}");
    }
    // The query is not part of the route: the same path with a query is the same route.
    let with_query = request_with(&ME.0, "/api/users/me?x=1", &[captured]);
    assert_eq!(authn.authenticate(&with_query).await.expect("same path").user_id, user_id);
}

#[tokio::test]
async fn a_header_signed_with_the_bare_secret_or_the_service_key_is_refused() {
    // The key is derived for identities alone: neither the secret itself nor the
    // service-credential key derived from it signs a valid identity.
    let payload = format!("{}.{}", Uuid::new_v4(), now_ms());
    let bare = hex::encode(hmac(SECRET, &format!("{payload}.{} {}", ME.0, ME.1)));
    refused(HeaderValue::try_from(format!("{payload}.{bare}")).expect("header")).await;
    refused(by_hand_keyed(SECRET, SERVICE_KEY_PURPOSE, Uuid::new_v4(), now_ms())).await;
}

#[tokio::test]
async fn the_header_has_the_documented_shape() {
    let user_id = Uuid::new_v4();
    let value = sign_me(user_id);
    let text = value.to_str().expect("ASCII");
    let parts: Vec<&str> = text.split('.').collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert_eq!(parts[0], user_id.to_string());
    let issued: i64 = parts[1].parse().expect("unix ms");
    assert!((now_ms() - issued).abs() < 5_000, "issued now: {issued}");
    assert_eq!(parts[2].len(), 64);
    // And it is exactly what the documented recipe gives.
    assert_eq!(value, by_hand(SECRET, user_id, issued));
}

#[tokio::test]
async fn a_hand_built_header_issued_now_is_accepted() {
    // The control for the expiry test below: same construction, only the age differs.
    let user_id = Uuid::new_v4();
    let caller = SignedIdentityAuthenticator::new(SECRET)
        .authenticate(&on_me(by_hand(SECRET, user_id, now_ms())))
        .await
        .expect("fresh");
    assert_eq!(caller.user_id, user_id);
}

#[tokio::test]
async fn an_identity_issued_31_seconds_ago_is_expired() {
    let err = refused(by_hand(SECRET, Uuid::new_v4(), now_ms() - 31_000)).await;
    assert!(err.message.contains("expired"), "{err}");
}

#[tokio::test]
async fn an_identity_issued_far_in_the_future_is_refused() {
    refused(by_hand(SECRET, Uuid::new_v4(), now_ms() + 60_000)).await;
}

#[tokio::test]
async fn a_tampered_user_id_is_refused() {
    let value = sign_me(Uuid::new_v4());
    let text = value.to_str().expect("ASCII");
    let (_, rest) = text.split_once('.').expect("three parts");
    let forged = format!("{}.{rest}", Uuid::new_v4());
    let err = refused(HeaderValue::try_from(forged).expect("header")).await;
    assert!(err.message.contains("signature"), "{err}");
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let value = sign_me(Uuid::new_v4());
    let mut text = value.to_str().expect("ASCII").to_owned();
    let last = text.pop().expect("non-empty");
    text.push(if last == '0' { '1' } else { '0' });
    refused(HeaderValue::try_from(text).expect("header")).await;
}

#[tokio::test]
async fn a_truncated_signature_is_refused() {
    let value = sign_me(Uuid::new_v4());
    let text = value.to_str().expect("ASCII");
    refused(HeaderValue::try_from(&text[..text.len() - 2]).expect("header")).await;
}

#[tokio::test]
async fn another_secret_is_refused() {
    refused(IdentitySigner::new(b"some-other-secret").sign(Uuid::new_v4(), &ME.0, ME.1)).await;
    refused(by_hand(b"", Uuid::new_v4(), now_ms())).await;
}

#[tokio::test]
async fn garbage_is_refused() {
    let id = Uuid::new_v4();
    let signed_garbage = |payload: &str| {
        // Correctly signed, so only the payload's shape can be what is refused.
        let signature = hmac(&hmac(SECRET, IDENTITY_KEY_PURPOSE), &format!("{payload}.{} {}", ME.0, ME.1));
        HeaderValue::try_from(format!("{payload}.{}", hex::encode(signature))).expect("header")
    };
    for value in [
        HeaderValue::from_static(""),
        HeaderValue::from_static("garbage"),
        HeaderValue::from_static("a.b.c"),
        HeaderValue::from_static(".."),
        HeaderValue::try_from(format!("{id}.{}.zz", now_ms())).expect("header"),
        HeaderValue::from_bytes(b"\xff\xfe.1.00").expect("opaque bytes"),
        signed_garbage(&format!("not-a-uuid.{}", now_ms())),
        signed_garbage(&format!("{id}.-5")),
        signed_garbage(&format!("{id}.+{}", now_ms())),
        signed_garbage(&format!("{id}.")),
        signed_garbage(&id.to_string()),
    ] {
        refused(value).await;
    }
}

#[tokio::test]
async fn a_missing_or_doubled_header_is_refused() {
    let authn = SignedIdentityAuthenticator::new(SECRET);
    let err = authn.authenticate(&request_with(&ME.0, ME.1, &[])).await.expect_err("missing");
    assert_eq!(err, Error::unauthorized("missing identity header"));

    let two = request_with(&ME.0, ME.1, &[sign_me(Uuid::new_v4()), sign_me(Uuid::new_v4())]);
    let err = authn.authenticate(&two).await.expect_err("two identities");
    assert_eq!(err, Error::unauthorized("more than one identity header"));
}
