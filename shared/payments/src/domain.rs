//! Payments' values and rules.

use crate::codes;
use archlab_kernel::{Currency, Error, ErrorKind, Money};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use uuid::Uuid;

/// The body of `POST /api/payments`, as sent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseRequest {
    /// Minor units.
    #[schema(schema_with = Money::amount_schema)]
    #[serde(deserialize_with = "archlab_kernel::whole_number")]
    pub amount_cents: i64,
    /// ISO code.
    #[schema(schema_with = Currency::schema)]
    pub currency: String,
}

impl PurchaseRequest {
    /// The checked amount.
    pub fn money(&self) -> Result<Money, Error> {
        Money::parse(self.amount_cents, &self.currency)
    }
}

/// What a replay must match: the same key with another body is refused.
pub(crate) fn fingerprint(money: &Money) -> String {
    hex::encode(Sha256::digest(format!("{}|{}", money.amount_cents, money.currency.code())))
}

/// A client's `Idempotency-Key`: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Longest accepted key.
    pub const MAX_LEN: usize = 255;

    /// Read and check the `Idempotency-Key` header.
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Self, Error> {
        let missing = |why: &str| {
            Error::new(ErrorKind::BadRequest, codes::MISSING_IDEMPOTENCY_KEY, format!("Idempotency-Key {why}"))
        };
        let value = headers.get("idempotency-key").ok_or_else(|| missing("header is required"))?;
        let s = value.to_str().map_err(|_| missing("must be visible ASCII"))?;
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(missing("must be 1 to 255 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(missing("must be visible ASCII without spaces"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The header as an OpenAPI parameter, for `#[utoipa::path(params(IdempotencyKey))]`.
impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = archlab_kernel::openapi::text(1, Self::MAX_LEN).pattern(Some("^[!-~]+$"));
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(
                    "Names this purchase: the same key and body again answer the same payment, never a second \
                     charge. Visible ASCII, no spaces; scoped to the caller.",
                ))
                .schema(Some(schema))
                .build(),
        ]
    }
}

/// Where a payment stands; stored in `payments.payments.status` under its serde name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Written before the charge; the provider may or may not have charged yet.
    Pending,
    /// Charged and recorded.
    Succeeded,
    /// The provider holds no charge for it, found when it was reconciled; a retry with the
    /// same `Idempotency-Key` makes it `pending` again and tries the charge once more.
    Failed,
}

impl PaymentStatus {
    /// The stored name: `pending`, `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        archlab_kernel::wire::name(&self)
    }
}

impl TryFrom<String> for PaymentStatus {
    type Error = archlab_kernel::wire::UnknownName;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        archlab_kernel::wire::parse(&stored)
    }
}

/// A payment as its owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Payment {
    /// Its id (also the provider's idempotency key for the charge).
    pub payment_id: Uuid,
    /// `pending` until the provider charged, then `succeeded`; `failed` if it never did.
    pub status: PaymentStatus,
    /// Minor units.
    #[schema(schema_with = Money::amount_schema)]
    pub amount_cents: i64,
    /// ISO code.
    #[schema(schema_with = Currency::schema)]
    pub currency: String,
    /// When it was first requested.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct PaymentRow {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub request_fingerprint: String,
    pub amount_cents: i64,
    pub currency: String,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    pub notified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When a flow last began work on it, or settled it (the reconciler's clock).
    pub updated_at: DateTime<Utc>,
}

impl PaymentRow {
    pub fn view(&self) -> Payment {
        Payment {
            payment_id: self.payment_id,
            status: self.status,
            amount_cents: self.amount_cents,
            currency: self.currency.clone(),
            created_at: self.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("idempotency-key", v.parse().unwrap());
        h
    }

    #[test]
    fn idempotency_key_rules() {
        assert!(IdempotencyKey::from_headers(&http::HeaderMap::new()).is_err());
        assert!(IdempotencyKey::from_headers(&headers("")).is_err());
        assert!(IdempotencyKey::from_headers(&headers(&"k".repeat(256))).is_err());
        assert!(IdempotencyKey::from_headers(&headers("has space")).is_err());
        assert_eq!(IdempotencyKey::from_headers(&headers("order-42")).unwrap().as_str(), "order-42");
    }

    #[test]
    fn stored_statuses_match_the_migration() {
        // 3002_failed_and_reconcile.sql allows exactly these in `payments.status`.
        for (status, stored) in [
            (PaymentStatus::Pending, "pending"),
            (PaymentStatus::Succeeded, "succeeded"),
            (PaymentStatus::Failed, "failed"),
        ] {
            assert_eq!(status.as_str(), stored);
            assert_eq!(PaymentStatus::try_from(stored.to_owned()).unwrap(), status);
        }
        assert!(PaymentStatus::try_from("refunded".to_owned()).is_err());
    }

    #[test]
    fn fingerprint_tells_bodies_apart() {
        let a = Money::parse(100, "USD").unwrap();
        let b = Money::parse(100, "EUR").unwrap();
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&Money::parse(100, "USD").unwrap()));
    }
}
