//! The payment API over real HTTP: creation, idempotent replays, conflicts, validation,
//! simulated failures, lost replies and latency, and concurrent retries.

mod common;

use std::time::{Duration, Instant};

use archlab_extsim::{BehaviourPatch, Charge, ChargeReceipt, SimConfigPatch};
use common::spawn;
use futures::future::join_all;
use serde_json::{Value, json};

fn order(amount_cents: i64) -> Value {
    json!({"amount_cents": amount_cents, "currency": "EUR", "reference": "order-1"})
}

fn payments(patch: BehaviourPatch) -> SimConfigPatch {
    SimConfigPatch::default().with_payments(patch)
}

#[tokio::test]
async fn a_new_key_creates_a_charge() {
    let sim = spawn().await;

    let answer = sim.charge("key-1", &order(1999)).await;

    assert_eq!(answer.status, 201, "body: {}", answer.body);
    let receipt: ChargeReceipt = serde_json::from_value(answer.body.clone()).unwrap();
    assert!(!receipt.replayed);
    let charge = receipt.charge;
    let id = charge.charge_id.strip_prefix("ch_").expect("ch_ prefix");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(charge.idempotency_key, "key-1");
    assert_eq!(charge.amount_cents, 1999);
    assert_eq!(charge.currency, "EUR");
    assert_eq!(charge.reference.as_deref(), Some("order-1"));
    let created_at = answer.body["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert_eq!(sim.client.charges().await.unwrap(), vec![charge]);
}

#[tokio::test]
async fn a_charge_without_reference_is_accepted() {
    let sim = spawn().await;

    let answer = sim.charge("key-1", &json!({"amount_cents": 1, "currency": "USD"})).await;

    assert_eq!(answer.status, 201, "body: {}", answer.body);
    assert_eq!(answer.body["reference"], Value::Null);
}

#[tokio::test]
async fn a_replay_returns_the_same_charge_and_the_log_holds_one() {
    let sim = spawn().await;

    let first = sim.charge("key-1", &order(500)).await;
    let second = sim.charge("key-1", &order(500)).await;

    assert_eq!(first.status, 201);
    assert_eq!(second.status, 200);
    assert_eq!(second.body["replayed"], true);
    assert_eq!(first.body["charge_id"], second.body["charge_id"]);
    assert_eq!(first.body["created_at"], second.body["created_at"]);
    let logged = sim.client.charges_with_key("key-1").await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(sim.client.charges().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    let sim = spawn().await;
    assert_eq!(sim.charge("key-1", &order(500)).await.status, 201);

    sim.charge("key-1", &order(501)).await.assert_error(409, "idempotency_conflict");
    sim.charge("key-1", &json!({"amount_cents": 500, "currency": "USD", "reference": "order-1"}))
        .await
        .assert_error(409, "idempotency_conflict");

    let logged = sim.client.charges().await.unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].amount_cents, 500);
    assert_eq!(logged[0].currency, "EUR");
}

#[tokio::test]
async fn a_missing_or_invalid_key_is_refused() {
    let sim = spawn().await;
    let too_long = "k".repeat(256);

    sim.post("/v1/charges", None, &order(500)).await.assert_error(400, "missing_idempotency_key");
    for key in ["", "two words", too_long.as_str()] {
        sim.charge(key, &order(500)).await.assert_error(400, "missing_idempotency_key");
    }
    let longest = "k".repeat(255);
    assert_eq!(sim.charge(&longest, &order(500)).await.status, 201);

    assert_eq!(sim.client.charges().await.unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_or_invalid_bodies_are_400_and_record_nothing() {
    let sim = spawn().await;

    for body in [
        "{not json",
        "",
        "[]",
        r#"{"currency": "EUR"}"#,
        r#"{"amount_cents": "100", "currency": "EUR"}"#,
        r#"{"amount_cents": 1.5, "currency": "EUR"}"#,
        r#"{"amount_cents": 0, "currency": "EUR"}"#,
        r#"{"amount_cents": -100, "currency": "EUR"}"#,
        r#"{"amount_cents": 100, "currency": "eur"}"#,
        r#"{"amount_cents": 100, "currency": "EURO"}"#,
        r#"{"amount_cents": 100, "currency": 978}"#,
        r#"{"amount_cents": 99999999999999999999, "currency": "EUR"}"#,
    ] {
        let answer = sim.post_raw("/v1/charges", "key-1", body).await;
        assert_eq!(answer.status, 400, "body {body:?} answered {}", answer.body);
        answer.assert_error(400, "invalid_request");
    }
    // A body that is not labelled as JSON is refused in the same shape.
    let unlabelled = sim
        .http
        .post(format!("{}/v1/charges", sim.base))
        .header("Idempotency-Key", "key-1")
        .body(order(100).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unlabelled.status(), 400);
    let body: Value = unlabelled.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");

    assert!(sim.client.charges().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failure_rate_of_one_fails_every_charge_and_records_nothing() {
    let sim = spawn().await;
    sim.client.set_config(&payments(BehaviourPatch::default().with_failure_rate(1.0))).await.unwrap();

    for _ in 0..5 {
        sim.charge("key-1", &order(500)).await.assert_error(503, "simulated_failure");
    }
    assert!(sim.client.charges().await.unwrap().is_empty());

    sim.client.set_config(&payments(BehaviourPatch::default().with_failure_rate(0.0))).await.unwrap();
    // The failed attempts left no trace, so the retry is a new charge, not a replay.
    let retry = sim.charge("key-1", &order(500)).await;
    assert_eq!(retry.status, 201, "body: {}", retry.body);
    assert_eq!(retry.body["replayed"], false);
    assert_eq!(sim.client.charges().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_lost_reply_records_the_charge_and_drops_the_connection_unanswered() {
    let sim = spawn().await;
    sim.client.set_config(&payments(BehaviourPatch::default().with_lost_reply_rate(1.0))).await.unwrap();

    for attempt in ["first", "replay"] {
        let err = match sim.post_or_hang_up("/v1/charges", "key-1", &order(500)).await {
            Ok(answer) => panic!("{attempt}: answered {} {}", answer.status, answer.body),
            Err(e) => e,
        };
        assert!(!err.is_timeout(), "{attempt}: the connection hung instead of closing: {err}");
        assert!(err.status().is_none(), "{attempt}: an HTTP status came back: {err}");
    }
    // Recorded once, although nobody heard of it.
    let charges = sim.client.charges_with_key("key-1").await.unwrap();
    assert_eq!(charges.len(), 1);

    sim.client.set_config(&payments(BehaviourPatch::default().with_lost_reply_rate(0.0))).await.unwrap();
    let retry = sim.charge("key-1", &order(500)).await;
    assert_eq!(retry.status, 200, "body: {}", retry.body);
    assert_eq!(retry.body["replayed"], true);
    assert_eq!(retry.body["charge_id"], charges[0].charge_id.as_str());
    assert_eq!(sim.client.charges().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_configured_latency_delays_the_answer() {
    let sim = spawn().await;
    sim.client.set_config(&payments(BehaviourPatch::default().with_latency_ms(150))).await.unwrap();

    let started = Instant::now();
    let answer = sim.charge("key-1", &order(500)).await;

    assert_eq!(answer.status, 201);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_identical_requests_make_exactly_one_charge() {
    let sim = spawn().await;
    // A little latency so the twenty requests are all in flight together.
    sim.client.set_config(&payments(BehaviourPatch::default().with_latency_ms(50))).await.unwrap();

    let body = order(4200);
    let requests = (0..20).map(|_| sim.charge("same-key", &body));
    let answers = join_all(requests).await;

    let created = answers.iter().filter(|a| a.status == 201).count();
    let replayed = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!((created, replayed), (1, 19));
    let logged: Vec<Charge> = sim.client.charges().await.unwrap();
    assert_eq!(logged.len(), 1);
    for answer in &answers {
        assert_eq!(answer.body["charge_id"], logged[0].charge_id.as_str());
    }
}

#[tokio::test]
async fn the_list_keeps_acceptance_order_and_filters_by_key() {
    let sim = spawn().await;
    for (key, amount) in [("a", 1), ("b", 2), ("c", 3)] {
        assert_eq!(sim.charge(key, &order(amount)).await.status, 201);
    }

    let all = sim.client.charges().await.unwrap();
    let amounts: Vec<i64> = all.iter().map(|c| c.amount_cents).collect();
    assert_eq!(amounts, [1, 2, 3]);
    let b = sim.client.charges_with_key("b").await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].amount_cents, 2);
    assert!(sim.client.charges_with_key("z").await.unwrap().is_empty());
}
