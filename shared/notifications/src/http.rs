//! `GET /api/notifications`, the same in both builds.

use crate::NotificationsService;
use archlab_kernel::Result;
use archlab_kernel::http::Caller;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// The public notifications routes; needs an `Authenticator` extension.
pub fn router(notifications: Arc<NotificationsService>) -> Router {
    Router::new().route("/api/notifications", get(list)).with_state(notifications)
}

async fn list(State(svc): State<Arc<NotificationsService>>, caller: Caller) -> Result<axum::Json<Value>> {
    let notifications = svc.list(caller.user_id).await?;
    Ok(axum::Json(json!({ "notifications": notifications })))
}
