//! The local page of `archlab traces serve`: recent traces, each linking to its waterfall,
//! and the small JSON API `show`, `compare` and `export` read with `--from`.
//!
//! | path | answer |
//! |---|---|
//! | `/` | recent traces (root span, services, spans, duration, error mark, start) |
//! | `/trace/{id}` | the waterfall page of one trace (`latest` and `?route=` work too) |
//! | `/api/traces` | the same list as JSON |
//! | `/api/traces/{id}` | one trace's spans as JSON (`latest`, `?route=`, `?with_service=`, `?without_service=`) |
//! | `/api/spans` | every span held |
//! | `/api/stats` | spans received, held and dropped |

use crate::receiver::Receiver;
use crate::render::{escape, html};
use crate::source::{Selector, group, select};
use crate::span::SpanRecord;
use crate::waterfall::{Waterfall, millis};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write as _;

/// How many traces the list shows.
const LIST_LIMIT: usize = 200;

/// One line of the trace list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceSummary {
    /// The trace id.
    pub trace_id: String,
    /// The root span's name.
    pub root_name: String,
    /// The root span's service.
    pub root_service: String,
    /// Distinct services.
    pub services: usize,
    /// Spans held.
    pub spans: usize,
    /// First start to last end, nanoseconds.
    pub duration_nanos: u64,
    /// Some span has error status.
    pub error: bool,
    /// First start, Unix nanoseconds.
    pub start_unix_nanos: u64,
}

impl TraceSummary {
    /// Summarise one trace's spans; `None` when there are none.
    pub fn of(spans: &[SpanRecord]) -> Option<Self> {
        let waterfall = Waterfall::build(spans)?;
        let root = waterfall.root()?;
        Some(Self {
            trace_id: waterfall.trace_id.clone(),
            root_name: root.name.clone(),
            root_service: root.service_name.clone(),
            services: waterfall.services().len(),
            spans: spans.len(),
            duration_nanos: waterfall.duration_nanos(),
            error: waterfall.has_error(),
            start_unix_nanos: waterfall.start_unix_nanos,
        })
    }
}

/// The page's router over a receiver's store.
pub fn app(receiver: Receiver) -> axum::Router {
    axum::Router::new()
        .route("/", get(list_page))
        .route("/trace/{id}", get(trace_page))
        .route("/api/traces", get(list_json))
        .route("/api/traces/{id}", get(trace_json))
        .route("/api/spans", get(spans_json))
        .route("/api/stats", get(stats_json))
        .with_state(receiver)
}

/// The newest traces, at most [`LIST_LIMIT`].
fn summaries(receiver: &Receiver) -> Vec<TraceSummary> {
    group(receiver.spans()).iter().take(LIST_LIMIT).filter_map(|t| TraceSummary::of(t)).collect()
}

fn selector(id: String, mut query: Selector) -> Selector {
    query.id = Selector::parse(&id, None).id;
    query
}

async fn list_json(State(receiver): State<Receiver>) -> Json<Vec<TraceSummary>> {
    Json(summaries(&receiver))
}

async fn spans_json(State(receiver): State<Receiver>) -> Json<Vec<SpanRecord>> {
    Json(receiver.spans())
}

async fn stats_json(State(receiver): State<Receiver>) -> Json<crate::store::StoreStats> {
    Json(receiver.stats())
}

async fn trace_json(
    State(receiver): State<Receiver>,
    Path(id): Path<String>,
    Query(query): Query<Selector>,
) -> Response {
    match select(receiver.spans(), &selector(id, query)) {
        Some(spans) => Json(spans).into_response(),
        None => (StatusCode::NOT_FOUND, Json(Vec::<SpanRecord>::new())).into_response(),
    }
}

async fn trace_page(
    State(receiver): State<Receiver>,
    Path(id): Path<String>,
    Query(query): Query<Selector>,
) -> Response {
    let found = select(receiver.spans(), &selector(id.clone(), query)).and_then(|spans| Waterfall::build(&spans));
    match found {
        Some(waterfall) => {
            let title = format!("trace {}", waterfall.trace_id);
            Html(html(&title, &[("", &waterfall)], Some("/"))).into_response()
        }
        None => {
            (StatusCode::NOT_FOUND, Html(format!("<p>no trace {}</p><p><a href=\"/\">all traces</a></p>", escape(&id))))
                .into_response()
        }
    }
}

/// `2026-12-01 16:05:18.123` (UTC) from Unix nanoseconds.
fn clock(nanos: u64) -> String {
    chrono::DateTime::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

async fn list_page(State(receiver): State<Receiver>) -> Html<String> {
    let stats = receiver.stats();
    let mut out = String::from(concat!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>archlab traces</title><style>"#,
        "body{font-family:sans-serif;margin:16px;color:#222}table{border-collapse:collapse;font-size:13px}",
        "td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}td.num{text-align:right}",
        ".err{color:#c00;font-weight:bold}a{color:#2a5db0}</style></head><body><h1>archlab traces</h1>"
    ));
    let _ = write!(
        out,
        "<p>{} spans received, {} held in {} traces (bound {}), {} dropped to stay within it. Newest first; reload for more.</p>",
        stats.received, stats.held, stats.traces, stats.keep, stats.dropped
    );
    out.push_str("<table><tr><th></th><th>request (root span)</th><th>service</th><th>services</th><th>spans</th><th>duration</th><th>start (UTC)</th><th>trace id</th></tr>");
    for t in summaries(&receiver) {
        let _ = write!(
            out,
            r#"<tr><td class="err">{}</td><td><a href="/trace/{id}">{}</a></td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td><td><code>{id}</code></td></tr>"#,
            if t.error { "✗" } else { "" },
            escape(&t.root_name),
            escape(&t.root_service),
            t.services,
            t.spans,
            millis(t.duration_nanos),
            clock(t.start_unix_nanos),
            id = escape(&t.trace_id),
        );
    }
    out.push_str("</table></body></html>\n");
    Html(out)
}
