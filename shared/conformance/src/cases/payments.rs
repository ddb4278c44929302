//! `POST /api/payments` (validation, idempotency keys, one charge per payment) and reading
//! payments back with `GET /api/payments` and `GET /api/payments/{id}`.

use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Target;
use crate::api::{Api, Method, purchase_body, unique_key};
use crate::shape;

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

/// Every currency and both amount bounds are accepted and echoed back; an amount written
/// `500.0` is the integer 500, as JSON Schema's `integer` has it.
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
    let body = json!({ "amount_cents": 500.0, "currency": "USD" });
    let payment =
        api.purchase(Some(&user.token), Some(&unique_key()), &body).await.expect_json(201, "amount_cents 500.0");
    assert_eq!(payment["amount_cents"], 500, "{payment}");
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
