//! Public routes under `/api/auth`, the same in both builds.

use crate::{AuthService, SignedUp, Signup, SignupFlow, SignupRequest};
use archlab_kernel::Result;
use archlab_kernel::http::{BearerToken, Json};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use std::sync::Arc;

/// What the auth routes need.
#[derive(Clone)]
pub struct AuthRoutes {
    /// Login and logout.
    pub auth: Arc<AuthService>,
    /// The build's way of creating an account.
    pub signup: Arc<dyn SignupFlow>,
}

/// Where signup is served (also what [`crate::AddressLimit`] counts).
pub const SIGNUP_PATH: &str = "/api/auth/signup";
/// Where login is served (also what [`crate::AddressLimit`] counts).
pub const LOGIN_PATH: &str = "/api/auth/login";

/// `POST /api/auth/signup`, `/login`, `/logout`.
pub fn router(state: AuthRoutes) -> Router {
    Router::new()
        .route(SIGNUP_PATH, post(signup))
        .route(LOGIN_PATH, post(login))
        .route("/api/auth/logout", post(logout))
        .with_state(state)
}

async fn signup(
    State(s): State<AuthRoutes>,
    Json(req): Json<SignupRequest>,
) -> Result<(StatusCode, axum::Json<SignedUp>)> {
    let signup = Signup::parse(req)?;
    s.auth.count_attempt(signup.email.as_str())?;
    let done = s.signup.signup(signup).await?;
    Ok((StatusCode::CREATED, axum::Json(done)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

async fn login(State(s): State<AuthRoutes>, Json(req): Json<LoginRequest>) -> Result<axum::Json<crate::IssuedToken>> {
    s.auth.login(&req.email, &req.password).await.map(axum::Json)
}

async fn logout(State(s): State<AuthRoutes>, BearerToken(token): BearerToken) -> Result<StatusCode> {
    s.auth.logout(&token).await?;
    Ok(StatusCode::NO_CONTENT)
}
