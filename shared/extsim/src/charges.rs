//! The simulated payment API, shaped like Stripe's: `POST /v1/charges` with an
//! `Idempotency-Key`, and `GET /v1/charges` for the audit.
//!
//! The order of a charge request is the point of the simulation: validate, wait the
//! configured latency, maybe fail (recording nothing), and only then record — once per key —
//! and, with the configured lost-reply rate, drop the connection instead of answering.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::extract::{IdempotencyKey, JsonBody, QueryParams};
use crate::hangup;
use crate::ledger::Outcome;
use crate::state::AppState;

/// The body of `POST /v1/charges`.
///
/// A retry counts as "the same request" only if all three fields are equal; anything else
/// under a known key is a `409 idempotency_conflict`, as with Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCharge {
    /// Amount in the currency's smallest unit; must be positive.
    pub amount_cents: i64,
    /// ISO-4217-like code: three uppercase ASCII letters.
    pub currency: String,
    /// Caller's own reference (an order id, say), echoed back.
    #[serde(default)]
    pub reference: Option<String>,
}

/// A charge the payment API accepted; `GET /v1/charges` lists these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// `ch_` followed by a simple UUID.
    pub charge_id: String,
    /// The key of the request that created it.
    pub idempotency_key: String,
    /// Amount in the currency's smallest unit.
    pub amount_cents: i64,
    /// Three uppercase letters.
    pub currency: String,
    /// The caller's reference, if it gave one.
    pub reference: Option<String>,
    /// When it was accepted (RFC 3339 on the wire).
    pub created_at: DateTime<Utc>,
}

/// The answer to `POST /v1/charges`: the charge, and whether this answer is a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeReceipt {
    /// The charge, created now or by the first request with this key.
    #[serde(flatten)]
    pub charge: Charge,
    /// True when the key was already known and nothing new was charged.
    pub replayed: bool,
}

/// The body of `GET /v1/charges`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChargeList {
    pub(crate) charges: Vec<Charge>,
}

#[derive(Debug, Deserialize)]
struct ChargeFilter {
    idempotency_key: Option<String>,
}

impl NewCharge {
    fn validate(&self) -> Result<()> {
        if self.amount_cents <= 0 {
            return Err(Error::InvalidRequest("amount_cents must be a positive integer".into()));
        }
        let currency_ok = self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase());
        if !currency_ok {
            return Err(Error::InvalidRequest("currency must be three uppercase letters, like \"EUR\"".into()));
        }
        Ok(())
    }
}

/// The payment API's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/charges", get(list_charges).post(create_charge))
}

#[tracing::instrument(
    name = "extsim.create_charge",
    skip_all,
    fields(idempotency_key = %key.0, amount_cents = request.amount_cents),
    err(level = "info")
)]
async fn create_charge(
    State(state): State<AppState>,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<NewCharge>,
) -> Result<Response> {
    request.validate()?;
    let behaviour = state.sim_config().payments;
    behaviour.simulate().await?;
    let IdempotencyKey(key) = key;
    let outcome = state.charges().accept(&key, request.clone(), || Charge {
        charge_id: format!("ch_{}", Uuid::new_v4().simple()),
        idempotency_key: key.clone(),
        amount_cents: request.amount_cents,
        currency: request.currency.clone(),
        reference: request.reference.clone(),
        created_at: Utc::now(),
    })?;
    let (status, charge, replayed) = match outcome {
        Outcome::Created(charge) => (StatusCode::CREATED, charge, false),
        Outcome::Replayed(charge) => (StatusCode::OK, charge, true),
    };
    // Recorded either way: a lost reply loses only the answer.
    Ok(hangup::answer((status, Json(ChargeReceipt { charge, replayed })), behaviour.reply_lost()))
}

async fn list_charges(
    State(state): State<AppState>,
    QueryParams(filter): QueryParams<ChargeFilter>,
) -> Json<ChargeList> {
    let charges =
        state.charges().list(|charge| filter.idempotency_key.as_ref().is_none_or(|key| *key == charge.idempotency_key));
    Json(ChargeList { charges })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(amount_cents: i64, currency: &str) -> NewCharge {
        NewCharge { amount_cents, currency: currency.into(), reference: None }
    }

    #[test]
    fn amount_must_be_positive_and_currency_three_uppercase_letters() {
        assert!(charge(1, "EUR").validate().is_ok());
        assert!(charge(0, "EUR").validate().is_err());
        assert!(charge(-5, "EUR").validate().is_err());
        assert!(charge(100, "eur").validate().is_err());
        assert!(charge(100, "EU").validate().is_err());
        assert!(charge(100, "EURO").validate().is_err());
        assert!(charge(100, "ÉUR").validate().is_err());
    }
}
