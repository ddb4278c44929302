//! [`SpanRecord`], the one shape every part of this crate reads: a flat, owned copy of an
//! OTLP span with its resource's `service.name` and its scope's name folded in.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use std::collections::BTreeMap;

/// One span as received, flattened so it serializes to one JSON line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpanRecord {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The span name (`payments.charge`, `POST /api/payments`, …).
    pub name: String,
    /// The resource's `service.name`: which process sent it.
    pub service_name: String,
    /// `server`, `client`, `internal`, `producer` or `consumer`.
    pub kind: String,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// True when the span's status code is `ERROR`.
    pub status_error: bool,
    /// The status message (empty when there is none).
    pub status_message: String,
    /// Span attributes, every value rendered as a string.
    pub attributes: BTreeMap<String, String>,
    /// Span links as `(trace_id, span_id)`: how a consumer can point at its producer.
    pub links: Vec<(String, String)>,
    /// The instrumentation scope's name.
    pub scope: String,
}

impl SpanRecord {
    /// The span's duration in nanoseconds (0 when the clock went backwards).
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    /// True for a span without parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
}

/// Flatten one OTLP export request into records.
pub fn from_request(request: &ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let resource_attributes = resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
        let service_name = resource_attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(render_value)
            .unwrap_or_else(|| "unknown_service".to_owned());
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for span in &scope_spans.spans {
                out.push(from_span(span, &service_name, &scope));
            }
        }
    }
    out
}

fn from_span(span: &Span, service_name: &str, scope: &str) -> SpanRecord {
    let (status_error, status_message) = match &span.status {
        Some(status) => (status.code == StatusCode::Error as i32, status.message.clone()),
        None => (false, String::new()),
    };
    SpanRecord {
        trace_id: hex::encode(&span.trace_id),
        span_id: hex::encode(&span.span_id),
        parent_span_id: parent_id(&span.parent_span_id),
        name: span.name.clone(),
        service_name: service_name.to_owned(),
        kind: kind_name(span.kind).to_owned(),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        status_error,
        status_message,
        attributes: attributes(&span.attributes),
        links: span.links.iter().map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id))).collect(),
        scope: scope.to_owned(),
    }
}

/// OTLP marks "no parent" with an empty or all-zero id.
fn parent_id(bytes: &[u8]) -> Option<String> {
    if bytes.iter().all(|b| *b == 0) { None } else { Some(hex::encode(bytes)) }
}

/// The lowercase name of an OTLP span kind; unspecified counts as internal, as the spec says.
fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "internal",
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map(render_value).unwrap_or_default())).collect()
}

/// An attribute value as text: strings as they are, the rest in their usual spelling.
fn render_value(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex::encode(b),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(render_value).collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::KvlistValue(l)) => {
            let items: Vec<String> = l
                .values
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value.as_ref().map(render_value).unwrap_or_default()))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        // An index into a profiles string table: there is no table here to look it up in.
        Some(any_value::Value::StringValueStrindex(index)) => format!("#{index}"),
        None => String::new(),
    }
}
