//! The payments domain: the purchase flow, its record, and the payment provider port.
//!
//! Read top to bottom: [`domain`] (the request, the idempotency key, the payment), the
//! [`PaymentProvider`] port with its extsim adapter, [`PurchaseService`] (the seed scenario:
//! session → user → charge → record → notify), the [`Reconciler`] that settles what a
//! purchase left in doubt, and [`http::router`].
//!
//! The purchase flow is the same code in both builds. What differs is only what its ports
//! are bound to: in the monolith `auth`, `users` and `notifications` are in-process services;
//! in the microservices they are gRPC or HTTP clients. That is the lab's whole point: the
//! same steps, with or without a network between them.

pub mod domain;
pub mod http;
mod provider;
mod purchase;
mod reconcile;

pub use archlab_kernel::NotificationMode;
pub use domain::{IdempotencyKey, Payment, PaymentStatus, PurchaseRequest};
pub use provider::{Charge, ExtsimPayments, PaymentProvider};
pub use purchase::{PurchasePorts, PurchaseService};
pub use reconcile::{Reconciled, Reconciler};

/// The schema that holds this domain's tables.
pub const SCHEMA: &str = "payments";

/// The error codes payments answers (the generic ones are in `archlab_kernel::codes`).
pub mod codes {
    archlab_kernel::error_codes! {
        /// 400: a purchase without a usable `Idempotency-Key`.
        MISSING_IDEMPOTENCY_KEY = "missing_idempotency_key";
        /// 422: the same `Idempotency-Key` with a different body.
        IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused";
        /// 422: the buyer's account may not make purchases.
        USER_INACTIVE = "user_inactive";
        /// 502: the payment provider failed; nothing was charged twice.
        PAYMENT_PROVIDER_FAILED = "payment_provider_failed";
    }
}

/// Payments' fault points (see `archlab_kernel::Faults`).
pub mod faults {
    use archlab_kernel::faults::points;
    /// Fails recording a charged payment, after the charge and before the commit.
    pub const RECORD: &str = points::PAYMENTS_RECORD.name;
    /// Every fault point of this domain: what a process hosting it reaches.
    pub const ALL: &[&str] = &[RECORD];
}

/// Create the `payments` schema's tables, the outbox receipts leave by included.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    archlab_kernel::db::migrate(pool, sqlx::migrate!("./migrations"), SCHEMA).await?;
    archlab_kernel::outbox::create_table(pool, SCHEMA).await?;
    Ok(())
}
