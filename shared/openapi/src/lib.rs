//! The public API's OpenAPI 3.1 document, generated from the handlers and served by both builds.
//!
//! Every public handler carries its own `#[utoipa::path]` in the crate that owns it (the four
//! domains' `http` modules, and the kernel's `health` for `/health` and `/ready`), and each of
//! those routers is built from the same registration as its description. [`document`] merges
//! the five descriptions, adds the bearer security scheme, the error body every 4xx and 5xx
//! carries and the 405 any path answers to a method it does not list (a reusable response:
//! it belongs to no operation), and describes `GET /openapi.json` itself.
//!
//! Why a crate of its own: the document needs the four domain crates, which the kernel may
//! not depend on; and the gateway, which has no handlers (it forwards), must serve exactly the
//! monolith's document. Both builds merge [`router`], so both answer the same bytes, and
//! docs/openapi.json is a copy a test keeps equal (regenerate it with
//! `cargo run -q -p archlab-openapi > docs/openapi.json`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where both builds serve the document.
pub const PATH: &str = "/openapi.json";

/// The whole public API: every route of docs/api.md, with its schemas and error answers.
pub fn document() -> OpenApi {
    let info = InfoBuilder::new()
        .title("archlab public API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The API the monolith (:8080) and the microservices gateway (:8000) both serve. \
             Every error is `{\"error\": {\"code\", \"message\"}}`; each operation lists the codes \
             it can answer, and docs/api.md says when each is answered.",
        ))
        .license(Some(LicenseBuilder::new().name("MIT").identifier(Some("MIT")).build()))
        .build();
    let bearer = SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The `token` of a signup or login: `Authorization: Bearer <token>`"))
            .build(),
    );
    let edge = archlab_kernel::openapi::responses(&[archlab_kernel::openapi::answers::WRONG_METHOD]);
    let components = ComponentsBuilder::new()
        .responses_from_iter(edge.into_values().map(|response| ("MethodNotAllowed", response)))
        .security_scheme(archlab_kernel::openapi::BEARER_SCHEME, bearer)
        .schema_from::<archlab_kernel::ErrorBody>()
        .schema_from::<archlab_kernel::ErrorDetail>()
        .build();
    let tag = |name: &str, about: &str| TagBuilder::new().name(name).description(Some(about)).build();
    let mut doc = OpenApiBuilder::new()
        .info(info)
        .components(Some(components))
        .tags(Some([
            tag("auth", "Accounts and sessions"),
            tag("users", "One's own profile and preferences"),
            tag("payments", "Purchases, idempotent by key"),
            tag("notifications", "Welcome messages and receipts"),
            tag("health", "Liveness and readiness"),
            tag("meta", "This document"),
        ]))
        .build();
    for part in [
        archlab_auth::http::openapi(),
        archlab_users::http::openapi(),
        archlab_payments::http::openapi(),
        archlab_notifications::http::openapi(),
        archlab_kernel::health::openapi(),
        routes().into_openapi(),
    ] {
        doc.merge(part);
    }
    doc
}

/// [`document`] as the JSON both builds serve and docs/openapi.json holds.
pub fn json() -> String {
    let mut text = document().to_pretty_json().expect("an OpenAPI document serialises");
    text.push('\n');
    text
}

fn routes() -> OpenApiRouter<Bytes> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// `GET /openapi.json`, answering [`json`] (computed once, here).
pub fn router() -> Router {
    routes().split_for_parts().0.with_state(Bytes::from(json()))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", body = Object)))]
async fn openapi_json(State(json): State<Bytes>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], json)
}
