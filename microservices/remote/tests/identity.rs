//! The signed identity header: what the gateway signs the services accept, and nothing else.

use archlab_kernel::http::{Authenticator, Caller};
use archlab_kernel::{Error, ErrorKind};
use archlab_remote::identity::{IDENTITY_HEADER, IdentitySigner, SignedIdentityAuthenticator};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use uuid::Uuid;

const SECRET: &[u8] = b"identity-test-secret";

fn headers(value: HeaderValue) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(IDENTITY_HEADER, value);
    h
}

/// A header built by hand, the way the module docs describe it.
fn by_hand(secret: &[u8], user_id: Uuid, issued_unix_ms: i64) -> HeaderValue {
    let payload = format!("{user_id}.{issued_unix_ms}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(payload.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    HeaderValue::try_from(format!("{payload}.{signature}")).expect("header value")
}

async fn refused(value: HeaderValue) -> Error {
    let err = SignedIdentityAuthenticator::new(SECRET)
        .authenticate(&headers(value.clone()))
        .await
        .expect_err(&format!("{value:?} must be refused"));
    assert_eq!((err.kind, err.code.as_ref()), (ErrorKind::Unauthorized, "unauthorized"), "{value:?}: {err}");
    err
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn a_signed_identity_round_trips() {
    let user_id = Uuid::new_v4();
    let value = IdentitySigner::new(SECRET).sign(user_id);
    let caller = SignedIdentityAuthenticator::new(SECRET).authenticate(&headers(value)).await.expect("valid");
    assert_eq!(caller, Caller { user_id });
}

#[tokio::test]
async fn the_header_has_the_documented_shape() {
    let user_id = Uuid::new_v4();
    let value = IdentitySigner::new(SECRET).sign(user_id);
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
        .authenticate(&headers(by_hand(SECRET, user_id, now_ms())))
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
    let value = IdentitySigner::new(SECRET).sign(Uuid::new_v4());
    let text = value.to_str().expect("ASCII");
    let (_, rest) = text.split_once('.').expect("three parts");
    let forged = format!("{}.{rest}", Uuid::new_v4());
    let err = refused(HeaderValue::try_from(forged).expect("header")).await;
    assert!(err.message.contains("signature"), "{err}");
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let value = IdentitySigner::new(SECRET).sign(Uuid::new_v4());
    let mut text = value.to_str().expect("ASCII").to_owned();
    let last = text.pop().expect("non-empty");
    text.push(if last == '0' { '1' } else { '0' });
    refused(HeaderValue::try_from(text).expect("header")).await;
}

#[tokio::test]
async fn a_truncated_signature_is_refused() {
    let value = IdentitySigner::new(SECRET).sign(Uuid::new_v4());
    let text = value.to_str().expect("ASCII");
    refused(HeaderValue::try_from(&text[..text.len() - 2]).expect("header")).await;
}

#[tokio::test]
async fn another_secret_is_refused() {
    refused(IdentitySigner::new(b"some-other-secret").sign(Uuid::new_v4())).await;
    refused(by_hand(b"", Uuid::new_v4(), now_ms())).await;
}

#[tokio::test]
async fn garbage_is_refused() {
    let id = Uuid::new_v4();
    let signed_garbage = |payload: &str| {
        // Correctly signed, so only the payload's shape can be what is refused.
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
        mac.update(payload.as_bytes());
        HeaderValue::try_from(format!("{payload}.{}", hex::encode(mac.finalize().into_bytes()))).expect("header")
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
    let err = authn.authenticate(&HeaderMap::new()).await.expect_err("missing");
    assert_eq!(err, Error::unauthorized("missing identity header"));

    let signer = IdentitySigner::new(SECRET);
    let mut two = HeaderMap::new();
    two.append(IDENTITY_HEADER, signer.sign(Uuid::new_v4()));
    two.append(IDENTITY_HEADER, signer.sign(Uuid::new_v4()));
    let err = authn.authenticate(&two).await.expect_err("two identities");
    assert_eq!(err.kind, ErrorKind::Unauthorized);
}
