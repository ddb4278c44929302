//! `/ready` over a database that does not answer: 503, a generic reason, no driver detail.

use archlab_kernel::health;
use axum::body::Body;
use http::{Request, StatusCode};
use tower::ServiceExt;

#[tokio::test]
async fn an_unreachable_database_is_reported_without_its_details() {
    // Nothing listens on port 1; the pool connects only when asked.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://secret_user@127.0.0.1:1/secret_db")
        .expect("a lazy pool");
    let app = health::router(health::postgres(&pool));
    let response = app.oneshot(Request::get("/ready").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["checks"]["postgres"], "unreachable", "{body}");
    let text = body.to_string();
    for detail in ["secret_user", "secret_db", "127.0.0.1", "refused", "error"] {
        assert!(!text.contains(detail), "{detail:?} leaked: {text}");
    }
}
