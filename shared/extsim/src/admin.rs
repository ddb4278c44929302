//! The knobs: latency, failure rate and lost-reply rate of each simulated API, read and set
//! at run time, plus the health check.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::state::AppState;

/// Highest latency the admin endpoint accepts, in milliseconds.
const MAX_LATENCY_MS: u64 = 60_000;

/// How both simulated APIs behave right now (`GET /admin/config`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// Behaviour of `POST /v1/charges`.
    pub payments: Behaviour,
    /// Behaviour of `POST /v1/emails`.
    pub email: Behaviour,
}

/// How one simulated API behaves; the default is instant and never failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Delay added before every answer, in milliseconds (0..=60000).
    pub latency_ms: u64,
    /// Probability in [0, 1] that a request fails with `503 simulated_failure`.
    pub failure_rate: f64,
    /// Probability in [0, 1] that a request that succeeded (the charge or email recorded)
    /// gets no answer: the connection is dropped instead, as when a reply is lost on the
    /// way back. The caller cannot tell this from a request that never arrived.
    #[serde(default)]
    pub lost_reply_rate: f64,
}

/// A partial [`SimConfig`] for `PUT /admin/config`: absent parts stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfigPatch {
    /// Changes to the payment API, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payments: Option<BehaviourPatch>,
    /// Changes to the email API, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<BehaviourPatch>,
}

/// A partial [`Behaviour`]: absent fields stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourPatch {
    /// New latency in milliseconds, if it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// New failure rate, if it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// New lost-reply rate, if it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_reply_rate: Option<f64>,
}

impl SimConfigPatch {
    /// This patch, also changing the payment API.
    pub fn with_payments(mut self, patch: BehaviourPatch) -> Self {
        self.payments = Some(patch);
        self
    }

    /// This patch, also changing the email API.
    pub fn with_email(mut self, patch: BehaviourPatch) -> Self {
        self.email = Some(patch);
        self
    }
}

impl BehaviourPatch {
    /// This patch, also setting the latency.
    pub fn with_latency_ms(mut self, latency_ms: u64) -> Self {
        self.latency_ms = Some(latency_ms);
        self
    }

    /// This patch, also setting the failure rate.
    pub fn with_failure_rate(mut self, failure_rate: f64) -> Self {
        self.failure_rate = Some(failure_rate);
        self
    }

    /// This patch, also setting the lost-reply rate.
    pub fn with_lost_reply_rate(mut self, lost_reply_rate: f64) -> Self {
        self.lost_reply_rate = Some(lost_reply_rate);
        self
    }
}

impl SimConfig {
    /// This config with `patch` applied, or why the result would be out of range.
    pub(crate) fn patched(self, patch: &SimConfigPatch) -> Result<SimConfig> {
        Ok(SimConfig {
            payments: self.payments.patched(patch.payments, "payments")?,
            email: self.email.patched(patch.email, "email")?,
        })
    }
}

impl Behaviour {
    fn patched(self, patch: Option<BehaviourPatch>, section: &str) -> Result<Behaviour> {
        let patch = patch.unwrap_or_default();
        let next = Behaviour {
            latency_ms: patch.latency_ms.unwrap_or(self.latency_ms),
            failure_rate: patch.failure_rate.unwrap_or(self.failure_rate),
            lost_reply_rate: patch.lost_reply_rate.unwrap_or(self.lost_reply_rate),
        };
        if next.latency_ms > MAX_LATENCY_MS {
            return Err(Error::InvalidRequest(format!("{section}.latency_ms must be at most {MAX_LATENCY_MS}")));
        }
        if !(0.0..=1.0).contains(&next.failure_rate) {
            return Err(Error::InvalidRequest(format!("{section}.failure_rate must be within [0, 1]")));
        }
        if !(0.0..=1.0).contains(&next.lost_reply_rate) {
            return Err(Error::InvalidRequest(format!("{section}.lost_reply_rate must be within [0, 1]")));
        }
        Ok(next)
    }

    /// The simulation itself: wait the configured latency, then fail with the configured
    /// probability. Callers record nothing when this fails.
    pub(crate) async fn simulate(self) -> Result<()> {
        if self.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.latency_ms)).await;
        }
        if self.failure_rate > 0.0 && rand::random_bool(self.failure_rate) {
            return Err(Error::SimulatedFailure);
        }
        Ok(())
    }

    /// Whether this answer, to a request already carried out, is to be lost (see
    /// `hangup.rs`), decided with the configured probability.
    pub(crate) fn reply_lost(self) -> bool {
        self.lost_reply_rate > 0.0 && rand::random_bool(self.lost_reply_rate)
    }
}

/// Admin and health routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/config", get(get_config).put(put_config))
        .route("/admin/reset", post(reset))
        .route("/health", get(health))
}

async fn get_config(State(state): State<AppState>) -> Json<SimConfig> {
    Json(state.sim_config())
}

#[tracing::instrument(name = "extsim.set_config", skip_all, err)]
async fn put_config(
    State(state): State<AppState>,
    JsonBody(patch): JsonBody<SimConfigPatch>,
) -> Result<Json<SimConfig>> {
    let config = state.update_sim_config(|current| current.patched(&patch))?;
    tracing::info!(?config, "simulation config changed");
    Ok(Json(config))
}

/// Knobs back to defaults; the logs are a record and stay.
async fn reset(State(state): State<AppState>) -> Result<StatusCode> {
    state.update_sim_config(|_| Ok(SimConfig::default()))?;
    tracing::info!("simulation config reset");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let patch = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(0.25));
        let next = SimConfig::default().patched(&patch).unwrap();
        assert_eq!(next.email.failure_rate, 0.25);
        assert_eq!(next.email.latency_ms, 0);
        assert_eq!(next.payments, Behaviour::default());
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for patch in [
            BehaviourPatch::default().with_failure_rate(1.5),
            BehaviourPatch::default().with_failure_rate(-0.1),
            BehaviourPatch::default().with_failure_rate(f64::NAN),
            BehaviourPatch::default().with_lost_reply_rate(1.5),
            BehaviourPatch::default().with_lost_reply_rate(-0.1),
            BehaviourPatch::default().with_lost_reply_rate(f64::NAN),
            BehaviourPatch::default().with_latency_ms(60_001),
        ] {
            let patch = SimConfigPatch::default().with_payments(patch);
            assert!(SimConfig::default().patched(&patch).is_err(), "{patch:?}");
        }
        let edge = SimConfigPatch::default().with_payments(
            BehaviourPatch::default().with_failure_rate(1.0).with_latency_ms(60_000).with_lost_reply_rate(1.0),
        );
        assert!(SimConfig::default().patched(&edge).is_ok());
    }
}
