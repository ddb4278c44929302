//! A typed client for the simulator's read and admin endpoints: what tests and the
//! consistency audit use to count charges and emails and to turn the knobs.

use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;

use crate::admin::{SimConfig, SimConfigPatch};
use crate::charges::{Charge, ChargeList};
use crate::emails::{Email, EmailList};
use crate::error::{Error, ErrorBody, Result};

/// HTTP client of one running simulator.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
}

impl Client {
    /// A client of the simulator at `base_url`, such as `http://127.0.0.1:8090`.
    pub fn new(base_url: impl Into<String>) -> Client {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Client { http: reqwest::Client::new(), base_url }
    }

    /// Every accepted charge, in acceptance order.
    pub async fn charges(&self) -> Result<Vec<Charge>> {
        let list: ChargeList = self.send(self.http.get(self.url("/v1/charges"))).await?;
        Ok(list.charges)
    }

    /// The accepted charges created under idempotency key `key` (zero or one).
    pub async fn charges_with_key(&self, key: &str) -> Result<Vec<Charge>> {
        let request = self.http.get(self.url("/v1/charges")).query(&[("idempotency_key", key)]);
        let list: ChargeList = self.send(request).await?;
        Ok(list.charges)
    }

    /// Every accepted email, in acceptance order.
    pub async fn emails(&self) -> Result<Vec<Email>> {
        let list: EmailList = self.send(self.http.get(self.url("/v1/emails"))).await?;
        Ok(list.emails)
    }

    /// The accepted emails addressed to `to`, in acceptance order.
    pub async fn emails_to(&self, to: &str) -> Result<Vec<Email>> {
        let request = self.http.get(self.url("/v1/emails")).query(&[("to", to)]);
        let list: EmailList = self.send(request).await?;
        Ok(list.emails)
    }

    /// The knobs as they are now.
    pub async fn config(&self) -> Result<SimConfig> {
        self.send(self.http.get(self.url("/admin/config"))).await
    }

    /// Changes the knobs named in `patch` and returns the whole new config.
    pub async fn set_config(&self, patch: &SimConfigPatch) -> Result<SimConfig> {
        self.send(self.http.put(self.url("/admin/config")).json(patch)).await
    }

    /// Puts the knobs back to defaults (instant, never failing); the logs stay.
    pub async fn reset(&self) -> Result<()> {
        self.check(self.http.post(self.url("/admin/reset"))).await.map(drop)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        Ok(self.check(request).await?.json().await?)
    }

    /// Sends `request`; a non-2xx answer becomes [`Error::Rejected`] with its code.
    async fn check(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (String::new(), text),
        };
        Err(Error::Rejected { status: status.as_u16(), code, message })
    }
}
