//! `/health` (the process runs) and `/ready` (its dependencies answer).

use async_trait::async_trait;
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// Routes `/health` and `/ready` over the given checks (run concurrently, 2 s each).
pub fn router(checks: Vec<Arc<dyn ReadyCheck>>) -> Router {
    let checks = Arc::new(checks);
    Router::new().route("/health", get(|| async { axum::Json(json!({"status": "ok"})) })).route(
        "/ready",
        get(move || {
            let checks = checks.clone();
            async move { ready(&checks).await }
        }),
    )
}

async fn ready(checks: &[Arc<dyn ReadyCheck>]) -> axum::response::Response {
    let results = futures::future::join_all(checks.iter().map(|c| async move {
        let r = tokio::time::timeout(std::time::Duration::from_secs(2), c.check())
            .await
            .unwrap_or_else(|_| Err("timed out".into()));
        (c.name(), r)
    }))
    .await;
    let ok = results.iter().all(|(_, r)| r.is_ok());
    let body: BTreeMap<String, String> =
        results.into_iter().map(|(n, r)| (n, r.err().unwrap_or_else(|| "ok".into()))).collect();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(json!({"status": if ok { "ready" } else { "not_ready" }, "checks": body}))).into_response()
}
