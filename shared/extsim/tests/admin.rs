//! The admin endpoints, health, unknown routes, and `app()` driven in-process.

mod common;

use archlab_extsim::{AppState, Behaviour, BehaviourPatch, Error, SimConfig, SimConfigPatch, app};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::spawn;
use reqwest::Method;
use serde_json::json;
use tower::ServiceExt;

#[tokio::test]
async fn the_config_starts_instant_and_never_failing() {
    let sim = spawn().await;

    let answer = sim.call(Method::GET, "/admin/config", None).await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        json!({
            "payments": {"latency_ms": 0, "failure_rate": 0.0, "lost_reply_rate": 0.0},
            "email": {"latency_ms": 0, "failure_rate": 0.0, "lost_reply_rate": 0.0},
        })
    );
}

#[tokio::test]
async fn a_partial_update_changes_only_what_it_names() {
    let sim = spawn().await;

    let answer = sim.call(Method::PUT, "/admin/config", Some(&json!({"payments": {"latency_ms": 25}}))).await;
    assert_eq!(answer.status, 200, "body: {}", answer.body);
    let patch = SimConfigPatch::default()
        .with_payments(BehaviourPatch::default().with_failure_rate(0.5))
        .with_email(BehaviourPatch::default().with_latency_ms(7));
    let returned = sim.client.set_config(&patch).await.unwrap();

    let expected = SimConfig {
        payments: Behaviour { latency_ms: 25, failure_rate: 0.5, lost_reply_rate: 0.0 },
        email: Behaviour { latency_ms: 7, failure_rate: 0.0, lost_reply_rate: 0.0 },
    };
    assert_eq!(returned, expected);
    assert_eq!(sim.client.config().await.unwrap(), expected);
}

#[tokio::test]
async fn an_invalid_config_is_400_and_changes_nothing() {
    let sim = spawn().await;
    let before = sim
        .client
        .set_config(&SimConfigPatch::default().with_email(BehaviourPatch::default().with_latency_ms(3)))
        .await
        .unwrap();

    for body in [
        json!({"payments": {"failure_rate": 1.01}}),
        json!({"payments": {"failure_rate": -0.5}}),
        json!({"email": {"latency_ms": 60_001}}),
        json!({"email": {"latency_ms": -1}}),
        json!({"payments": {"lost_reply_rate": 1.5}}),
        json!({"email": {"lost_reply_rate": -0.1}}),
        // Valid payments, invalid email: all or nothing.
        json!({"payments": {"latency_ms": 10}, "email": {"failure_rate": 2}}),
        json!({"payments": {"failure_rat": 0.5}}),
        json!({"sms": {}}),
        json!("fast"),
    ] {
        sim.call(Method::PUT, "/admin/config", Some(&body)).await.assert_error(400, "invalid_request");
    }

    assert_eq!(sim.client.config().await.unwrap(), before);
    let typed = sim
        .client
        .set_config(&SimConfigPatch::default().with_payments(BehaviourPatch::default().with_failure_rate(7.0)))
        .await;
    assert!(matches!(&typed, Err(Error::Rejected { status: 400, code, .. }) if code == "invalid_request"), "{typed:?}");
}

#[tokio::test]
async fn reset_restores_defaults_and_keeps_the_logs() {
    let sim = spawn().await;
    let charge = json!({"amount_cents": 100, "currency": "EUR"});
    assert_eq!(sim.charge("pay-1", &charge).await.status, 201);
    sim.client
        .set_config(&SimConfigPatch::default().with_payments(BehaviourPatch::default().with_failure_rate(1.0)))
        .await
        .unwrap();

    let answer = sim.call(Method::POST, "/admin/reset", None).await;

    assert_eq!(answer.status, 204);
    assert_eq!(sim.client.config().await.unwrap(), SimConfig::default());
    assert_eq!(sim.client.charges().await.unwrap().len(), 1);
    assert_eq!(sim.charge("pay-2", &charge).await.status, 201);
}

#[tokio::test]
async fn health_is_ok_and_unknown_routes_are_404_in_our_shape() {
    let sim = spawn().await;

    let health = sim.call(Method::GET, "/health", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, json!({"status": "ok"}));

    sim.call(Method::GET, "/v1/refunds", None).await.assert_error(404, "not_found");
}

#[tokio::test]
async fn app_can_be_driven_in_process() {
    let request = Request::post("/v1/charges")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"amount_cents": 100, "currency": "EUR"}"#))
        .unwrap();

    let response = app(AppState::default()).oneshot(request).await.unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "missing_idempotency_key");
}
