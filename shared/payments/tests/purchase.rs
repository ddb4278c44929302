//! The purchase flow end to end, with real auth, users and notifications services on one
//! fresh database and the real extsim payment and email providers.
//!
//! Covers: the happy path (one charge keyed by the payment id, the receipt queued in the
//! outbox in async mode and delivered once from there); a replay answers the identical
//! payment without charging again; the same key with another body is a 422
//! `idempotency_key_reused`; keys are scoped per user; a payment provider outage is a 502
//! that leaves the payment `pending` and nothing charged, and the retry with the same key
//! charges exactly once; `list` and `get` show only the owner's payments; and in sync mode
//! a notifications outage is a 503 after the charge is recorded, finished by a retry that
//! sends exactly one receipt. Also: dead tokens, invalid amounts and suspended users buy
//! nothing; concurrent retries agree on one payment; an opted-out user gets no email.

mod common;

use archlab_extsim::{BehaviourPatch, SimConfigPatch};
use archlab_kernel::{ErrorKind, NotificationMode};
use archlab_notifications::TOPIC;
use archlab_payments::PaymentStatus;
use archlab_users::{PreferencesPatch, ProfilePatch};
use common::lab;
use uuid::Uuid;

#[tokio::test]
async fn a_purchase_charges_once_and_queues_one_receipt() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;

    let payment = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!((payment.amount_cents, payment.currency.as_str()), (1999, "EUR"));
    let charges = lab.sim.client.charges().await.unwrap();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].idempotency_key, payment.payment_id.to_string());
    assert_eq!((charges[0].amount_cents, charges[0].currency.as_str()), (1999, "EUR"));
    let charge_id: Option<String> =
        sqlx::query_scalar("SELECT provider_charge_id FROM payments.payments WHERE payment_id = $1")
            .bind(payment.payment_id)
            .fetch_one(&lab.pool)
            .await
            .unwrap();
    assert_eq!(charge_id.as_deref(), Some(charges[0].charge_id.as_str()));
    assert_eq!(lab.row(payment.payment_id).await, ("succeeded".to_owned(), true));

    // The receipt waits in the outbox, keyed by an id derived from the payment.
    let (event_id, topic): (Uuid, String) =
        sqlx::query_as("SELECT event_id, topic FROM payments.outbox").fetch_one(&lab.pool).await.unwrap();
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1);
    assert_eq!(event_id, Uuid::new_v5(&payment.payment_id, b"receipt"));
    assert_eq!(topic, TOPIC);
    assert_eq!(lab.receipt_emails(&ada).await, 0, "async mode emailed inside the request");

    // The worker delivers it once.
    assert_eq!(lab.drain_outbox().await, 1);
    assert_eq!(lab.receipt_emails(&ada).await, 1);
    let listed = lab.notifications.list(ada.user_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].payment_id, Some(payment.payment_id));
}

#[tokio::test]
async fn a_replay_answers_the_same_payment_without_charging_again() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    let first = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    let replay = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    assert_eq!(replay, first);
    assert_eq!(lab.sim.client.charges().await.unwrap().len(), 1, "the replay charged again");
    assert_eq!(lab.count("SELECT count(*) FROM payments.payments").await, 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1, "the replay queued a second receipt");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    let first = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    for (amount, currency) in [(2999, "EUR"), (1999, "USD")] {
        let err = lab.buy(&ada, "order-1", amount, currency).await.expect_err("reused key");
        assert_eq!(err.kind, ErrorKind::Unprocessable);
        assert_eq!(err.code, "idempotency_key_reused");
    }

    assert_eq!(lab.sim.client.charges().await.unwrap().len(), 1);
    assert_eq!(lab.purchases.list(ada.user_id).await.unwrap(), vec![first]);
}

#[tokio::test]
async fn idempotency_keys_are_scoped_per_user() {
    let lab = lab(NotificationMode::Async).await;
    let (ada, bob) = (lab.user("ada").await, lab.user("bob").await);

    let adas = lab.buy(&ada, "order-1", 1000, "USD").await.unwrap();
    let bobs = lab.buy(&bob, "order-1", 2000, "GBP").await.unwrap();

    assert_ne!(adas.payment_id, bobs.payment_id);
    assert_eq!(bobs.amount_cents, 2000, "bob got ada's payment back");
    assert_eq!(lab.charges_for(adas.payment_id).await.len(), 1);
    assert_eq!(lab.charges_for(bobs.payment_id).await.len(), 1);
    assert_eq!(lab.purchases.list(ada.user_id).await.unwrap(), vec![adas]);
    assert_eq!(lab.purchases.list(bob.user_id).await.unwrap(), vec![bobs]);
}

#[tokio::test]
async fn a_provider_outage_is_a_502_that_charges_nothing_and_a_retry_charges_once() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    let down = SimConfigPatch::default().with_payments(BehaviourPatch::default().with_failure_rate(1.0));
    lab.sim.client.set_config(&down).await.unwrap();

    let err = lab.buy(&ada, "order-1", 1999, "EUR").await.expect_err("provider is down");

    assert_eq!(err.kind, ErrorKind::BadGateway);
    assert_eq!(err.code, "payment_provider_failed");
    let (payment_id, status): (Uuid, String) =
        sqlx::query_as("SELECT payment_id, status FROM payments.payments").fetch_one(&lab.pool).await.unwrap();
    assert_eq!(status, "pending");
    assert!(lab.sim.client.charges().await.unwrap().is_empty());
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 0, "a receipt for an uncharged payment");

    lab.sim.client.reset().await.unwrap();
    let paid = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    assert_eq!(paid.payment_id, payment_id, "the retry did not resume the pending payment");
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    assert_eq!(lab.charges_for(payment_id).await.len(), 1);
    assert_eq!(lab.sim.client.charges().await.unwrap().len(), 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.payments").await, 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1);
}

#[tokio::test]
async fn list_and_get_show_only_the_owners_payments() {
    let lab = lab(NotificationMode::Async).await;
    let (ada, bob) = (lab.user("ada").await, lab.user("bob").await);
    let older = lab.buy(&ada, "a-1", 100, "USD").await.unwrap();
    let newer = lab.buy(&ada, "a-2", 200, "USD").await.unwrap();
    let bobs = lab.buy(&bob, "b-1", 300, "USD").await.unwrap();

    assert_eq!(lab.purchases.list(ada.user_id).await.unwrap(), vec![newer.clone(), older.clone()]);
    assert_eq!(lab.purchases.list(bob.user_id).await.unwrap(), vec![bobs.clone()]);
    assert!(lab.purchases.list(Uuid::new_v4()).await.unwrap().is_empty());

    assert_eq!(lab.purchases.get(ada.user_id, older.payment_id).await.unwrap(), older);
    for (who, payment_id) in
        [(bob.user_id, older.payment_id), (ada.user_id, bobs.payment_id), (ada.user_id, Uuid::new_v4())]
    {
        let err = lab.purchases.get(who, payment_id).await.expect_err("not the owner's");
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(err.code, "not_found");
    }
}

#[tokio::test]
async fn a_dead_or_garbled_token_buys_nothing() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    lab.auth.logout(&ada.token).await.unwrap();
    let garbled = common::User { token: "not-a-token".into(), ..lab.user("bob").await };

    for user in [&ada, &garbled] {
        let err = lab.buy(user, "order-1", 1999, "EUR").await.expect_err("no live session");
        assert_eq!(err.kind, ErrorKind::Unauthorized);
    }

    assert_eq!(lab.count("SELECT count(*) FROM payments.payments").await, 0);
    assert!(lab.sim.client.charges().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_invalid_amount_is_refused_before_anything_is_written() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;

    for (amount, currency) in [(0, "USD"), (-5, "USD"), (100, "usd"), (100, "XYZ")] {
        let err = lab.buy(&ada, "order-1", amount, currency).await.expect_err("invalid amount");
        assert_eq!(err.kind, ErrorKind::Unprocessable, "{amount} {currency}");
        assert_eq!(err.code, "validation_failed");
    }

    assert_eq!(lab.count("SELECT count(*) FROM payments.payments").await, 0);
}

#[tokio::test]
async fn sync_mode_sends_the_receipt_inside_the_request() {
    let lab = lab(NotificationMode::Sync).await;
    let ada = lab.user("ada").await;

    let payment = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    assert_eq!(lab.row(payment.payment_id).await, ("succeeded".to_owned(), true));
    assert_eq!(lab.receipt_emails(&ada).await, 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 0, "sync mode used the outbox");
}

#[tokio::test]
async fn sync_mode_notification_outage_is_a_503_and_a_retry_sends_one_receipt() {
    let lab = lab(NotificationMode::Sync).await;
    let ada = lab.user("ada").await;
    let down = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(1.0));
    lab.sim.client.set_config(&down).await.unwrap();

    let err = lab.buy(&ada, "order-1", 1999, "EUR").await.expect_err("notifications are down");

    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.code, "dependency_unavailable");
    let payment_id: Uuid =
        sqlx::query_scalar("SELECT payment_id FROM payments.payments").fetch_one(&lab.pool).await.unwrap();
    assert_eq!(lab.row(payment_id).await, ("succeeded".to_owned(), false), "charged but should not be notified yet");
    assert_eq!(lab.charges_for(payment_id).await.len(), 1);
    assert_eq!(lab.receipt_emails(&ada).await, 0);

    lab.sim.client.reset().await.unwrap();
    let paid = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    assert_eq!(paid.payment_id, payment_id);
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    assert_eq!(lab.row(payment_id).await, ("succeeded".to_owned(), true));
    assert_eq!(lab.charges_for(payment_id).await.len(), 1, "the retry charged again");
    assert_eq!(lab.receipt_emails(&ada).await, 1);
    // A further replay changes nothing.
    assert_eq!(lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap(), paid);
    assert_eq!(lab.receipt_emails(&ada).await, 1);
    assert_eq!(lab.count("SELECT count(*) FROM notifications.notifications").await, 1);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_charge_once_and_agree() {
    let lab = std::sync::Arc::new(lab(NotificationMode::Async).await);
    let ada = std::sync::Arc::new(lab.user("ada").await);

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (lab, ada) = (lab.clone(), ada.clone());
        tasks.spawn(async move { lab.buy(&ada, "order-1", 1999, "EUR").await });
    }
    let payments: Vec<_> = tasks.join_all().await.into_iter().map(|r| r.expect("a retry failed")).collect();

    assert!(payments.iter().all(|p| *p == payments[0]), "retries disagree: {payments:?}");
    assert_eq!(payments[0].status, PaymentStatus::Succeeded);
    assert_eq!(lab.sim.client.charges().await.unwrap().len(), 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.payments").await, 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1);
}

#[tokio::test]
async fn a_suspended_user_cannot_buy() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    sqlx::query("UPDATE users.profiles SET status = 'suspended' WHERE user_id = $1")
        .bind(ada.user_id)
        .execute(&lab.pool)
        .await
        .unwrap();

    let err = lab.buy(&ada, "order-1", 1999, "EUR").await.expect_err("suspended");

    assert_eq!(err.kind, ErrorKind::Unprocessable);
    assert_eq!(err.code, "user_inactive");
    assert_eq!(lab.count("SELECT count(*) FROM payments.payments").await, 0);
    assert!(lab.sim.client.charges().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_user_who_opted_out_of_receipts_gets_one_in_app_but_no_email() {
    let lab = lab(NotificationMode::Sync).await;
    let ada = lab.user("ada").await;
    let patch = ProfilePatch {
        name: None,
        preferences: Some(PreferencesPatch { email_receipts: Some(false), ..Default::default() }),
    };
    lab.users.update_profile(ada.user_id, patch).await.unwrap();

    let payment = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    assert_eq!(lab.row(payment.payment_id).await, ("succeeded".to_owned(), true));
    assert_eq!(lab.receipt_emails(&ada).await, 0, "emailed a user who opted out");
    let listed = lab.notifications.list(ada.user_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].payment_id, Some(payment.payment_id));
}
