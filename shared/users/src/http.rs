//! Public routes under `/api/users`, the same in both builds.
//!
//! Each handler's `#[utoipa::path]` is its entry in the OpenAPI document; [`router`] and
//! [`openapi`] are built from the same registration.

use crate::{Profile, ProfilePatch, UsersApi, UsersService};
use archlab_kernel::http::{Caller, IdPath, Json};
use archlab_kernel::openapi::answers;
use archlab_kernel::{Error, Result};
use axum::Router;
use axum::extract::State;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

fn routes() -> OpenApiRouter<Arc<UsersService>> {
    OpenApiRouter::new().routes(routes!(me, update_me)).routes(routes!(by_id))
}

/// `GET/PATCH /api/users/me`, `GET /api/users/{id}`; needs an `Authenticator` extension.
pub fn router(users: Arc<UsersService>) -> Router {
    routes().split_for_parts().0.with_state(users)
}

/// The OpenAPI description of [`router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

// A live session always has a profile; 404 stays possible if an operator removed it.
archlab_kernel::error_responses!(MeErrors = [answers::EVERY, answers::BEARER, answers::BY_ID]);

/// The caller's own profile and preferences.
#[utoipa::path(get, path = "/api/users/me", operation_id = "get_me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's profile", body = Profile), MeErrors))]
async fn me(State(users): State<Arc<UsersService>>, caller: Caller) -> Result<axum::Json<Profile>> {
    users.get_profile(caller.user_id).await.map(axum::Json)
}

archlab_kernel::error_responses!(UpdateErrors = [answers::EVERY, answers::BEARER, answers::JSON_BODY, answers::BY_ID]);

/// Change the caller's name or preferences; absent fields stay as they are, `{}` changes nothing.
#[utoipa::path(patch, path = "/api/users/me", operation_id = "update_me", tag = "users",
    security(("bearer" = [])),
    request_body = ProfilePatch,
    responses((status = 200, description = "The updated profile", body = Profile), UpdateErrors))]
async fn update_me(
    State(users): State<Arc<UsersService>>,
    caller: Caller,
    Json(patch): Json<ProfilePatch>,
) -> Result<axum::Json<Profile>> {
    users.update_profile(caller.user_id, patch).await.map(axum::Json)
}

archlab_kernel::error_responses!(ByIdErrors = [answers::EVERY, answers::BEARER, answers::BY_ID]);

/// A profile by id: only one's own; any other id answers 404, existing or not.
#[utoipa::path(get, path = "/api/users/{id}", operation_id = "get_user", tag = "users",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "A user id")),
    responses((status = 200, description = "The caller's profile", body = Profile), ByIdErrors))]
async fn by_id(
    State(users): State<Arc<UsersService>>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<Profile>> {
    // Another user's profile is answered exactly like a missing one: existence is not revealed.
    if id != caller.user_id {
        return Err(Error::not_found("user"));
    }
    users.get_profile(id).await.map(axum::Json)
}
