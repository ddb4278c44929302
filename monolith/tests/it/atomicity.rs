//! A failure inside a transaction leaves nothing half-written, and a retry finishes the job
//! without a second charge. Faults are switched on inside the modules (the same fault points
//! a workshop uses), at the last step before the commit.

use crate::common;

use archlab_conformance::{Api, Target, unique_email, unique_key};
use archlab_extsim::{BehaviourPatch, SimConfigPatch};
use common::{Options, count, spawn, spawn_with};
use serde_json::json;

#[tokio::test]
async fn signup_failing_inside_the_transaction_writes_no_row() {
    let app = spawn().await;
    let api = Api::new(&app);
    let email = unique_email();
    // The profile insert has run inside the transaction when this fault fires.
    app.handle.faults.enable(archlab_users::faults::CREATE_PROFILE);

    api.signup(&email, "correct horse", "Ada").await.expect_error(503, "dependency_unavailable", "signup with a fault");

    for (table, sql) in [
        ("credentials", "SELECT count(*) FROM auth.credentials"),
        ("sessions", "SELECT count(*) FROM auth.sessions"),
        ("audit", "SELECT count(*) FROM auth.audit_log"),
        ("welcome outbox", "SELECT count(*) FROM auth.outbox"),
        ("profiles", "SELECT count(*) FROM users.profiles"),
        ("preferences", "SELECT count(*) FROM users.preferences"),
    ] {
        assert_eq!(count(&app, sql).await, 0, "{table} has a half-written row");
    }

    // The email was not taken by the failed attempt.
    app.handle.faults.disable(archlab_users::faults::CREATE_PROFILE);
    api.signup(&email, "correct horse", "Ada").await.expect_json(201, "signup after the fault");
    assert_eq!(count(&app, "SELECT count(*) FROM users.profiles").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM auth.outbox").await, 1);
}

#[tokio::test]
async fn purchase_failing_at_record_keeps_only_the_pending_intent_and_a_retry_charges_once() {
    let app = spawn().await;
    let api = Api::new(&app);
    let user = api.new_user().await;
    let key = unique_key();
    let body = json!({"amount_cents": 1999, "currency": "EUR"});

    app.handle.faults.enable(archlab_payments::faults::RECORD);
    let r = api.purchase(Some(&user.token), Some(&key), &body).await;
    r.expect_error(503, "dependency_unavailable", "purchase with a fault at record");
    // The charge happened; the record did not commit: the row is still the pending intent
    // written before the charge, and no receipt was queued.
    let (payment_id, status): (uuid::Uuid, String) =
        sqlx::query_as("SELECT payment_id, status FROM payments.payments").fetch_one(&app.handle.pool).await.unwrap();
    assert_eq!(status, "pending");
    assert_eq!(count(&app, "SELECT count(*) FROM payments.outbox").await, 0);
    assert_eq!(app.extsim.client.charges_with_key(&payment_id.to_string()).await.unwrap().len(), 1);

    app.handle.faults.disable(archlab_payments::faults::RECORD);
    let paid = api.purchase(Some(&user.token), Some(&key), &body).await.expect_json(201, "retry");
    assert_eq!(paid["payment_id"], payment_id.to_string());
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(app.extsim.client.charges_with_key(&payment_id.to_string()).await.unwrap().len(), 1, "charged twice");

    app.settle().await;
    assert_eq!(receipts(&api, &user.token).await, 1);
}

#[tokio::test]
async fn sync_mode_email_outage_fails_the_purchase_and_a_retry_finishes_it_once() {
    let app = spawn_with(Options { sync_mode: true, ..Default::default() }).await;
    let api = Api::new(&app);
    let user = api.new_user().await;
    app.settle().await;
    let key = unique_key();
    let body = json!({"amount_cents": 500, "currency": "USD"});

    let down = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(1.0));
    app.extsim.client.set_config(&down).await.unwrap();
    let r = api.purchase(Some(&user.token), Some(&key), &body).await;
    r.expect_error(503, "dependency_unavailable", "the notification failure must fail a sync purchase");
    assert_eq!(receipts(&api, &user.token).await, 0);
    // Charged and recorded, as the message says.
    let status: String =
        sqlx::query_scalar("SELECT status FROM payments.payments").fetch_one(&app.handle.pool).await.unwrap();
    assert_eq!(status, "succeeded");

    app.extsim.client.reset().await.unwrap();
    let paid = api.purchase(Some(&user.token), Some(&key), &body).await.expect_json(201, "retry after the outage");
    let payment_id = paid["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(app.extsim.client.charges_with_key(&payment_id).await.unwrap().len(), 1);
    assert_eq!(receipts(&api, &user.token).await, 1);
}

#[tokio::test]
async fn async_mode_email_outage_does_not_fail_the_purchase_and_the_receipt_arrives_once_later() {
    let app = spawn().await;
    let api = Api::new(&app);
    let user = api.new_user().await;
    app.settle().await;

    let down = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(1.0));
    app.extsim.client.set_config(&down).await.unwrap();
    api.purchase(Some(&user.token), Some(&unique_key()), &json!({"amount_cents": 700, "currency": "GBP"}))
        .await
        .expect_json(201, "an async purchase does not wait for email");
    app.settle().await;
    assert_eq!(receipts(&api, &user.token).await, 0);
    assert_eq!(app.handle.events.pending().await.unwrap(), 1, "the receipt waits in the outbox");

    app.extsim.client.reset().await.unwrap();
    app.settle().await;
    app.settle().await;
    assert_eq!(receipts(&api, &user.token).await, 1);
    assert_eq!(app.handle.events.pending().await.unwrap(), 0);
}

async fn receipts(api: &Api, token: &str) -> usize {
    api.notification_list(token).await.iter().filter(|n| n["kind"] == "receipt").count()
}
