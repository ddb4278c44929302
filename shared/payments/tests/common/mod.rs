//! The purchase flow wired the way the monolith wires it: every port bound to the real
//! service on one fresh database (all four domains migrated into it), and the real extsim
//! adapters for the payment and email providers.

#![allow(dead_code)]

use archlab_auth::{AuthService, CredentialStatus, Password};
use archlab_kernel::outbox::{Dispatch, Message, Outbox};
use archlab_kernel::{Email, Error, Faults, NotificationMode, Result};
use archlab_notifications::{ExtsimEmail, NotificationEvent, NotificationsApi, NotificationsService};
use archlab_payments::{ExtsimPayments, IdempotencyKey, Payment, PurchasePorts, PurchaseRequest, PurchaseService};
use archlab_testkit::Extsim;
use archlab_users::{DisplayName, NewProfile, UsersApi, UsersService};
use async_trait::async_trait;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// One purchase flow and everything behind it.
pub struct Lab {
    pub purchases: PurchaseService,
    pub auth: Arc<AuthService>,
    pub users: Arc<UsersService>,
    pub notifications: Arc<NotificationsService>,
    pub pool: PgPool,
    pub sim: Extsim,
}

/// A signed-up, logged-in user.
pub struct User {
    pub user_id: Uuid,
    pub email: String,
    pub token: String,
}

pub async fn lab(mode: NotificationMode) -> Lab {
    let pool = archlab_testkit::fresh_pool("payments").await;
    archlab_auth::migrate(&pool).await.expect("auth migrations");
    archlab_users::migrate(&pool).await.expect("users migrations");
    archlab_notifications::migrate(&pool).await.expect("notifications migrations");
    archlab_payments::migrate(&pool).await.expect("payments migrations");
    let sim = archlab_testkit::extsim().await;
    let timeout = Duration::from_secs(5);
    let auth = Arc::new(AuthService::new(pool.clone(), None, Duration::from_secs(3600), Faults::default()));
    let users = Arc::new(UsersService::new(pool.clone(), Faults::default()));
    let email = Arc::new(ExtsimEmail::new(&sim.url, timeout));
    let notifications = Arc::new(NotificationsService::new(pool.clone(), email, Faults::default()));
    let ports = PurchasePorts {
        auth: auth.clone(),
        users: users.clone(),
        provider: Arc::new(ExtsimPayments::new(&sim.url, timeout)),
        notifications: notifications.clone(),
    };
    let purchases = PurchaseService::new(pool.clone(), ports, mode, Faults::default());
    Lab { purchases, auth, users, notifications, pool, sim }
}

impl Lab {
    /// Credentials, profile and a session for a new user named after `handle`.
    pub async fn user(&self, handle: &str) -> User {
        let user_id = Uuid::new_v4();
        let email = Email::parse(&format!("{handle}@example.com")).unwrap();
        let hash = self.auth.hash_password(&Password::parse(PASSWORD).unwrap()).await.unwrap();
        let mut conn = self.pool.acquire().await.unwrap();
        self.auth.insert_credentials(&mut conn, user_id, &email, &hash, CredentialStatus::Active).await.unwrap();
        drop(conn);
        let name = DisplayName::parse(handle).unwrap();
        self.users.create_profile(NewProfile { user_id, email: email.clone(), name }).await.unwrap();
        let token = self.auth.login(email.as_str(), PASSWORD).await.unwrap().token;
        User { user_id, email: email.as_str().to_owned(), token }
    }

    /// Buy `amount_cents` of `currency` as `user` under idempotency key `key`.
    pub async fn buy(&self, user: &User, key: &str, amount_cents: i64, currency: &str) -> Result<Payment> {
        let request = PurchaseRequest { amount_cents, currency: currency.to_owned() };
        self.purchases.purchase(&user.token, &idempotency_key(key), &request).await
    }

    /// `SELECT count(*) ...` as a number.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&self.pool).await.unwrap()
    }

    /// Status and `notified_at IS NOT NULL` of a payment row.
    pub async fn row(&self, payment_id: Uuid) -> (String, bool) {
        sqlx::query_as("SELECT status, notified_at IS NOT NULL FROM payments.payments WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Accepted charges at extsim under `payment_id` as the idempotency key.
    pub async fn charges_for(&self, payment_id: Uuid) -> Vec<archlab_extsim::Charge> {
        self.sim.client.charges_with_key(&payment_id.to_string()).await.unwrap()
    }

    /// Receipt emails extsim accepted for `user`.
    pub async fn receipt_emails(&self, user: &User) -> usize {
        let emails = self.sim.client.emails_to(&user.email).await.unwrap();
        emails.iter().filter(|e| e.subject.starts_with("Receipt")).count()
    }

    /// Deliver every event in `payments.outbox` to notifications, as the monolith's worker does.
    pub async fn drain_outbox(&self) -> usize {
        let to_notifications = ToNotifications(self.notifications.clone());
        Outbox::new(self.pool.clone(), archlab_payments::SCHEMA).process_all_pending(&to_notifications).await.unwrap()
    }
}

/// The `Idempotency-Key` header value `key`, parsed as the route parses it.
pub fn idempotency_key(key: &str) -> IdempotencyKey {
    let mut headers = http::HeaderMap::new();
    headers.insert("idempotency-key", key.parse().unwrap());
    IdempotencyKey::from_headers(&headers).unwrap()
}

struct ToNotifications(Arc<NotificationsService>);

#[async_trait]
impl Dispatch for ToNotifications {
    async fn dispatch(&self, message: &Message) -> Result<()> {
        let event: NotificationEvent = serde_json::from_value(message.payload.clone()).map_err(Error::internal)?;
        self.0.deliver(event).await.map(drop)
    }
}
