//! The route table as an axum router: one handler per row of [`ROUTES`], each forwarding
//! its row through the [`Forwarder`].
//!
//! Paths and methods not in the table fall through to the edge's 404 and 405, and a path
//! that is not canonical never gets this far (the edge's 400 `invalid_path`).

use crate::forward::Forwarder;
use crate::table::ROUTES;
use axum::Router;
use axum::extract::Request;
use axum::routing::{MethodFilter, MethodRouter};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The table as a router whose every route forwards through `forwarder`.
pub(crate) fn router(forwarder: Arc<Forwarder>) -> Router {
    let mut by_path: BTreeMap<&str, MethodRouter> = BTreeMap::new();
    for r in ROUTES {
        let method = http::Method::from_bytes(r.method.as_bytes()).expect("the table holds valid methods");
        let filter = MethodFilter::try_from(method).expect("the table holds routable methods");
        let forwarder = forwarder.clone();
        let handler = move |request: Request| async move { forwarder.forward(r, request).await };
        let methods = by_path.remove(r.path).unwrap_or_default();
        by_path.insert(r.path, methods.on(filter, handler));
    }
    by_path.into_iter().fold(Router::new(), |router, (path, methods)| router.route(path, methods))
}
