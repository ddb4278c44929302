//! The simulated email API: `POST /v1/emails` with an `Idempotency-Key`, and
//! `GET /v1/emails` for the audit. Same shape and rules as `charges.rs`; the audit uses it
//! to find missing or duplicate notifications.

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

/// The body of `POST /v1/emails`; a retry under a known key must repeat all three fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEmail {
    /// Recipient address; must contain an `@`.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Message text (compared on retries, not echoed back).
    pub body: String,
}

/// An email the email API accepted; `GET /v1/emails` lists these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// `em_` followed by a simple UUID.
    pub email_id: String,
    /// The key of the request that created it.
    pub idempotency_key: String,
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// When it was accepted (RFC 3339 on the wire).
    pub created_at: DateTime<Utc>,
}

/// The answer to `POST /v1/emails`: the email, and whether this answer is a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailReceipt {
    /// The email, accepted now or by the first request with this key.
    #[serde(flatten)]
    pub email: Email,
    /// True when the key was already known and nothing new was sent.
    pub replayed: bool,
}

/// The body of `GET /v1/emails`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EmailList {
    pub(crate) emails: Vec<Email>,
}

#[derive(Debug, Deserialize)]
struct EmailFilter {
    to: Option<String>,
}

impl NewEmail {
    fn validate(&self) -> Result<()> {
        if !self.to.contains('@') {
            return Err(Error::InvalidRequest("to must be an email address".into()));
        }
        Ok(())
    }
}

/// The email API's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/emails", get(list_emails).post(send_email))
}

#[tracing::instrument(
    name = "extsim.send_email",
    skip_all,
    fields(idempotency_key = %key.0),
    err(level = "info")
)]
async fn send_email(
    State(state): State<AppState>,
    key: IdempotencyKey,
    JsonBody(request): JsonBody<NewEmail>,
) -> Result<Response> {
    request.validate()?;
    let behaviour = state.sim_config().email;
    behaviour.simulate().await?;
    let IdempotencyKey(key) = key;
    let outcome = state.emails().accept(&key, request.clone(), || Email {
        email_id: format!("em_{}", Uuid::new_v4().simple()),
        idempotency_key: key.clone(),
        to: request.to.clone(),
        subject: request.subject.clone(),
        created_at: Utc::now(),
    })?;
    let (status, email, replayed) = match outcome {
        Outcome::Created(email) => (StatusCode::ACCEPTED, email, false),
        Outcome::Replayed(email) => (StatusCode::OK, email, true),
    };
    // Recorded either way: a lost reply loses only the answer.
    Ok(hangup::answer((status, Json(EmailReceipt { email, replayed })), behaviour.reply_lost()))
}

async fn list_emails(State(state): State<AppState>, QueryParams(filter): QueryParams<EmailFilter>) -> Json<EmailList> {
    let emails = state.emails().list(|email| filter.to.as_ref().is_none_or(|to| *to == email.to));
    Json(EmailList { emails })
}
