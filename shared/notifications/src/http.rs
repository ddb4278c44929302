//! `GET /api/notifications`, the same in both builds.
//!
//! The handler's `#[utoipa::path]` is its entry in the OpenAPI document; [`router`] and
//! [`openapi`] are built from the same registration.

use crate::{Notification, NotificationsService};
use archlab_kernel::Result;
use archlab_kernel::http::Caller;
use archlab_kernel::openapi::answers;
use axum::Router;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

fn routes() -> OpenApiRouter<Arc<NotificationsService>> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The public notifications routes; needs an `Authenticator` extension.
pub fn router(notifications: Arc<NotificationsService>) -> Router {
    routes().split_for_parts().0.with_state(notifications)
}

/// The OpenAPI description of [`router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The body of `GET /api/notifications`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationList {
    /// The caller's notifications, newest first.
    pub notifications: Vec<Notification>,
}

archlab_kernel::error_responses!(ListErrors = [answers::EVERY, answers::BEARER]);

/// The caller's own notifications (welcome, receipts), newest first.
#[utoipa::path(get, path = "/api/notifications", operation_id = "list_notifications", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's notifications", body = NotificationList), ListErrors))]
async fn list(State(svc): State<Arc<NotificationsService>>, caller: Caller) -> Result<axum::Json<NotificationList>> {
    let notifications = svc.list(caller.user_id).await?;
    Ok(axum::Json(NotificationList { notifications }))
}
