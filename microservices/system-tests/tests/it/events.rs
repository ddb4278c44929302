//! Events through the transactional outbox and RabbitMQ: nothing lost while the broker is
//! away, nothing delivered twice when a message comes again; and in `sync` mode, the seed
//! story: notifications-service down, the purchase fails.

use archlab_conformance::{Api, unique_key};
use archlab_kernel::NotificationMode;
use archlab_kernel::outbox::{Dispatch, Message};
use archlab_notifications::{NotificationEvent, TOPIC};
use archlab_remote::broker::Publisher;
use archlab_system_tests::{Options, Stack};
use archlab_testkit::TcpProxy;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

async fn receipts(stack: &Stack, user_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notifications.notifications WHERE user_id = $1::uuid AND kind = 'receipt'")
        .bind(user_id)
        .fetch_one(&stack.notifications_db)
        .await
        .unwrap()
}

#[tokio::test]
async fn with_the_broker_cut_during_purchases_every_receipt_arrives_exactly_once_after_it_returns() {
    let amqp: std::net::SocketAddr = "127.0.0.1:5672".parse().unwrap();
    let proxy = TcpProxy::start(amqp).await.unwrap();
    let broker_url = format!("amqp://guest:guest@{}/%2f", proxy.addr());
    let stack = Stack::start_with_broker(Options::default(), &broker_url).await;
    let api = Api::new(&stack);
    let user = api.new_user().await;
    stack.settle().await;

    proxy.cut().await;
    let mut payment_ids = Vec::new();
    for amount in [100, 200, 300] {
        let paid = api
            .purchase(Some(&user.token), Some(&unique_key()), &json!({"amount_cents": amount, "currency": "USD"}))
            .await
            .expect_json(201, "an async purchase does not need the broker");
        payment_ids.push(paid["payment_id"].as_str().unwrap().to_owned());
    }
    // The relay tries and fails: the receipts wait in payments.outbox.
    assert_eq!(stack.payments_relay.process_pending().await.unwrap(), 0);
    assert_eq!(stack.payments_relay.pending().await.unwrap(), 3);
    assert_eq!(receipts(&stack, &user.user_id).await, 0);

    proxy.restore();
    stack.settle().await;
    // Twice: a second pass must not deliver anything again.
    stack.settle().await;

    assert_eq!(stack.payments_relay.pending().await.unwrap(), 0);
    assert_eq!(receipts(&stack, &user.user_id).await, 3, "every receipt exactly once");
    for payment_id in &payment_ids {
        let per_payment: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications.notifications WHERE payment_id = $1::uuid")
                .bind(payment_id)
                .fetch_one(&stack.notifications_db)
                .await
                .unwrap();
        assert_eq!(per_payment, 1, "payment {payment_id}");
    }
    let emails = stack.extsim.client.emails_to(&user.email).await.unwrap();
    assert_eq!(emails.len(), 4, "one welcome and three receipts, each emailed once");
}

#[tokio::test]
async fn a_redelivered_message_creates_no_second_notification() {
    let stack = Stack::start(Options::default()).await;
    let api = Api::new(&stack);
    let user = api.new_user().await;
    stack.settle().await;
    let before = stack.consumer.processed();

    // The same receipt event published twice, as the broker does after a lost ack.
    let user_id: Uuid = user.user_id.parse().unwrap();
    let event = NotificationEvent::receipt(
        user_id,
        Uuid::new_v4(),
        archlab_kernel::Money::parse(4200, "EUR").unwrap(),
        Some(user.email.clone()),
    );
    let message = Message {
        id: 0,
        event_id: event.event_id,
        topic: TOPIC.to_owned(),
        payload: serde_json::to_value(&event).unwrap(),
        attempts: 0,
        trace_context: None,
    };
    let publisher = Publisher::new(stack.broker.clone());
    publisher.dispatch(&message).await.unwrap();
    publisher.dispatch(&message).await.unwrap();
    assert!(stack.consumer.wait_processed(before + 2, Duration::from_secs(20)).await, "both copies consumed");

    assert_eq!(receipts(&stack, &user.user_id).await, 1, "a redelivery must not notify twice");
    let to_user = stack.extsim.client.emails_to(&user.email).await.unwrap();
    assert_eq!(to_user.len(), 2, "one welcome and one receipt email");
}

#[tokio::test]
async fn in_sync_mode_notifications_service_down_fails_the_purchase_after_the_charge() {
    let mut stack = Stack::start(Options { mode: NotificationMode::Sync, ..Default::default() }).await;
    let api = Api::new(&stack);
    let user = api.new_user().await;
    stack.settle().await;
    stack.stop("notifications-service").await;

    let r =
        api.purchase(Some(&user.token), Some(&unique_key()), &json!({"amount_cents": 999, "currency": "GBP"})).await;

    r.expect_error(503, "dependency_unavailable", "sync purchase with notifications-service down");
    assert!(r.text().contains("notifications"), "the error names the failed hop: {}", r.text());
    // The story the lab tells: the customer was charged and the payment recorded, but the
    // request failed because a notification could not be sent.
    let (status, notified): (String, Option<chrono_like::Ts>) =
        sqlx::query_as("SELECT status, notified_at::text FROM payments.payments")
            .fetch_one(&stack.payments_db)
            .await
            .unwrap();
    assert_eq!(status, "succeeded");
    assert!(notified.is_none());
    assert_eq!(stack.extsim.client.charges().await.unwrap().len(), 1);
}

mod chrono_like {
    /// A timestamp read as text (only its presence matters here).
    pub type Ts = String;
}
