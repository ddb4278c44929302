//! Readiness of the gateway: every upstream's `/health` answers 200.

use archlab_kernel::health::ReadyCheck;
use archlab_remote::http::HttpUpstream;
use async_trait::async_trait;
use http::{Method, StatusCode};

/// `GET <upstream>/health` must answer 200.
pub(crate) struct UpstreamHealth(pub(crate) HttpUpstream);

#[async_trait]
impl ReadyCheck for UpstreamHealth {
    fn name(&self) -> String {
        self.0.name().to_owned()
    }

    async fn check(&self) -> Result<(), String> {
        let request = self.0.request(Method::GET, "/health").map_err(|e| e.message)?;
        let answer = self.0.fetch(request).await.map_err(|e| e.message)?;
        match answer.status {
            StatusCode::OK => Ok(()),
            other => Err(format!("/health answered {other}")),
        }
    }
}
