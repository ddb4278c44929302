//! `GET /api/notifications`: the receipt a purchase causes, exactly once, and only for its
//! buyer.

use serde_json::Value;

use crate::Target;
use crate::api::{Api, purchase_body, unique_key};
use crate::shape;

/// The receipts for `payment_id` among `notifications`.
fn receipts_for<'a>(notifications: &'a [Value], payment_id: &str) -> Vec<&'a Value> {
    notifications.iter().filter(|n| n["kind"] == "receipt" && n["payment_id"] == payment_id).collect()
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
