//! Purchases left in doubt are settled (docs/architecture.md, "Payments left in doubt"),
//! checked the same way against either build.
//!
//! Not conformance cases and not in [`conformance_tests!`](crate::conformance_tests): each
//! turns the payment provider's knobs for the whole deployment and reads the payments
//! database, so it needs a deployment of its own, started with the provider timeout and the
//! reconciler settings below ([`EXTERNAL_TIMEOUT_MS`], [`RECONCILE_AFTER_MS`],
//! [`RECONCILE_INTERVAL_MS`]), and the pool of the database that holds `payments.payments`.
//! Nothing sleeps in place of synchronization: each wait polls a condition until a deadline
//! derived from those settings.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::Target;
use crate::api::{Api, purchase_body, unique_key};

/// `EXTERNAL_TIMEOUT_MS` of a deployment under these checks: the longest a charge may take.
pub const EXTERNAL_TIMEOUT_MS: u64 = 1_000;
/// `RECONCILE_AFTER_MS`: above the provider timeout, as the deployment requires.
pub const RECONCILE_AFTER_MS: u64 = 1_500;
/// `RECONCILE_INTERVAL_MS`.
pub const RECONCILE_INTERVAL_MS: u64 = 100;

/// How long a payment may stay unsettled after its purchase was cut off: the charge's
/// timeout, the reconciler's bound and one interval, and a margin for a loaded machine.
fn settle_deadline() -> Duration {
    Duration::from_millis(EXTERNAL_TIMEOUT_MS + RECONCILE_AFTER_MS + RECONCILE_INTERVAL_MS) + Duration::from_secs(10)
}

/// Pause between two looks at a condition being polled.
const POLL: Duration = Duration::from_millis(25);

/// Purchases whose callers hang up while the charge is in progress all end settled: each
/// payment `succeeded` with exactly one charge at the provider under its id, or `failed`
/// with none, and every succeeded one has exactly one receipt. The provider is slow (every
/// charge in progress when the connections drop), fails some charges (nothing recorded) and
/// loses some answers (charge recorded, connection dropped), so all three paths are walked:
/// finished by the flow with nobody listening, marked failed by the reconciler, completed by
/// the reconciler.
pub async fn purchases_cut_off_mid_flight_all_settle<T: Target>(t: &T, payments_db: &PgPool) {
    const PURCHASES: usize = 12;
    let api = Api::new(t);
    let user = api.new_user().await;
    t.settle().await;
    set_payments(t, json!({"latency_ms": 400, "failure_rate": 0.3, "lost_reply_rate": 0.3})).await;

    let keys: Vec<String> = (0..PURCHASES).map(|_| unique_key()).collect();
    let body = purchase_body(1250, "EUR");
    let mut connections = Vec::new();
    for key in &keys {
        connections.push(send_purchase(t.base_url(), &user.token, key, &body).await);
    }
    // Every purchase has begun (its payment row is written, its charge is at the provider
    // for 400 ms): hang up on all of them, before any answer.
    let keys = &keys;
    poll(Duration::from_secs(20), "every purchase to begin", || async move {
        let begun = count_keys(payments_db, keys).await;
        (begun == PURCHASES as i64).then_some(()).ok_or(format!("{begun} of {PURCHASES} payment rows written"))
    })
    .await;
    for (key, connection) in keys.iter().zip(&connections) {
        let mut byte = [0u8; 1];
        match connection.try_read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("purchase {key} was answered (or closed) before the cut: {other:?}"),
        }
    }
    drop(connections);

    let rows = poll(settle_deadline(), "every cut-off payment to settle", || async move {
        let rows = payment_rows(payments_db, keys).await;
        let pending: Vec<_> = rows
            .iter()
            .filter(|r| r.status == "pending" || (r.status == "succeeded" && !r.notified))
            .map(|r| r.payment_id)
            .collect();
        if rows.len() == PURCHASES && pending.is_empty() {
            Ok(rows)
        } else {
            Err(format!("{} rows, still pending or without their receipt: {pending:?}", rows.len()))
        }
    })
    .await;

    let mut succeeded = Vec::new();
    for row in &rows {
        let charges = api.extsim_charges(&row.payment_id.to_string()).await;
        match row.status.as_str() {
            "succeeded" => {
                assert_eq!(charges.len(), 1, "succeeded payment {} has {} charges", row.payment_id, charges.len());
                assert_eq!(
                    row.provider_charge_id.as_deref(),
                    charges[0]["charge_id"].as_str(),
                    "payment {} recorded another charge than the provider holds",
                    row.payment_id
                );
                succeeded.push(row.payment_id.to_string());
            }
            "failed" => assert!(charges.is_empty(), "failed payment {} was charged: {charges:?}", row.payment_id),
            other => panic!("payment {} ended {other:?}", row.payment_id),
        }
    }
    t.settle().await;
    let mut receipted = receipts(&api, &user.token).await;
    receipted.sort();
    succeeded.sort();
    assert_eq!(receipted, succeeded, "one receipt for each succeeded payment, none for a failed one");
}

/// A charge whose answer is lost fails the purchase with a clear 502; the reconciler then
/// completes the payment (succeeded, exactly one charge, one receipt), and a retry with the
/// same `Idempotency-Key` answers it without charging again.
pub async fn a_lost_reply_is_a_502_and_the_reconciler_completes_the_payment<T: Target>(t: &T, payments_db: &PgPool) {
    let api = Api::new(t);
    let user = api.new_user().await;
    t.settle().await;
    set_payments(t, json!({"lost_reply_rate": 1.0})).await;
    let key = unique_key();
    let body = purchase_body(990, "USD");

    api.purchase(Some(&user.token), Some(&key), &body).await.expect_error(
        502,
        "payment_provider_failed",
        "a purchase whose charge answer is lost",
    );
    let keys = std::slice::from_ref(&key);
    let rows = payment_rows(payments_db, keys).await;
    assert_eq!(rows.len(), 1, "one payment row for the key");
    let payment_id = rows[0].payment_id;
    assert_ne!(rows[0].status, "failed", "a charged payment was marked failed");
    assert_eq!(api.extsim_charges(&payment_id.to_string()).await.len(), 1, "the provider took the charge");

    let row = poll(settle_deadline(), "the reconciler to complete the payment and send its receipt", || async move {
        let rows = payment_rows(payments_db, keys).await;
        match rows.first() {
            Some(row) if row.status == "succeeded" && row.notified => Ok(row.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let charges = api.extsim_charges(&payment_id.to_string()).await;
    assert_eq!(charges.len(), 1, "charged once");
    assert_eq!(row.provider_charge_id.as_deref(), charges[0]["charge_id"].as_str(), "the provider's charge recorded");
    t.settle().await;
    assert_eq!(receipts(&api, &user.token).await, vec![payment_id.to_string()], "exactly one receipt");

    // The provider still loses every answer: a retry that called it would fail again.
    let retried =
        api.purchase(Some(&user.token), Some(&key), &body).await.expect_json(201, "a retry after the reconciliation");
    assert_eq!(retried["payment_id"], payment_id.to_string());
    assert_eq!(retried["status"], "succeeded");
    assert_eq!(api.extsim_charges(&payment_id.to_string()).await.len(), 1, "the retry charged again");
    t.settle().await;
    assert_eq!(receipts(&api, &user.token).await, vec![payment_id.to_string()], "the retry sent another receipt");
}

/// One row of `payments.payments`, as these checks read it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct PaymentRow {
    payment_id: Uuid,
    status: String,
    provider_charge_id: Option<String>,
    /// The receipt is sent (`sync` mode) or in the outbox (`async` mode). In `sync` mode it is
    /// sent after `succeeded` is committed, so a poll that stops at the status alone can read
    /// the receipts before the flow sent one.
    notified: bool,
}

async fn payment_rows(db: &PgPool, keys: &[String]) -> Vec<PaymentRow> {
    sqlx::query_as(
        "SELECT payment_id, status, provider_charge_id, notified_at IS NOT NULL AS notified FROM payments.payments
         WHERE idempotency_key = ANY($1) ORDER BY payment_id",
    )
    .bind(keys)
    .fetch_all(db)
    .await
    .expect("read payments.payments")
}

async fn count_keys(db: &PgPool, keys: &[String]) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM payments.payments WHERE idempotency_key = ANY($1)")
        .bind(keys)
        .fetch_one(db)
        .await
        .expect("count payments.payments")
}

/// The payment ids of the caller's receipt notifications.
async fn receipts(api: &Api, token: &str) -> Vec<String> {
    let list = api.notification_list(token).await;
    list.iter()
        .filter(|n| n["kind"] == "receipt")
        .map(|n| n["payment_id"].as_str().unwrap_or_else(|| panic!("a receipt without a payment id: {n}")).to_owned())
        .collect()
}

/// Change the payment provider's knobs (`PUT {extsim}/admin/config`).
async fn set_payments<T: Target>(t: &T, payments: Value) {
    let url = format!("{}/admin/config", t.extsim_url().trim_end_matches('/'));
    let answer = reqwest::Client::new()
        .put(&url)
        .json(&json!({ "payments": payments }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert!(answer.status().is_success(), "PUT {url} answered {}", answer.status());
}

/// Write one purchase on a connection of its own, by hand, and leave it unread.
async fn send_purchase(base_url: &str, token: &str, key: &str, body: &Value) -> TcpStream {
    let host = base_url.trim_end_matches('/').strip_prefix("http://").expect("a plain http:// base URL");
    let body = serde_json::to_vec(body).expect("serialize the purchase");
    let mut request = format!(
        "POST /api/payments HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let mut stream = TcpStream::connect(host).await.unwrap_or_else(|e| panic!("connect to {host}: {e}"));
    stream.write_all(&request).await.unwrap_or_else(|e| panic!("send purchase {key}: {e}"));
    stream
}

/// Look at `check` every [`POLL`] until it answers `Ok`, or panic with its last `Err` once
/// `limit` has passed.
async fn poll<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(state) if Instant::now() >= deadline => panic!("waited {limit:?} for {what}: {state}"),
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}
