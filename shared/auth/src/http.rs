//! Public routes under `/api/auth`, the same in both builds.
//!
//! Each handler's `#[utoipa::path]` is its entry in the OpenAPI document; [`router`] and
//! [`openapi`] are built from the same registration, so a route cannot be served without
//! being described, nor described at another path than it is served.

use crate::{AuthService, IssuedToken, SignedUp, Signup, SignupFlow, SignupRequest, codes};
use archlab_kernel::http::{BearerToken, Json};
use archlab_kernel::openapi::{Answer, answers};
use archlab_kernel::{ErrorKind, Result};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the auth routes need.
#[derive(Clone)]
pub struct AuthRoutes {
    /// Login and logout.
    pub auth: Arc<AuthService>,
    /// The build's way of creating an account.
    pub signup: Arc<dyn SignupFlow>,
}

/// Where signup is served (also what [`crate::AddressLimit`] counts; a test keeps it equal
/// to the handler's `#[utoipa::path]`).
pub const SIGNUP_PATH: &str = "/api/auth/signup";
/// Where login is served (also what [`crate::AddressLimit`] counts).
pub const LOGIN_PATH: &str = "/api/auth/login";

fn routes() -> OpenApiRouter<AuthRoutes> {
    OpenApiRouter::new().routes(routes!(signup)).routes(routes!(login)).routes(routes!(logout))
}

/// `POST /api/auth/signup`, `/login`, `/logout`.
pub fn router(state: AuthRoutes) -> Router {
    routes().split_for_parts().0.with_state(state)
}

/// The OpenAPI description of [`router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

const SIGNUP_CONFLICTS: &[Answer] = &[
    Answer::new(ErrorKind::Conflict, codes::EMAIL_TAKEN),
    Answer::new(ErrorKind::Conflict, archlab_users::codes::PROFILE_EXISTS),
];
/// What the limits answer on signup and login (docs/api.md, "Limits").
const LIMITED: &[Answer] = &[
    Answer::new(ErrorKind::TooManyRequests, codes::RATE_LIMITED),
    Answer::new(ErrorKind::Unavailable, codes::OVERLOADED),
];
archlab_kernel::error_responses!(SignupErrors = [answers::EVERY, answers::JSON_BODY, SIGNUP_CONFLICTS, LIMITED]);

/// Create an account and log it in.
///
/// Credentials (auth), a profile with default preferences (users), an audit entry and a
/// `welcome` notification, all or nothing.
#[utoipa::path(post, path = "/api/auth/signup", operation_id = "signup", tag = "auth",
    request_body = SignupRequest,
    responses((status = 201, description = "The account exists and the token works", body = SignedUp), SignupErrors))]
async fn signup(
    State(s): State<AuthRoutes>,
    Json(req): Json<SignupRequest>,
) -> Result<(StatusCode, axum::Json<SignedUp>)> {
    let signup = Signup::parse(req)?;
    s.auth.count_attempt(signup.email.as_str())?;
    let done = s.signup.signup(signup).await?;
    Ok((StatusCode::CREATED, axum::Json(done)))
}

/// The body of `POST /api/auth/login`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    /// The address signed up with (compared trimmed and lower-cased).
    email: String,
    /// The password signed up with.
    password: String,
}

const BAD_CREDENTIALS: &[Answer] = &[Answer::new(ErrorKind::Unauthorized, codes::INVALID_CREDENTIALS)];
archlab_kernel::error_responses!(LoginErrors = [answers::EVERY, answers::JSON_BODY, BAD_CREDENTIALS, LIMITED]);

/// Exchange email and password for a new session token.
#[utoipa::path(post, path = "/api/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "A new session", body = IssuedToken), LoginErrors))]
async fn login(State(s): State<AuthRoutes>, Json(req): Json<LoginRequest>) -> Result<axum::Json<IssuedToken>> {
    s.auth.login(&req.email, &req.password).await.map(axum::Json)
}

archlab_kernel::error_responses!(LogoutErrors = [answers::EVERY, answers::BEARER]);

/// End the caller's session: the token stops working at once.
#[utoipa::path(post, path = "/api/auth/logout", operation_id = "logout", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "The token no longer works"), LogoutErrors))]
async fn logout(State(s): State<AuthRoutes>, BearerToken(token): BearerToken) -> Result<StatusCode> {
    s.auth.logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limited_paths_are_the_documented_signup_and_login() {
        let doc = openapi();
        for path in [SIGNUP_PATH, LOGIN_PATH] {
            assert!(doc.paths.paths.contains_key(path), "{path} is not served");
        }
    }
}
