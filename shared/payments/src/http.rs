//! Public routes under `/api/payments`, the same in both builds.
//!
//! Each handler's `#[utoipa::path]` is its entry in the OpenAPI document; [`router`] and
//! [`openapi`] are built from the same registration.

use crate::{IdempotencyKey, Payment, PurchaseRequest, PurchaseService, codes};
use archlab_kernel::http::{BearerToken, Caller, IdPath, Json};
use archlab_kernel::openapi::{Answer, answers};
use archlab_kernel::{ErrorKind, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

fn routes() -> OpenApiRouter<Arc<PurchaseService>> {
    OpenApiRouter::new().routes(routes!(list, purchase)).routes(routes!(by_id))
}

/// `POST/GET /api/payments`, `GET /api/payments/{id}`.
pub fn router(purchases: Arc<PurchaseService>) -> Router {
    routes().split_for_parts().0.with_state(purchases)
}

/// The OpenAPI description of [`router`]'s routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The body of `GET /api/payments`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PaymentList {
    /// The caller's payments, newest first.
    pub payments: Vec<Payment>,
}

const PURCHASE: &[Answer] = &[
    Answer::new(ErrorKind::BadRequest, codes::MISSING_IDEMPOTENCY_KEY),
    Answer::new(ErrorKind::Unprocessable, codes::IDEMPOTENCY_KEY_REUSED),
    Answer::new(ErrorKind::Unprocessable, codes::USER_INACTIVE),
    Answer::new(ErrorKind::BadGateway, codes::PAYMENT_PROVIDER_FAILED),
    // The caller's profile is gone (only if an operator removed it).
    Answer::new(ErrorKind::NotFound, archlab_kernel::codes::NOT_FOUND),
];
archlab_kernel::error_responses!(PurchaseErrors = [answers::EVERY, answers::BEARER, answers::JSON_BODY, PURCHASE]);

/// Buy: session check → user check → charge → record → notify.
///
/// The same `Idempotency-Key` and body from the same user answer the same payment again,
/// never a second charge; a retry after a 502 or 503 resumes where the first attempt stopped.
#[utoipa::path(post, path = "/api/payments", operation_id = "create_payment", tag = "payments",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "Charged and recorded (or the same key's earlier answer)", body = Payment,
            links(("GetPaymentById" = (operation_id = "get_payment", parameters(("id" = "$response.body#/payment_id")))))),
        PurchaseErrors))]
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

archlab_kernel::error_responses!(ListErrors = [answers::EVERY, answers::BEARER]);

/// The caller's own payments, newest first.
#[utoipa::path(get, path = "/api/payments", operation_id = "list_payments", tag = "payments",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's payments", body = PaymentList), ListErrors))]
async fn list(State(svc): State<Arc<PurchaseService>>, caller: Caller) -> Result<axum::Json<PaymentList>> {
    let payments = svc.list(caller.user_id).await?;
    Ok(axum::Json(PaymentList { payments }))
}

archlab_kernel::error_responses!(ByIdErrors = [answers::EVERY, answers::BEARER, answers::BY_ID]);

/// One of the caller's payments; another user's or an unknown id answers 404.
#[utoipa::path(get, path = "/api/payments/{id}", operation_id = "get_payment", tag = "payments",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "A payment id")),
    responses((status = 200, description = "The payment", body = Payment), ByIdErrors))]
async fn by_id(
    State(svc): State<Arc<PurchaseService>>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<Payment>> {
    svc.get(caller.user_id, id).await.map(axum::Json)
}
