//! Traces as the JSON Jaeger's UI opens with "JSON File": `{"data": [trace, …]}`, each trace
//! in the shape of Jaeger's `model/json` package (`traceID`, `spans[].references`,
//! `processes`), times in microseconds. Users with Jaeger get the same traces there.

use crate::span::SpanRecord;
use serde::Serialize;
use std::collections::BTreeMap;

/// The top-level document.
#[derive(Debug, Serialize)]
pub struct Document {
    /// One entry per trace.
    pub data: Vec<Trace>,
}

/// One trace in Jaeger's JSON model.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trace {
    /// 32 hex digits.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// The spans, in start order.
    pub spans: Vec<Span>,
    /// `p1`, `p2`, … one per service.
    pub processes: BTreeMap<String, Process>,
    /// Always null.
    pub warnings: Option<Vec<String>>,
}

/// One span in Jaeger's JSON model.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Span id.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// The span name.
    pub operation_name: String,
    /// `CHILD_OF` the parent; `FOLLOWS_FROM` each link.
    pub references: Vec<Reference>,
    /// Microseconds since the Unix epoch.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    /// Attributes plus `span.kind`, `otel.scope.name` and, on failure, `error` and `otel.status_*`.
    pub tags: Vec<Tag>,
    /// Always empty: span events are not kept.
    pub logs: Vec<serde_json::Value>,
    /// Key into the trace's `processes`.
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Always null.
    pub warnings: Option<Vec<String>>,
    /// 1: sampled.
    pub flags: u32,
}

/// A reference from a span to another.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// `CHILD_OF` or `FOLLOWS_FROM`.
    pub ref_type: &'static str,
    /// Trace id of the referenced span.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Its span id.
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A typed tag.
#[derive(Debug, Serialize)]
pub struct Tag {
    /// Tag name.
    pub key: String,
    /// `string` or `bool`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The value, a JSON string or boolean matching `type`.
    pub value: serde_json::Value,
}

/// The process (service) that emitted spans.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// The resource's `service.name`.
    pub service_name: String,
    /// Always empty.
    pub tags: Vec<Tag>,
}

/// Export traces (each a slice of spans of one trace) as one document.
pub fn document(traces: &[Vec<SpanRecord>]) -> Document {
    Document { data: traces.iter().filter(|t| !t.is_empty()).map(|t| trace(t)).collect() }
}

fn string_tag(key: &str, value: &str) -> Tag {
    Tag { key: key.to_owned(), kind: "string", value: serde_json::Value::String(value.to_owned()) }
}

fn trace(spans: &[SpanRecord]) -> Trace {
    let mut process_ids: BTreeMap<&str, String> = BTreeMap::new();
    for span in spans {
        let next = format!("p{}", process_ids.len() + 1);
        process_ids.entry(span.service_name.as_str()).or_insert(next);
    }
    let mut sorted: Vec<&SpanRecord> = spans.iter().collect();
    sorted.sort_by_key(|s| s.start_unix_nanos);
    let spans_out = sorted
        .into_iter()
        .map(|span| {
            let mut references = Vec::new();
            if let Some(parent) = &span.parent_span_id {
                references.push(Reference {
                    ref_type: "CHILD_OF",
                    trace_id: span.trace_id.clone(),
                    span_id: parent.clone(),
                });
            }
            references.extend(span.links.iter().map(|(trace_id, span_id)| Reference {
                ref_type: "FOLLOWS_FROM",
                trace_id: trace_id.clone(),
                span_id: span_id.clone(),
            }));
            let mut tags: Vec<Tag> = span.attributes.iter().map(|(k, v)| string_tag(k, v)).collect();
            tags.push(string_tag("span.kind", &span.kind));
            if !span.scope.is_empty() {
                tags.push(string_tag("otel.scope.name", &span.scope));
            }
            if span.status_error {
                tags.push(Tag { key: "error".to_owned(), kind: "bool", value: serde_json::Value::Bool(true) });
                tags.push(string_tag("otel.status_code", "ERROR"));
                if !span.status_message.is_empty() {
                    tags.push(string_tag("otel.status_description", &span.status_message));
                }
            }
            Span {
                trace_id: span.trace_id.clone(),
                span_id: span.span_id.clone(),
                operation_name: span.name.clone(),
                references,
                start_time: span.start_unix_nanos / 1000,
                duration: span.duration_nanos() / 1000,
                tags,
                logs: Vec::new(),
                process_id: process_ids.get(span.service_name.as_str()).cloned().unwrap_or_default(),
                warnings: None,
                flags: 1,
            }
        })
        .collect();
    let processes = process_ids
        .into_iter()
        .map(|(service, id)| (id, Process { service_name: service.to_owned(), tags: Vec::new() }))
        .collect();
    Trace { trace_id: spans[0].trace_id.clone(), spans: spans_out, processes, warnings: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waterfall::tests::micro_trace;
    use serde_json::Value;

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn the_export_has_the_fields_and_types_jaeger_ui_reads() -> anyhow::Result<()> {
        let mut spans = micro_trace();
        // Realistic clock values so the µs conversion is visible: 1.7e18 ns since the epoch.
        for s in &mut spans {
            s.start_unix_nanos = s.start_unix_nanos * 1000 + 1_700_000_000_123_456_789;
            s.end_unix_nanos = s.end_unix_nanos * 1000 + 1_700_000_000_123_456_789;
        }
        spans[2].status_error = true;
        spans[2].status_message = "card declined".to_owned();
        spans[2].attributes.insert("rpc.method".to_owned(), "Charge".to_owned());
        spans[5].links.push(("1234567890abcdef1234567890abcdef".to_owned(), "00f067aa0ba902b7".to_owned()));
        let json = serde_json::to_value(document(&[spans.clone(), Vec::new()]))?;

        assert_eq!(keys(&json), ["data"]);
        let data = json["data"].as_array().expect("data is an array");
        assert_eq!(data.len(), 1, "empty traces are left out");
        let trace = &data[0];
        assert_eq!(keys(trace), ["processes", "spans", "traceID", "warnings"]);
        assert_eq!(trace["traceID"], "0af7651916cd43dd8448eb211c80319c");
        assert!(trace["warnings"].is_null());

        // One process per service, ids p1.., each with serviceName and tags.
        let processes = trace["processes"].as_object().expect("processes is an object");
        let mut services: Vec<&str> = processes.values().map(|p| p["serviceName"].as_str().unwrap_or("?")).collect();
        services.sort_unstable();
        assert_eq!(services, ["auth-service", "gateway", "payments-service"]);
        for (id, process) in processes {
            assert!(id.starts_with('p'), "{id}");
            assert_eq!(keys(process), ["serviceName", "tags"]);
            assert!(process["tags"].as_array().is_some_and(Vec::is_empty));
        }

        let out = trace["spans"].as_array().expect("spans is an array");
        assert_eq!(out.len(), spans.len());
        for s in out {
            assert_eq!(
                keys(s),
                [
                    "duration",
                    "flags",
                    "logs",
                    "operationName",
                    "processID",
                    "references",
                    "spanID",
                    "startTime",
                    "tags",
                    "traceID",
                    "warnings"
                ]
            );
            assert!(s["startTime"].is_u64() && s["duration"].is_u64() && s["flags"] == 1);
            assert!(s["logs"].as_array().is_some_and(Vec::is_empty) && s["warnings"].is_null());
            let process = &processes[s["processID"].as_str().expect("processID is a string")];
            let original = spans.iter().find(|o| s["spanID"] == o.span_id.as_str()).expect("same span ids");
            assert_eq!(process["serviceName"], original.service_name.as_str());
            assert_eq!(s["operationName"], original.name.as_str());
            for tag in s["tags"].as_array().expect("tags is an array") {
                assert_eq!(keys(tag), ["key", "type", "value"]);
                match tag["type"].as_str() {
                    Some("string") => assert!(tag["value"].is_string()),
                    Some("bool") => assert!(tag["value"].is_boolean()),
                    other => panic!("unexpected tag type {other:?}"),
                }
            }
        }

        // µs, not ns: s1 ran 20..70 (x1000 ns) after the base.
        let s1 = out.iter().find(|s| s["spanID"] == "s1").expect("s1");
        assert_eq!(s1["startTime"], 1_700_000_000_123_456_u64 + 20);
        assert_eq!(s1["duration"], 50);
        assert_eq!(
            s1["references"],
            serde_json::json!([{"refType": "CHILD_OF", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "c1"}])
        );
        let tag = |s: &Value, key: &str| {
            s["tags"].as_array().and_then(|t| t.iter().find(|t| t["key"] == key)).map(|t| t["value"].clone())
        };
        assert_eq!(tag(s1, "error"), Some(Value::Bool(true)));
        assert_eq!(tag(s1, "otel.status_description"), Some(Value::from("card declined")));
        assert_eq!(tag(s1, "span.kind"), Some(Value::from("server")));
        assert_eq!(tag(s1, "rpc.method"), Some(Value::from("Charge")));
        let root = out.iter().find(|s| s["spanID"] == "s0").expect("s0");
        assert_eq!(root["references"], serde_json::json!([]));
        assert_eq!(tag(root, "error"), None);
        let linked = out.iter().find(|s| s["spanID"] == "i1").expect("i1");
        assert_eq!(linked["references"][1]["refType"], "FOLLOWS_FROM");
        assert_eq!(linked["references"][1]["spanID"], "00f067aa0ba902b7");
        // Spans come in start order, as Jaeger lists them.
        let starts: Vec<u64> = out.iter().filter_map(|s| s["startTime"].as_u64()).collect();
        assert!(starts.windows(2).all(|w| w[0] <= w[1]));
        Ok(())
    }
}
