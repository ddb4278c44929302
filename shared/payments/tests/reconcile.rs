//! Payments left in doubt, settled: a purchase whose caller hangs up mid-charge still
//! finishes on its own, and the reconciler completes a payment whose charge answer was lost,
//! marks failed one the provider never charged, leaves alone what a live purchase may still
//! be working on, agrees with a second reconciler running at once, and takes an unreachable
//! provider for no answer (never for "no charge"). A retry of a failed payment tries the
//! charge again. Driven with `Reconciler::reconcile_now`.

mod common;

use archlab_extsim::{BehaviourPatch, SimConfigPatch};
use archlab_kernel::{ErrorKind, Faults, NotificationMode};
use archlab_payments::{ExtsimPayments, PaymentStatus, PurchasePorts, PurchaseService, Reconciled, Reconciler};
use common::{Lab, User, lab};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn reconciler(lab: &Lab, after: Duration) -> Reconciler {
    Reconciler::new(Arc::new(lab.purchases.clone()), after)
}

async fn set_payments(lab: &Lab, patch: BehaviourPatch) {
    lab.sim.client.set_config(&SimConfigPatch::default().with_payments(patch)).await.unwrap();
}

/// A purchase that fails with `payment_provider_failed`; its payment id.
async fn buy_failing(lab: &Lab, user: &User, key: &str) -> Uuid {
    let err = lab.buy(user, key, 1999, "EUR").await.expect_err("the provider misbehaves");
    assert_eq!((err.kind, &*err.code), (ErrorKind::BadGateway, "payment_provider_failed"));
    sqlx::query_scalar("SELECT payment_id FROM payments.payments WHERE idempotency_key = $1")
        .bind(key)
        .fetch_one(&lab.pool)
        .await
        .unwrap()
}

/// A pending payment the provider charged, its answer lost on the way back.
async fn charged_in_doubt(lab: &Lab, user: &User, key: &str) -> Uuid {
    set_payments(lab, BehaviourPatch::default().with_lost_reply_rate(1.0).with_failure_rate(0.0)).await;
    let payment_id = buy_failing(lab, user, key).await;
    assert_eq!(lab.charges_for(payment_id).await.len(), 1, "the lost answer's charge was taken");
    payment_id
}

/// A pending payment the provider never charged.
async fn uncharged_in_doubt(lab: &Lab, user: &User, key: &str) -> Uuid {
    set_payments(lab, BehaviourPatch::default().with_failure_rate(1.0).with_lost_reply_rate(0.0)).await;
    let payment_id = buy_failing(lab, user, key).await;
    assert!(lab.charges_for(payment_id).await.is_empty());
    payment_id
}

async fn charge_id_of(lab: &Lab, payment_id: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT provider_charge_id FROM payments.payments WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_one(&lab.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_whose_caller_hangs_up_mid_charge_still_finishes() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    set_payments(&lab, BehaviourPatch::default().with_latency_ms(300)).await;

    // Run the purchase until its payment row is written (its charge is then at the provider
    // for 300 ms), and drop it there, as a server drops the handler of a client who left.
    let mut purchase = Box::pin(lab.buy(&ada, "order-1", 1999, "EUR"));
    let begun = async {
        while lab.count("SELECT count(*) FROM payments.payments").await == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::select! {
        answered = &mut purchase => panic!("answered before the cut: {answered:?}"),
        () = begun => {}
    }
    drop(purchase);

    // No reconciler here: the flow itself runs on to the record and the receipt.
    let deadline = Instant::now() + Duration::from_secs(10);
    let payment_id: Uuid =
        sqlx::query_scalar("SELECT payment_id FROM payments.payments").fetch_one(&lab.pool).await.unwrap();
    while lab.row(payment_id).await.0 != "succeeded" {
        assert!(Instant::now() < deadline, "the abandoned purchase never finished: {:?}", lab.row(payment_id).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lab.row(payment_id).await, ("succeeded".to_owned(), true));
    let charges = lab.charges_for(payment_id).await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charge_id_of(&lab, payment_id).await.as_deref(), Some(charges[0].charge_id.as_str()));
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1, "one receipt queued");
}

#[tokio::test]
async fn the_reconciler_completes_a_lost_answer_and_fails_an_uncharged_payment() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    let charged = charged_in_doubt(&lab, &ada, "order-1").await;
    let uncharged = uncharged_in_doubt(&lab, &ada, "order-2").await;
    lab.sim.client.reset().await.unwrap();
    for payment_id in [charged, uncharged] {
        assert_eq!(lab.row(payment_id).await, ("pending".to_owned(), false));
    }
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 0);

    // Touched moments ago: a reconciler with a bound of a minute leaves both alone.
    assert_eq!(reconciler(&lab, Duration::from_secs(60)).reconcile_now().await.unwrap(), Reconciled::default());
    assert_eq!(lab.row(charged).await.0, "pending");

    let now = reconciler(&lab, Duration::ZERO);
    let done = now.reconcile_now().await.unwrap();

    assert_eq!(done, Reconciled { succeeded: 1, failed: 1, ..Reconciled::default() });
    assert_eq!(lab.row(charged).await, ("succeeded".to_owned(), true));
    let charges = lab.charges_for(charged).await;
    assert_eq!(charges.len(), 1, "reconciling charged again");
    assert_eq!(charge_id_of(&lab, charged).await.as_deref(), Some(charges[0].charge_id.as_str()));
    assert_eq!(lab.row(uncharged).await, ("failed".to_owned(), false));
    assert!(lab.charges_for(uncharged).await.is_empty(), "reconciling charged a payment");
    // The receipt, as the purchase writes it: one outbox row, delivered once.
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1);
    assert_eq!(lab.drain_outbox().await, 1);
    assert_eq!(lab.receipt_emails(&ada).await, 1);
    let seen = lab.purchases.get(ada.user_id, uncharged).await.unwrap();
    assert_eq!(seen.status, PaymentStatus::Failed);

    // Nothing is left in doubt; a retry of the completed one charges nothing more.
    assert_eq!(now.reconcile_now().await.unwrap(), Reconciled::default());
    let replay = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();
    assert_eq!((replay.payment_id, replay.status), (charged, PaymentStatus::Succeeded));
    assert_eq!(lab.charges_for(charged).await.len(), 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1);
}

#[tokio::test]
async fn a_retry_of_a_failed_payment_tries_the_charge_again_once() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    let payment_id = uncharged_in_doubt(&lab, &ada, "order-1").await;
    lab.sim.client.reset().await.unwrap();
    reconciler(&lab, Duration::ZERO).reconcile_now().await.unwrap();
    assert_eq!(lab.row(payment_id).await.0, "failed");

    let retried = lab.buy(&ada, "order-1", 1999, "EUR").await.unwrap();

    assert_eq!((retried.payment_id, retried.status), (payment_id, PaymentStatus::Succeeded));
    assert_eq!(lab.charges_for(payment_id).await.len(), 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.payments").await, 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconcilers_at_once_settle_each_payment_once() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    let mut charged = Vec::new();
    for key in ["a", "b", "c"] {
        charged.push(charged_in_doubt(&lab, &ada, key).await);
    }
    let uncharged = uncharged_in_doubt(&lab, &ada, "d").await;
    lab.sim.client.reset().await.unwrap();

    let (one, two) = (reconciler(&lab, Duration::ZERO), reconciler(&lab, Duration::ZERO));
    let (a, b) = tokio::join!(one.reconcile_now(), two.reconcile_now());
    let (a, b) = (a.unwrap(), b.unwrap());

    assert_eq!(a.succeeded + b.succeeded, 3, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed, 1, "{a:?} {b:?}");
    for payment_id in &charged {
        assert_eq!(lab.row(*payment_id).await, ("succeeded".to_owned(), true));
        assert_eq!(lab.charges_for(*payment_id).await.len(), 1);
    }
    assert_eq!(lab.row(uncharged).await.0, "failed");
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 3, "one receipt per payment");
}

#[tokio::test]
async fn in_sync_mode_the_reconciler_delivers_the_receipt_and_retries_an_undelivered_one() {
    let lab = lab(NotificationMode::Sync).await;
    let ada = lab.user("ada").await;
    let payment_id = charged_in_doubt(&lab, &ada, "order-1").await;
    lab.sim.client.reset().await.unwrap();
    // The email provider is down: the payment is recorded, its receipt not yet sent.
    let email_down = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(1.0));
    lab.sim.client.set_config(&email_down).await.unwrap();
    let now = reconciler(&lab, Duration::ZERO);

    let first = now.reconcile_now().await.unwrap();

    assert_eq!(first, Reconciled { left: 1, ..Reconciled::default() }, "recorded, but not notified");
    assert_eq!(lab.row(payment_id).await, ("succeeded".to_owned(), false));
    assert_eq!(lab.receipt_emails(&ada).await, 0);

    lab.sim.client.reset().await.unwrap();
    let second = now.reconcile_now().await.unwrap();

    assert_eq!(second, Reconciled { notified: 1, ..Reconciled::default() });
    assert_eq!(lab.row(payment_id).await, ("succeeded".to_owned(), true));
    assert_eq!(lab.receipt_emails(&ada).await, 1);
    assert_eq!(lab.charges_for(payment_id).await.len(), 1);
    assert_eq!(lab.count("SELECT count(*) FROM payments.outbox").await, 0, "sync mode used the outbox");
}

#[tokio::test]
async fn an_unreachable_provider_ends_the_pass_and_changes_nothing() {
    let lab = lab(NotificationMode::Async).await;
    let ada = lab.user("ada").await;
    let first = uncharged_in_doubt(&lab, &ada, "order-1").await;
    let second = charged_in_doubt(&lab, &ada, "order-2").await;
    lab.sim.client.reset().await.unwrap();
    // The same flow, its provider at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let ports = PurchasePorts {
        auth: lab.auth.clone(),
        users: lab.users.clone(),
        provider: Arc::new(ExtsimPayments::new(&format!("http://{closed}"), Duration::from_secs(1))),
        notifications: lab.notifications.clone(),
    };
    let blind = PurchaseService::new(lab.pool.clone(), ports, NotificationMode::Async, Faults::default());

    let done = Reconciler::new(Arc::new(blind), Duration::ZERO).reconcile_now().await.unwrap();

    assert_eq!(done, Reconciled { left: 1, ..Reconciled::default() }, "asked again after the provider failed");
    for payment_id in [first, second] {
        assert_eq!(lab.row(payment_id).await, ("pending".to_owned(), false), "no answer is not \"no charge\"");
    }
    // With the provider back, the next pass settles both.
    let done = reconciler(&lab, Duration::ZERO).reconcile_now().await.unwrap();
    assert_eq!(done, Reconciled { succeeded: 1, failed: 1, ..Reconciled::default() });
}
