//! Public routes under `/api/users`, the same in both builds.

use crate::{ProfilePatch, UsersApi, UsersService};
use archlab_kernel::http::{Caller, IdPath, Json};
use archlab_kernel::{Error, Result};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use std::sync::Arc;

/// `GET/PATCH /api/users/me`, `GET /api/users/{id}`; needs an `Authenticator` extension.
pub fn router(users: Arc<UsersService>) -> Router {
    Router::new()
        .route("/api/users/me", get(me).patch(update_me))
        .route("/api/users/{id}", get(by_id))
        .with_state(users)
}

async fn me(State(users): State<Arc<UsersService>>, caller: Caller) -> Result<axum::Json<crate::Profile>> {
    users.get_profile(caller.user_id).await.map(axum::Json)
}

async fn update_me(
    State(users): State<Arc<UsersService>>,
    caller: Caller,
    Json(patch): Json<ProfilePatch>,
) -> Result<axum::Json<crate::Profile>> {
    users.update_profile(caller.user_id, patch).await.map(axum::Json)
}

async fn by_id(
    State(users): State<Arc<UsersService>>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<crate::Profile>> {
    // Another user's profile is answered exactly like a missing one: existence is not revealed.
    if id != caller.user_id {
        return Err(Error::not_found("user"));
    }
    users.get_profile(id).await.map(axum::Json)
}
