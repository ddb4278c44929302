//! `/health` (the process runs), `/ready` (its dependencies answer) and `/metrics` (the
//! calls it made to other processes, see [`crate::metrics`]).

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// One dependency that must answer for the process to be ready.
#[async_trait]
pub trait ReadyCheck: Send + Sync + 'static {
    /// Name shown in the `/ready` body.
    fn name(&self) -> String;
    /// Ok when the dependency answers.
    async fn check(&self) -> Result<(), String>;
}

/// A PostgreSQL pool answers `SELECT 1`.
pub struct PgCheck {
    /// Shown in the `/ready` body.
    pub name: String,
    /// The pool to ask.
    pub pool: sqlx::PgPool,
}

#[async_trait]
impl ReadyCheck for PgCheck {
    fn name(&self) -> String {
        self.name.clone()
    }
    /// The body says only that the database is unreachable: `/ready` answers anyone, and a
    /// raw driver error names hosts, ports, users and databases. The detail goes to the log.
    async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(|error| {
            tracing::warn!(check = %self.name, %error, "readiness: database unreachable");
            "unreachable".to_owned()
        })
    }
}

/// The readiness check of a process whose one required dependency is its database.
pub fn postgres(pool: &sqlx::PgPool) -> Vec<Arc<dyn ReadyCheck>> {
    vec![Arc::new(PgCheck { name: "postgres".into(), pool: pool.clone() })]
}

/// The body of `GET /health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    #[schema(value_type = String, pattern = "^ok$")]
    pub status: String,
}

/// The body of `GET /ready`, whether ready (200) or not (503).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every check passed, `not_ready` otherwise.
    pub status: ReadyStatus,
    /// Each check's result: `ok`, or a short reason that never names hosts or credentials.
    pub checks: BTreeMap<String, String>,
}

/// Whether a process is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Every check passed.
    Ready,
    /// At least one check failed.
    NotReady,
}

type Checks = Arc<Vec<Arc<dyn ReadyCheck>>>;

fn routes() -> OpenApiRouter<Checks> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).routes(routes!(crate::metrics::metrics))
}

/// Routes `/health`, `/ready` and `/metrics`; `/ready` over the given checks (run concurrently, 2 s each).
pub fn router(checks: Vec<Arc<dyn ReadyCheck>>) -> Router {
    routes().split_for_parts().0.with_state(Arc::new(checks))
}

/// The OpenAPI description of [`router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// Liveness: the process runs.
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "health",
    responses((status = 200, description = "The process runs", body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// Readiness: its databases and required dependencies answer.
#[utoipa::path(get, path = "/ready", operation_id = "ready", tag = "health", responses(
    (status = 200, description = "Every dependency answers", body = Readiness),
    (status = 503, description = "A dependency does not answer; `checks` says which", body = Readiness),
))]
async fn ready(State(checks): State<Checks>) -> (StatusCode, axum::Json<Readiness>) {
    let results = futures::future::join_all(checks.iter().map(|c| async move {
        let r = tokio::time::timeout(std::time::Duration::from_secs(2), c.check())
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        (c.name(), r)
    }))
    .await;
    let ok = results.iter().all(|(_, r)| r.is_ok());
    let checks = results.into_iter().map(|(n, r)| (n, r.err().unwrap_or_else(|| "ok".into()))).collect();
    if ok {
        (StatusCode::OK, axum::Json(Readiness { status: ReadyStatus::Ready, checks }))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Readiness { status: ReadyStatus::NotReady, checks }))
    }
}
