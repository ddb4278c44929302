//! The internal HTTP routes: each exposes one port of an in-process service.
//!
//! The routes are the gRPC servers' twins. Each sits behind the host's
//! [`ServiceCredentials::require_layer`]: a request without a valid service credential for
//! this process, method and path is answered 401 `unauthorized` before its body is read. Bad
//! input is a clean 4xx through the kernel's `Json` and `IdPath` extractors; port errors
//! answer through the kernel `Error`'s `IntoResponse`, which is what lets the client rebuild
//! them exactly.

use super::{DELIVER, PROFILES, VERIFY_SESSION};
use crate::service_credential::ServiceCredentials;
use archlab_auth::{AuthApi, Session};
use archlab_kernel::Result;
use archlab_kernel::http::{IdPath, Json};
use archlab_notifications::{Delivery, NotificationEvent, NotificationsApi};
use archlab_users::{NewProfile, Profile, UsersApi};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The body of `POST /internal/auth/verify-session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySessionRequest {
    /// The raw bearer token.
    pub token: String,
}

/// `routes`, each answering only calls that carry a valid credential for `host`, and each
// running under the deadline its caller sent (`crate::deadline`).
fn guarded(routes: Router, host: &ServiceCredentials) -> Router {
    routes.route_layer(host.require_layer(refuse)).layer(crate::deadline::BudgetLayer)
}

/// A refused call: the lab's JSON error, which the client reads back as the same `Error`.
fn refuse(error: archlab_kernel::Error) -> Response {
    error.into_response()
}

/// `POST /internal/auth/verify-session`, serving `api` to callers of `host`.
pub fn auth_routes(api: Arc<dyn AuthApi>, host: &ServiceCredentials) -> Router {
    guarded(Router::new().route(VERIFY_SESSION, post(verify_session)).with_state(api), host)
}

/// `POST /internal/users/profiles`, `GET` and `DELETE /internal/users/profiles/{id}`, serving
/// `api` to callers of `host`.
pub fn users_routes(api: Arc<dyn UsersApi>, host: &ServiceCredentials) -> Router {
    let routes = Router::new()
        .route(PROFILES, post(create_profile))
        .route(&format!("{PROFILES}/{{id}}"), get(get_profile).delete(delete_profile))
        .with_state(api);
    guarded(routes, host)
}

/// `POST /internal/notifications/deliver`, serving `api` to callers of `host`.
pub fn notifications_routes(api: Arc<dyn NotificationsApi>, host: &ServiceCredentials) -> Router {
    guarded(Router::new().route(DELIVER, post(deliver)).with_state(api), host)
}

async fn verify_session(
    State(api): State<Arc<dyn AuthApi>>,
    Json(request): Json<VerifySessionRequest>,
) -> Result<axum::Json<Session>> {
    api.verify_session(&request.token).await.map(axum::Json)
}

// 200, not 201: creating is idempotent, and a repeat answers with the existing profile.
async fn create_profile(
    State(api): State<Arc<dyn UsersApi>>,
    Json(new): Json<NewProfile>,
) -> Result<axum::Json<Profile>> {
    api.create_profile(new).await.map(axum::Json)
}

async fn get_profile(State(api): State<Arc<dyn UsersApi>>, IdPath(id): IdPath) -> Result<axum::Json<Profile>> {
    api.get_profile(id).await.map(axum::Json)
}

async fn delete_profile(State(api): State<Arc<dyn UsersApi>>, IdPath(id): IdPath) -> Result<StatusCode> {
    api.delete_profile(id).await.map(|()| StatusCode::NO_CONTENT)
}

async fn deliver(
    State(api): State<Arc<dyn NotificationsApi>>,
    Json(event): Json<NotificationEvent>,
) -> Result<axum::Json<Delivery>> {
    api.deliver(event).await.map(axum::Json)
}
