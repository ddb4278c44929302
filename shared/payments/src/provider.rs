//! The payment provider port and its adapter for extsim's Stripe-like API.

use archlab_kernel::{Error, ErrorKind, Money, Result};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// A charge the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Charge {
    /// The provider's id for it.
    pub charge_id: String,
}

/// Charges money through a third party.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Charge `amount` once per `payment_id`: the provider deduplicates on it.
    async fn charge(&self, payment_id: Uuid, amount: Money) -> Result<Charge>;

    /// The charge the provider holds for `payment_id`, if any: what the reconciler asks of
    /// a payment left in doubt. Answers only what the provider said; an unreachable
    /// provider is an error, never "no charge".
    async fn find_charge(&self, payment_id: Uuid) -> Result<Option<Charge>>;
}

/// extsim's `POST /v1/charges`.
#[derive(Clone)]
pub struct ExtsimPayments {
    client: reqwest::Client,
    base_url: String,
}

impl ExtsimPayments {
    /// An adapter for the payment API at `base_url` (e.g. `http://127.0.0.1:8090`).
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let client = reqwest::Client::builder().timeout(timeout).build().expect("static reqwest configuration");
        Self { client, base_url: base_url.trim_end_matches('/').to_owned() }
    }
}

fn provider_failed(detail: impl std::fmt::Display) -> Error {
    tracing::warn!(%detail, "payment provider failed");
    Error::new(
        ErrorKind::BadGateway,
        crate::codes::PAYMENT_PROVIDER_FAILED,
        "the payment provider failed; nothing was charged twice, retry with the same Idempotency-Key",
    )
}

#[async_trait]
impl PaymentProvider for ExtsimPayments {
    #[tracing::instrument(name = "payments.charge", skip_all, fields(otel.kind = "client", http.request.method = "POST", server.address = "extsim", %payment_id), err)]
    async fn charge(&self, payment_id: Uuid, amount: Money) -> Result<Charge> {
        archlab_kernel::metrics::THIRD_PARTY.inc();
        let response = self
            .client
            .post(format!("{}/v1/charges", self.base_url))
            .header("Idempotency-Key", payment_id.to_string())
            .headers(archlab_kernel::trace::headers())
            .json(&json!({
                "amount_cents": amount.amount_cents,
                "currency": amount.currency.code(),
                "reference": payment_id.to_string(),
            }))
            .send()
            .await
            .map_err(provider_failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(provider_failed(format!("answered {status}")));
        }
        response.json().await.map_err(provider_failed)
    }

    /// `GET /v1/charges?idempotency_key=<payment_id>`: the key [`charge`](Self::charge) sends.
    #[tracing::instrument(name = "payments.find_charge", skip_all, fields(otel.kind = "client", http.request.method = "GET", server.address = "extsim", %payment_id), err)]
    async fn find_charge(&self, payment_id: Uuid) -> Result<Option<Charge>> {
        archlab_kernel::metrics::THIRD_PARTY.inc();
        // A payment id is a UUID: nothing in it needs escaping in a query string.
        let response = self
            .client
            .get(format!("{}/v1/charges?idempotency_key={payment_id}", self.base_url))
            .headers(archlab_kernel::trace::headers())
            .send()
            .await
            .map_err(provider_failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(provider_failed(format!("answered {status} to a charge look-up")));
        }
        let list: ChargeList = response.json().await.map_err(provider_failed)?;
        Ok(list.charges.into_iter().next())
    }
}

/// The body of `GET /v1/charges`.
#[derive(Deserialize)]
struct ChargeList {
    charges: Vec<Charge>,
}
