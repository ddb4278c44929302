//! The event producers send, and how it is worded.

use archlab_kernel::Money;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Routing key / outbox topic of notification events.
pub const TOPIC: &str = "notification.requested";

/// A request to notify a user, identified by a stable `event_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationEvent {
    /// Stable identity: the same event delivered twice is recognised by it.
    pub event_id: Uuid,
    /// Who is notified.
    pub user_id: Uuid,
    /// Where to email it; `None` keeps it in-app only (the user opted out).
    pub email_to: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

/// The stored `kind` of a welcome notification.
pub const KIND_WELCOME: &str = "welcome";
/// The stored `kind` of a receipt.
pub const KIND_RECEIPT: &str = "receipt";
/// Every [`NotificationEvent::kind_name`], as stored and shown.
pub const KIND_NAMES: [&str; 2] = [KIND_WELCOME, KIND_RECEIPT];

/// The OpenAPI schema of a notification's `kind`: one of [`KIND_NAMES`].
pub(crate) fn kind_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(KIND_NAMES))
        .build()
}

/// What a notification is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A new account.
    Welcome {
        /// The user's display name.
        name: String,
    },
    /// A successful purchase.
    Receipt {
        /// The payment it is for.
        payment_id: Uuid,
        /// What was charged.
        amount: Money,
    },
}

impl NotificationEvent {
    /// The welcome event of a new account; its id is derived from the user id, so a retried
    /// signup step can never produce a second welcome.
    pub fn welcome(user_id: Uuid, email: &str, name: &str) -> Self {
        Self {
            event_id: Uuid::new_v5(&user_id, b"welcome"),
            user_id,
            email_to: Some(email.to_owned()),
            kind: EventKind::Welcome { name: name.to_owned() },
        }
    }

    /// The receipt of a payment; its id is derived from the payment id (one receipt each).
    pub fn receipt(user_id: Uuid, payment_id: Uuid, amount: Money, email_to: Option<String>) -> Self {
        Self {
            event_id: Uuid::new_v5(&payment_id, b"receipt"),
            user_id,
            email_to,
            kind: EventKind::Receipt { payment_id, amount },
        }
    }

    /// `welcome` or `receipt`: one of [`KIND_NAMES`].
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            EventKind::Welcome { .. } => KIND_WELCOME,
            EventKind::Receipt { .. } => KIND_RECEIPT,
        }
    }

    /// Subject and body as the user reads them.
    pub fn render(&self) -> (String, String) {
        match &self.kind {
            EventKind::Welcome { name } => {
                ("Welcome to archlab".to_owned(), format!("Hello {name}, your account is ready."))
            }
            EventKind::Receipt { payment_id, amount } => {
                (format!("Receipt for {amount}"), format!("We charged {amount} for payment {payment_id}. Thank you."))
            }
        }
    }

    /// The payment this is about, if any.
    pub fn payment_id(&self) -> Option<Uuid> {
        match self.kind {
            EventKind::Receipt { payment_id, .. } => Some(payment_id),
            EventKind::Welcome { .. } => None,
        }
    }
}
