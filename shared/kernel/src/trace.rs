//! W3C trace context across every boundary, the same way in both builds.
//!
//! A request's trace starts (or continues from the caller's `traceparent`) in the span the
//! HTTP edge ([`crate::http::edge`]) or the gRPC server opens for it; every outgoing call
//! writes the current context into its headers ([`inject`]): reqwest requests, tonic
//! metadata, AMQP message headers and outbox rows ([`current_traceparent`]). The receiving
//! side continues from it ([`context_from_headers`], [`context_from_traceparent`]).
//!
//! Everything here goes through the global propagator `archlab_telemetry::init` installs
//! (`TraceContextPropagator`). Without it, or without an OpenTelemetry layer in the
//! subscriber (an in-process test that never started telemetry), spans carry no trace id:
//! nothing is injected and no response names a trace.
//!
//! Span attributes follow the OpenTelemetry semantic conventions (`http.request.method`,
//! `rpc.system`, `db.system.name`, ...); `otel.name`, `otel.kind` and `otel.status_code`
//! are the fields `tracing-opentelemetry` reads as the span's name, kind and status.

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use std::collections::HashMap;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header (and AMQP header, and outbox column content) that carries a trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The context a caller sent in `headers` (empty when it sent none).
pub fn context_from_headers(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Write `span`'s context into `headers` (`traceparent`, and `tracestate` when there is one).
pub fn inject_span(span: &Span, headers: &mut HeaderMap) {
    let cx = span.context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
    // The propagator writes `tracestate` even when it is empty; an empty header says nothing.
    if headers.get(TRACESTATE).is_some_and(|v| v.is_empty()) {
        headers.remove(TRACESTATE);
    }
}

/// Write the current span's context into `headers`: what every outgoing HTTP and gRPC call
/// does before it leaves.
pub fn inject(headers: &mut HeaderMap) {
    inject_span(&Span::current(), headers);
}

/// The current span's context as headers, for a reqwest builder: `.headers(trace::headers())`.
pub fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject(&mut headers);
    headers
}

const TRACESTATE: &str = "tracestate";

/// A string map as a propagation carrier (AMQP headers, an outbox row).
struct Map<'a>(&'a mut HashMap<String, String>);

impl Injector for Map<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct Traceparent<'a>(&'a str);

impl Extractor for Traceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

/// The current span's `traceparent`, if it belongs to a trace: what an outbox row and an
/// AMQP message keep so that their later delivery continues the request's trace.
pub fn current_traceparent() -> Option<String> {
    let cx = Span::current().context();
    let mut map = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Map(&mut map)));
    map.remove(TRACEPARENT)
}

/// The context a stored or received `traceparent` names (empty when it is malformed).
pub fn context_from_traceparent(traceparent: &str) -> Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&Traceparent(traceparent)))
}

/// Make `span` a child of the context in `traceparent` (nothing when there is none).
///
/// Call it before the span is first entered: `tracing-opentelemetry` refuses a new parent
/// for a span that has started, and that refusal is only logged at debug level.
pub fn continue_from(span: &Span, traceparent: Option<&str>) {
    if let Some(traceparent) = traceparent {
        let cx = context_from_traceparent(traceparent);
        if cx.span().span_context().is_valid()
            && let Err(e) = span.set_parent(cx)
        {
            tracing::debug!(error = %e, "could not continue the stored trace context");
        }
    }
}

/// Make `span` a child of the context the caller sent in `headers`.
pub fn continue_from_headers(span: &Span, headers: &HeaderMap) {
    let cx = context_from_headers(headers);
    if cx.span().span_context().is_valid()
        && let Err(e) = span.set_parent(cx)
    {
        tracing::debug!(error = %e, "could not continue the caller's trace context");
    }
}

/// The trace id of `span` in lowercase hex, if it belongs to a trace.
pub fn trace_id_of(span: &Span) -> Option<String> {
    let cx = span.context();
    let span_ref = cx.span();
    let sc = span_ref.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The trace id of the current span: what an error body reports as `trace_id`.
pub fn current_trace_id() -> Option<String> {
    trace_id_of(&Span::current())
}

/// Mark `span` failed (`otel.status_code = ERROR`, `error.type`): the span must have
/// declared both fields, as every span this module opens does.
pub fn record_error(span: &Span, error_type: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", error_type);
}

/// The server span of one HTTP request, child of the caller's context: named
/// `{method} {route}` once the route is known ([`record_route`]).
pub fn http_server_span(method: &http::Method, path: &str, headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        "http.server",
        otel.name = %method,
        otel.kind = "server",
        otel.status_code = Empty,
        error.type = Empty,
        http.request.method = %method,
        http.route = Empty,
        url.path = path,
        http.response.status_code = Empty,
    );
    continue_from_headers(&span, headers);
    span
}

/// Name the current HTTP server span after the route that matched (`POST /api/payments`).
pub fn record_route(method: &http::Method, route: &str) {
    let span = Span::current();
    span.record("http.route", route);
    // The span has started, and `tracing-opentelemetry` applies `otel.name` only before that:
    // rename the OpenTelemetry span itself.
    span.context().span().update_name(format!("{method} {route}"));
}

/// Record the answer's status on an HTTP server span; a 5xx marks it failed.
pub fn record_http_status(span: &Span, status: http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        record_error(span, status.as_str());
    }
}

/// The client span of one outgoing HTTP call to `peer` (inject inside it, with [`inject`]).
pub fn http_client_span(peer: &str, method: &http::Method, path: &str) -> Span {
    tracing::info_span!(
        "http.client",
        otel.name = format!("{method} {peer}"),
        otel.kind = "client",
        otel.status_code = Empty,
        error.type = Empty,
        http.request.method = %method,
        server.address = peer,
        url.path = path,
        http.response.status_code = Empty,
    )
}

/// Record an HTTP client call's answer; a 4xx or 5xx marks it failed (the client's view).
pub fn record_http_client_status(span: &Span, status: http::StatusCode) {
    span.record("http.response.status_code", status.as_u16());
    if status.is_client_error() || status.is_server_error() {
        record_error(span, status.as_str());
    }
}

/// The server span of one gRPC call (`/archlab.users.v1.Users/GetProfile`), child of the
/// caller's context from the request metadata: tonic's `Server::trace_fn`.
pub fn grpc_server_span(request: &http::Request<()>) -> Span {
    let path = request.uri().path();
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "rpc.server",
        otel.name = path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = Empty,
        error.type = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
    );
    continue_from_headers(&span, request.headers());
    span
}

/// A database span for one statement on `table` (`db.collection.name`): `operation` is the
/// statement kind (`SELECT`, `INSERT`, ...). At `debug` level, like every span inside a
/// process: built only when spans are exported (see `archlab_telemetry`), and then cheap
/// enough to open around every store call.
pub fn db_span(operation: &'static str, table: &'static str) -> Span {
    tracing::debug_span!(
        "db.query",
        otel.name = format!("{operation} {table}"),
        otel.kind = "client",
        otel.status_code = Empty,
        error.type = Empty,
        db.system.name = "postgresql",
        db.operation.name = operation,
        db.collection.name = table,
    )
}
