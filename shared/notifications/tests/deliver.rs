//! `NotificationsService::deliver` and `list` with the real extsim email adapter.
//!
//! Covers: delivering an event twice answers `duplicate: true` the second time and leaves
//! one notification, one inbox row and one email; an email provider outage fails the
//! delivery as `Unavailable` and leaves nothing behind, so the redelivery after recovery
//! sends it; a redelivery of a recorded event asks nothing of the provider; a crash between
//! the email and the record is redelivered without a second email; `email_to: None` records
//! the notification without any email; ten concurrent deliveries of one event produce
//! exactly one row and one email; no database connection is held while the provider is
//! slow; and `list` is per user, newest first.

use archlab_extsim::{BehaviourPatch, SimConfigPatch};
use archlab_kernel::{ErrorKind, Faults, Money, Result};
use archlab_notifications::{
    EmailApi, ExtsimEmail, NotificationEvent, NotificationsApi, NotificationsService, OutgoingEmail,
};
use archlab_testkit::Extsim;
use async_trait::async_trait;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

#[tokio::test]
async fn delivering_the_same_event_twice_notifies_once() {
    let lab = lab().await;
    let event = NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada");

    let first = lab.service.deliver(event.clone()).await.unwrap();
    let second = lab.service.deliver(event.clone()).await.unwrap();

    assert!(!first.duplicate);
    assert!(second.duplicate, "the redelivery was not recognised");
    assert_eq!(second.notification_id, first.notification_id);
    assert_eq!(lab.rows("notifications.notifications").await, 1);
    assert_eq!(lab.rows("notifications.processed_messages").await, 1);
    let emails = lab.sim.client.emails_to("ada@example.com").await.unwrap();
    assert_eq!(emails.len(), 1, "emails: {emails:?}");
    assert_eq!(emails[0].idempotency_key, event.event_id.to_string());
    assert_eq!(emails[0].subject, "Welcome to archlab");
    let email_id: Option<String> =
        sqlx::query_scalar("SELECT email_id FROM notifications.notifications").fetch_one(&lab.pool).await.unwrap();
    assert_eq!(email_id.as_deref(), Some(emails[0].email_id.as_str()));
}

#[tokio::test]
async fn an_email_outage_fails_the_delivery_and_leaves_nothing_behind() {
    let lab = lab().await;
    let down = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(1.0));
    lab.sim.client.set_config(&down).await.unwrap();
    let event = NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada");

    let err = lab.service.deliver(event.clone()).await.expect_err("email provider is down");

    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.code, "dependency_unavailable");
    assert_eq!(lab.rows("notifications.processed_messages").await, 0, "the inbox remembered a failed delivery");
    assert_eq!(lab.rows("notifications.notifications").await, 0);
    assert!(lab.sim.client.emails().await.unwrap().is_empty());

    // After recovery the redelivered event goes out, once.
    lab.sim.client.reset().await.unwrap();
    let delivery = lab.service.deliver(event.clone()).await.unwrap();
    assert!(!delivery.duplicate, "the failed attempt was counted as a delivery");
    assert_eq!(lab.rows("notifications.notifications").await, 1);
    assert_eq!(lab.rows("notifications.processed_messages").await, 1);
    assert_eq!(lab.sim.client.emails_to("ada@example.com").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_fault_at_deliver_leaves_nothing_behind() {
    let lab = lab().await;
    let faults = Faults::default();
    let email = Arc::new(ExtsimEmail::new(&lab.sim.url, Duration::from_secs(5)));
    let faulty = NotificationsService::new(lab.pool.clone(), email, faults.clone());
    faults.enable(archlab_notifications::faults::DELIVER);
    let event = NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada");

    let err = faulty.deliver(event.clone()).await.expect_err("fault point is on");

    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(lab.rows("notifications.processed_messages").await, 0);
    assert!(lab.sim.client.emails().await.unwrap().is_empty());
    faults.disable(archlab_notifications::faults::DELIVER);
    assert!(!faulty.deliver(event).await.unwrap().duplicate);
}

#[tokio::test]
async fn a_redelivery_of_a_recorded_event_asks_nothing_of_the_provider() {
    let lab = lab().await;
    let event = NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada");
    let first = lab.service.deliver(event.clone()).await.unwrap();
    // The provider is down now: a redelivery that called it again would fail.
    let down = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(1.0));
    lab.sim.client.set_config(&down).await.unwrap();

    let again = lab.service.deliver(event).await.expect("a recorded event is answered from the database");

    assert!(again.duplicate);
    assert_eq!(again.notification_id, first.notification_id);
    assert_eq!(lab.sim.client.emails().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_crash_between_the_email_and_the_record_is_redelivered_without_a_second_email() {
    let lab = lab().await;
    let faults = Faults::default();
    let email = Arc::new(ExtsimEmail::new(&lab.sim.url, Duration::from_secs(5)));
    let crashing = NotificationsService::new(lab.pool.clone(), email, faults.clone());
    faults.enable(archlab_notifications::faults::RECORD);
    let event = NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada");

    crashing.deliver(event.clone()).await.expect_err("fails after the email, before the record");

    let sent = lab.sim.client.emails_to("ada@example.com").await.unwrap();
    assert_eq!(sent.len(), 1, "the email went out before the failure");
    assert_eq!(lab.rows("notifications.processed_messages").await, 0, "nothing was recorded");
    assert_eq!(lab.rows("notifications.notifications").await, 0);

    // The redelivery sends under the same key: the provider replays, and the row records
    // the one email there is.
    faults.disable(archlab_notifications::faults::RECORD);
    let delivery = crashing.deliver(event).await.unwrap();
    assert!(!delivery.duplicate, "the failed attempt was counted as a delivery");
    assert_eq!(lab.sim.client.emails_to("ada@example.com").await.unwrap(), sent, "a second email was sent");
    let email_id: Option<String> =
        sqlx::query_scalar("SELECT email_id FROM notifications.notifications").fetch_one(&lab.pool).await.unwrap();
    assert_eq!(email_id.as_deref(), Some(sent[0].email_id.as_str()));
}

#[tokio::test]
async fn no_database_connection_is_held_while_the_email_provider_is_slow() {
    // One connection in the pool: a delivery holding it across the provider call would
    // starve every other query until the provider answered.
    let database = archlab_testkit::fresh_database_name("notifications");
    let url = archlab_testkit::database_url().await;
    let pool = archlab_kernel::db::connect(&url, &database, 1).await.expect("a one-connection pool");
    archlab_notifications::migrate(&pool).await.expect("notifications migrations");
    let sim = archlab_testkit::extsim().await;
    let slow = SimConfigPatch::default().with_email(BehaviourPatch::default().with_latency_ms(60_000));
    sim.client.set_config(&slow).await.unwrap();
    let (email, mut calling) = Watched::new(ExtsimEmail::new(&sim.url, Duration::from_secs(120)));
    let service = NotificationsService::new(pool.clone(), Arc::new(email), Faults::default());
    let event = NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada");

    let slow_delivery = {
        let (service, event) = (service.clone(), event.clone());
        tokio::spawn(async move { service.deliver(event).await })
    };
    within(calling.recv(), "the delivery to call the provider").await;

    // The provider takes a minute; meanwhile the pool's one connection serves others: a
    // read and a whole delivery (an opted-out receipt, which needs no provider).
    let other_user = Uuid::new_v4();
    let receipt = NotificationEvent::receipt(other_user, Uuid::new_v4(), Money::parse(100, "EUR").unwrap(), None);
    let other = within(service.deliver(receipt), "another delivery while the provider is slow").await;
    assert!(!other.expect("a connection was free").duplicate);
    let listed = within(service.list(other_user), "a read while the provider is slow").await;
    assert_eq!(listed.expect("a connection was free").len(), 1);
    assert!(!slow_delivery.is_finished(), "the provider call was still in flight");

    // The caller gives up (a consumer stopping, a timeout): nothing was recorded for the
    // slow event, and once the provider is back its redelivery sends it once.
    slow_delivery.abort();
    let _ = slow_delivery.await;
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.processed_messages WHERE event_id = $1")
        .bind(event.event_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(recorded, 0);
    sim.client.reset().await.unwrap();
    assert!(!service.deliver(event).await.unwrap().duplicate);
    assert_eq!(sim.client.emails_to("ada@example.com").await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_event_without_an_address_is_recorded_but_not_emailed() {
    let lab = lab().await;
    let user_id = Uuid::new_v4();
    let payment_id = Uuid::new_v4();
    let event = NotificationEvent::receipt(user_id, payment_id, Money::parse(1999, "EUR").unwrap(), None);

    let delivery = lab.service.deliver(event).await.unwrap();

    let listed = lab.service.list(user_id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].notification_id, delivery.notification_id);
    assert_eq!(listed[0].kind, "receipt");
    assert_eq!(listed[0].payment_id, Some(payment_id));
    assert_eq!(listed[0].subject, "Receipt for 19.99 EUR");
    assert!(lab.sim.client.emails().await.unwrap().is_empty(), "an opted-out user was emailed");
    let email_id: Option<String> =
        sqlx::query_scalar("SELECT email_id FROM notifications.notifications").fetch_one(&lab.pool).await.unwrap();
    assert_eq!(email_id, None);
}

#[tokio::test]
async fn ten_concurrent_deliveries_of_one_event_notify_once() {
    let lab = lab().await;
    let event = NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (service, event) = (lab.service.clone(), event.clone());
        tasks.spawn(async move { service.deliver(event).await });
    }
    let deliveries: Vec<_> = tasks.join_all().await.into_iter().map(|r| r.expect("a delivery failed")).collect();

    assert_eq!(deliveries.iter().filter(|d| !d.duplicate).count(), 1, "{deliveries:?}");
    assert!(deliveries.iter().all(|d| d.notification_id == deliveries[0].notification_id));
    assert_eq!(lab.rows("notifications.notifications").await, 1);
    assert_eq!(lab.rows("notifications.processed_messages").await, 1);
    assert_eq!(lab.sim.client.emails_to("ada@example.com").await.unwrap().len(), 1);
}

#[tokio::test]
async fn list_shows_only_the_users_notifications_newest_first() {
    let lab = lab().await;
    let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let (p1, p2) = (Uuid::new_v4(), Uuid::new_v4());
    let money = Money::parse(500, "USD").unwrap();
    for event in [
        NotificationEvent::welcome(ada, "ada@example.com", "Ada"),
        NotificationEvent::welcome(bob, "bob@example.com", "Bob"),
        NotificationEvent::receipt(ada, p1, money, Some("ada@example.com".into())),
        NotificationEvent::receipt(ada, p2, money, None),
    ] {
        lab.service.deliver(event).await.unwrap();
    }

    let adas = lab.service.list(ada).await.unwrap();
    let bobs = lab.service.list(bob).await.unwrap();

    let summary: Vec<_> = adas.iter().map(|n| (n.kind.as_str(), n.payment_id)).collect();
    assert_eq!(summary, vec![("receipt", Some(p2)), ("receipt", Some(p1)), ("welcome", None)]);
    assert!(adas.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].body, "Hello Bob, your account is ready.");
    assert!(lab.service.list(Uuid::new_v4()).await.unwrap().is_empty());
}

// --- helpers ---

/// A service on a fresh, migrated database, sending through its own extsim.
struct Lab {
    service: NotificationsService,
    pool: PgPool,
    sim: Extsim,
}

impl Lab {
    async fn rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// An email adapter that reports each call as it starts, then lets the real one do it.
struct Watched {
    inner: ExtsimEmail,
    calling: mpsc::UnboundedSender<String>,
}

impl Watched {
    fn new(inner: ExtsimEmail) -> (Self, mpsc::UnboundedReceiver<String>) {
        let (calling, rx) = mpsc::unbounded_channel();
        (Self { inner, calling }, rx)
    }
}

#[async_trait]
impl EmailApi for Watched {
    async fn send(&self, email: &OutgoingEmail) -> Result<String> {
        let _ = self.calling.send(email.idempotency_key.clone());
        self.inner.send(email).await
    }
}

/// Fails the test if `fut` takes more than ten seconds: a deadlock guard, not a sleep.
async fn within<F: std::future::IntoFuture>(fut: F, what: &str) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn lab() -> Lab {
    let pool = archlab_testkit::fresh_pool("notifications").await;
    archlab_notifications::migrate(&pool).await.expect("notifications migrations");
    let sim = archlab_testkit::extsim().await;
    let email = Arc::new(ExtsimEmail::new(&sim.url, Duration::from_secs(5)));
    let service = NotificationsService::new(pool.clone(), email, Faults::default());
    Lab { service, pool, sim }
}
