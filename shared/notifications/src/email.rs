//! The email provider port and its adapter for extsim's email API.

use archlab_kernel::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One email to send; `idempotency_key` makes a resend a no-op at the provider.
#[derive(Debug, Clone, Serialize)]
pub struct OutgoingEmail {
    /// Provider-side deduplication key (the event id).
    #[serde(skip)]
    pub idempotency_key: String,
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Sends email through a third party.
#[async_trait]
pub trait EmailApi: Send + Sync + 'static {
    /// Send; returns the provider's email id.
    async fn send(&self, email: &OutgoingEmail) -> Result<String>;
}

/// extsim's `POST /v1/emails`.
#[derive(Clone)]
pub struct ExtsimEmail {
    client: reqwest::Client,
    base_url: String,
}

impl ExtsimEmail {
    /// An adapter for the email API at `base_url` (e.g. `http://127.0.0.1:8090`).
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let client = reqwest::Client::builder().timeout(timeout).build().expect("static reqwest configuration");
        Self { client, base_url: base_url.trim_end_matches('/').to_owned() }
    }
}

#[derive(Deserialize)]
struct Accepted {
    email_id: String,
}

#[async_trait]
impl EmailApi for ExtsimEmail {
    #[tracing::instrument(name = "email.send", skip_all, fields(otel.kind = "client", http.request.method = "POST", server.address = "extsim", key = %email.idempotency_key), err)]
    async fn send(&self, email: &OutgoingEmail) -> Result<String> {
        archlab_kernel::metrics::THIRD_PARTY.inc();
        let response = self
            .client
            .post(format!("{}/v1/emails", self.base_url))
            .header("Idempotency-Key", &email.idempotency_key)
            .headers(archlab_kernel::trace::headers())
            .json(email)
            .send()
            .await
            .map_err(|e| Error::unavailable("email provider", e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::unavailable("email provider", format!("answered {status}")));
        }
        let accepted: Accepted = response.json().await.map_err(|e| Error::unavailable("email provider", e))?;
        Ok(accepted.email_id)
    }
}
