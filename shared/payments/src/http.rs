//! Public routes under `/api/payments`, the same in both builds.

use crate::{IdempotencyKey, Payment, PurchaseRequest, PurchaseService};
use archlab_kernel::Result;
use archlab_kernel::http::{BearerToken, Caller, IdPath, Json};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// `POST/GET /api/payments`, `GET /api/payments/{id}`.
pub fn router(purchases: Arc<PurchaseService>) -> Router {
    Router::new()
        .route("/api/payments", get(list).post(purchase))
        .route("/api/payments/{id}", get(by_id))
        .with_state(purchases)
}

// The purchase checks the session itself (the first step of the seed chain), so it takes
// the raw bearer token rather than an authenticated caller.
async fn purchase(
    State(svc): State<Arc<PurchaseService>>,
    BearerToken(token): BearerToken,
    headers: HeaderMap,
    Json(request): Json<PurchaseRequest>,
) -> Result<(StatusCode, axum::Json<Payment>)> {
    let key = IdempotencyKey::from_headers(&headers)?;
    let payment = svc.purchase(&token, &key, &request).await?;
    Ok((StatusCode::CREATED, axum::Json(payment)))
}

async fn list(State(svc): State<Arc<PurchaseService>>, caller: Caller) -> Result<axum::Json<Value>> {
    let payments = svc.list(caller.user_id).await?;
    Ok(axum::Json(json!({ "payments": payments })))
}

async fn by_id(
    State(svc): State<Arc<PurchaseService>>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<Payment>> {
    svc.get(caller.user_id, id).await.map(axum::Json)
}
