//! The email API over real HTTP: the same idempotency and failure rules as payments, with
//! its own knobs.

mod common;

use archlab_extsim::{BehaviourPatch, EmailReceipt, SimConfigPatch};
use common::spawn;
use serde_json::{Value, json};

fn welcome(to: &str) -> Value {
    json!({"to": to, "subject": "Welcome", "body": "Hello!"})
}

#[tokio::test]
async fn a_new_key_sends_an_email() {
    let sim = spawn().await;

    let answer = sim.email("mail-1", &welcome("ada@example.com")).await;

    assert_eq!(answer.status, 202, "body: {}", answer.body);
    let receipt: EmailReceipt = serde_json::from_value(answer.body.clone()).unwrap();
    assert!(!receipt.replayed);
    let email = receipt.email;
    let id = email.email_id.strip_prefix("em_").expect("em_ prefix");
    assert_eq!(id.len(), 32);
    assert_eq!(email.idempotency_key, "mail-1");
    assert_eq!(email.to, "ada@example.com");
    assert_eq!(email.subject, "Welcome");
    let created_at = answer.body["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert_eq!(sim.client.emails().await.unwrap(), vec![email]);
}

#[tokio::test]
async fn a_replay_returns_the_same_email_and_sends_nothing_new() {
    let sim = spawn().await;

    let first = sim.email("mail-1", &welcome("ada@example.com")).await;
    let second = sim.email("mail-1", &welcome("ada@example.com")).await;

    assert_eq!(first.status, 202);
    assert_eq!(second.status, 200);
    assert_eq!(second.body["replayed"], true);
    assert_eq!(first.body["email_id"], second.body["email_id"]);
    assert_eq!(sim.client.emails().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict() {
    let sim = spawn().await;
    assert_eq!(sim.email("mail-1", &welcome("ada@example.com")).await.status, 202);

    let other_text = json!({"to": "ada@example.com", "subject": "Welcome", "body": "Hi!"});
    sim.email("mail-1", &other_text).await.assert_error(409, "idempotency_conflict");
    sim.email("mail-1", &welcome("bob@example.com")).await.assert_error(409, "idempotency_conflict");

    assert_eq!(sim.client.emails().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_key_or_an_invalid_body_is_refused() {
    let sim = spawn().await;

    sim.post("/v1/emails", None, &welcome("ada@example.com")).await.assert_error(400, "missing_idempotency_key");
    for body in [
        "{not json",
        r#"{"to": "ada@example.com", "subject": "Welcome"}"#,
        r#"{"to": "not-an-address", "subject": "Welcome", "body": "Hello!"}"#,
        r#"{"to": 42, "subject": "Welcome", "body": "Hello!"}"#,
    ] {
        sim.post_raw("/v1/emails", "mail-1", body).await.assert_error(400, "invalid_request");
    }

    assert!(sim.client.emails().await.unwrap().is_empty());
}

#[tokio::test]
async fn email_failures_are_configured_apart_from_payments() {
    let sim = spawn().await;
    let failing = BehaviourPatch::default().with_failure_rate(1.0);
    sim.client.set_config(&SimConfigPatch::default().with_email(failing)).await.unwrap();

    sim.email("mail-1", &welcome("ada@example.com")).await.assert_error(503, "simulated_failure");
    let charge = json!({"amount_cents": 100, "currency": "EUR"});
    assert_eq!(sim.charge("pay-1", &charge).await.status, 201);
    assert!(sim.client.emails().await.unwrap().is_empty());

    sim.client.reset().await.unwrap();
    assert_eq!(sim.email("mail-1", &welcome("ada@example.com")).await.status, 202);
    assert_eq!(sim.client.emails().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_lost_email_reply_sends_the_email_and_leaves_payments_answering() {
    let sim = spawn().await;
    let lost = BehaviourPatch::default().with_lost_reply_rate(1.0);
    sim.client.set_config(&SimConfigPatch::default().with_email(lost)).await.unwrap();

    let answer = sim.post_or_hang_up("/v1/emails", "mail-1", &welcome("ada@example.com")).await;

    assert!(answer.is_err(), "answered: {:?}", answer.map(|a| (a.status, a.body)));
    assert_eq!(sim.client.emails_to("ada@example.com").await.unwrap().len(), 1, "sent, though unanswered");
    let charge = json!({"amount_cents": 100, "currency": "EUR"});
    assert_eq!(sim.charge("pay-1", &charge).await.status, 201, "the payment API lost a reply too");
}

#[tokio::test]
async fn the_list_filters_by_recipient() {
    let sim = spawn().await;
    for (key, to) in [("m1", "ada@example.com"), ("m2", "bob@example.com"), ("m3", "ada@example.com")] {
        assert_eq!(sim.email(key, &welcome(to)).await.status, 202);
    }

    let to_ada = sim.client.emails_to("ada@example.com").await.unwrap();
    let keys: Vec<&str> = to_ada.iter().map(|e| e.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["m1", "m3"]);
    assert_eq!(sim.client.emails().await.unwrap().len(), 3);
    assert!(sim.client.emails_to("eve@example.com").await.unwrap().is_empty());
}
