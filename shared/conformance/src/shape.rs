//! Assertions on the shapes of the API's success bodies (docs/api.md, "Endpoints").
//!
//! Shapes are checked exactly — no missing and no extra keys — because the point of the suite
//! is that the monolith and the gateway answer byte-for-byte the same kind of document.

use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use uuid::Uuid;

use crate::api::keys;

/// Panics unless `v` is a UUID string in canonical form (lower-case, hyphenated).
#[track_caller]
pub fn uuid(v: &Value, context: &str) -> Uuid {
    let s = v.as_str().unwrap_or_else(|| panic!("{context}: expected a UUID string, got {v}"));
    let id = Uuid::parse_str(s).unwrap_or_else(|e| panic!("{context}: {s:?} is not a UUID: {e}"));
    assert_eq!(s, id.hyphenated().to_string(), "{context}: UUIDs are written lower-case and hyphenated");
    id
}

/// Panics unless `v` is an RFC 3339 timestamp string.
#[track_caller]
pub fn timestamp(v: &Value, context: &str) -> DateTime<FixedOffset> {
    let s = v.as_str().unwrap_or_else(|| panic!("{context}: expected an RFC 3339 string, got {v}"));
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{context}: {s:?} is not RFC 3339: {e}"))
}

/// Panics unless `v` is an object with exactly the keys `expected`.
#[track_caller]
pub fn exact_keys(v: &Value, expected: &[&str], context: &str) {
    let obj = v.as_object().unwrap_or_else(|| panic!("{context}: expected an object, got {v}"));
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(keys(obj), expected, "{context}: wrong keys in {v}");
}

/// Panics unless `v` is a profile:
/// `{user_id, email, name, status, preferences: {email_receipts, marketing_emails}, created_at}`.
#[track_caller]
pub fn profile(v: &Value, context: &str) {
    exact_keys(v, &["user_id", "email", "name", "status", "preferences", "created_at"], context);
    uuid(&v["user_id"], &format!("{context}: profile.user_id"));
    for k in ["email", "name", "status"] {
        assert!(v[k].is_string(), "{context}: profile.{k} must be a string in {v}");
    }
    exact_keys(&v["preferences"], &["email_receipts", "marketing_emails"], &format!("{context}: profile.preferences"));
    for k in ["email_receipts", "marketing_emails"] {
        assert!(v["preferences"][k].is_boolean(), "{context}: profile.preferences.{k} must be a boolean in {v}");
    }
    timestamp(&v["created_at"], &format!("{context}: profile.created_at"));
}

/// Panics unless `v` is a payment: `{payment_id, status, amount_cents, currency, created_at}`.
#[track_caller]
pub fn payment(v: &Value, context: &str) {
    exact_keys(v, &["payment_id", "status", "amount_cents", "currency", "created_at"], context);
    uuid(&v["payment_id"], &format!("{context}: payment.payment_id"));
    assert!(v["status"].is_string(), "{context}: payment.status must be a string in {v}");
    assert!(v["amount_cents"].is_i64(), "{context}: payment.amount_cents must be an integer in {v}");
    assert!(v["currency"].is_string(), "{context}: payment.currency must be a string in {v}");
    timestamp(&v["created_at"], &format!("{context}: payment.created_at"));
}

/// Panics unless `v` is a notification:
/// `{notification_id, kind, subject, body, payment_id, created_at}`, where a `welcome` has a
/// null `payment_id` and a `receipt` a UUID one.
#[track_caller]
pub fn notification(v: &Value, context: &str) {
    exact_keys(v, &["notification_id", "kind", "subject", "body", "payment_id", "created_at"], context);
    uuid(&v["notification_id"], &format!("{context}: notification.notification_id"));
    let subject = v["subject"].as_str().unwrap_or_default();
    assert!(!subject.trim().is_empty(), "{context}: notification.subject must be a non-empty string in {v}");
    assert!(v["body"].is_string(), "{context}: notification.body must be a string in {v}");
    match v["kind"].as_str() {
        Some("welcome") => {
            assert!(v["payment_id"].is_null(), "{context}: a welcome notification has payment_id null: {v}")
        }
        Some("receipt") => {
            uuid(&v["payment_id"], &format!("{context}: receipt notification.payment_id"));
        }
        _ => panic!("{context}: notification.kind must be \"welcome\" or \"receipt\": {v}"),
    }
    timestamp(&v["created_at"], &format!("{context}: notification.created_at"));
}

/// Panics unless the items' `created_at` never increases (the listings are newest first).
#[track_caller]
pub fn newest_first(items: &[Value], context: &str) {
    let times: Vec<_> = items.iter().map(|i| timestamp(&i["created_at"], context)).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "{context}: items must be newest first, got created_at {:?}",
        items.iter().map(|i| i["created_at"].clone()).collect::<Vec<_>>()
    );
}
