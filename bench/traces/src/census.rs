//! How many of a load run's traces arrived whole: the count `archlab trace-overhead` reports
//! beside the requests it sent.
//!
//! A trace is a request's when its root (the span without parent) is a server span whose
//! name the caller recognises (`GET /api/users/me`, not `GET /metrics`). It is *complete*
//! when no span's parent is missing (no orphan) and it holds at least as many spans as the
//! usual trace of its root name (the most common count among its orphan-free traces): a
//! dropped leaf leaves no orphan, but it leaves a trace one span short. Spans whose root
//! never arrived form a *rootless* group: a request whose trace is broken at the top.

use crate::span::SpanRecord;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What arrived, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Census {
    /// Spans looked at.
    pub spans: u64,
    /// Traces whose root is a request's.
    pub request_traces: u64,
    /// Of those, traces with no orphan and the usual number of spans.
    pub complete: u64,
    /// Of those, traces with a span whose parent never arrived.
    pub with_orphans: u64,
    /// Groups of spans without any root: requests whose root span was lost.
    pub rootless: u64,
    /// The usual span count of each request root name (what "complete" compares with).
    pub usual_spans: BTreeMap<String, usize>,
}

/// Count `spans` into a [`Census`]; `is_request` says which root spans are requests'.
pub fn census(spans: &[SpanRecord], is_request: impl Fn(&SpanRecord) -> bool) -> Census {
    let mut traces: HashMap<&str, Vec<&SpanRecord>> = HashMap::new();
    for span in spans {
        traces.entry(span.trace_id.as_str()).or_default().push(span);
    }
    let mut out = Census { spans: spans.len() as u64, ..Census::default() };
    // (root name, span count, has orphans) per request trace.
    let mut requests: Vec<(&str, usize, bool)> = Vec::new();
    for trace in traces.values() {
        let Some(root) = trace.iter().find(|s| s.is_root()) else {
            out.rootless += 1;
            continue;
        };
        if !is_request(root) {
            continue;
        }
        let ids: HashSet<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
        let orphans = trace.iter().any(|s| s.parent_span_id.as_deref().is_some_and(|p| !ids.contains(p)));
        requests.push((root.name.as_str(), trace.len(), orphans));
    }
    // The usual count per root name: the most frequent among orphan-free traces (the larger
    // on a tie, so a lost span never sets the bar).
    let mut frequency: HashMap<&str, BTreeMap<usize, u64>> = HashMap::new();
    for &(name, len, orphans) in &requests {
        if !orphans {
            *frequency.entry(name).or_default().entry(len).or_insert(0) += 1;
        }
    }
    for (name, counts) in &frequency {
        let usual = counts.iter().max_by_key(|(len, n)| (**n, **len)).map_or(0, |(len, _)| *len);
        out.usual_spans.insert((*name).to_owned(), usual);
    }
    for (name, len, orphans) in requests {
        out.request_traces += 1;
        if orphans {
            out.with_orphans += 1;
        } else if out.usual_spans.get(name).is_some_and(|usual| len >= *usual) {
            out.complete += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, id: &str, parent: Option<&str>, name: &str) -> SpanRecord {
        let kind = if parent.is_none() { "server" } else { "internal" };
        SpanRecord {
            trace_id: trace.to_owned(),
            name: name.to_owned(),
            ..crate::waterfall::tests::span(id, parent, "gateway", kind, 1, 2)
        }
    }

    /// A three-span request trace `t`: root, child, grandchild.
    fn whole(t: &str) -> Vec<SpanRecord> {
        vec![
            span(t, "a", None, "GET /api/users/me"),
            span(t, "b", Some("a"), "users.get"),
            span(t, "c", Some("b"), "db"),
        ]
    }

    fn api(root: &SpanRecord) -> bool {
        root.name.contains(" /api/")
    }

    #[test]
    fn whole_traces_are_complete_and_lost_spans_are_told_apart() {
        let mut spans: Vec<SpanRecord> = ["1", "2", "3"].iter().flat_map(|t| whole(t)).collect();
        // 4: its middle span lost, so its leaf is an orphan.
        spans.extend(whole("4").into_iter().filter(|s| s.span_id != "b"));
        // 5: its leaf lost: no orphan, but one span short of the usual three.
        spans.extend(whole("5").into_iter().filter(|s| s.span_id != "c"));
        // 6: its root lost.
        spans.extend(whole("6").into_iter().filter(|s| s.span_id != "a"));
        // 7: a probe, not a request.
        spans.push(span("7", "a", None, "GET /metrics"));

        let c = census(&spans, api);
        assert_eq!(c.spans, spans.len() as u64);
        assert_eq!(c.request_traces, 5, "1–5 have a request root: {c:?}");
        assert_eq!(c.complete, 3, "only 1–3 are whole: {c:?}");
        assert_eq!(c.with_orphans, 1, "4: {c:?}");
        assert_eq!(c.rootless, 1, "6: {c:?}");
        assert_eq!(c.usual_spans.get("GET /api/users/me"), Some(&3));
    }

    #[test]
    fn the_usual_count_is_the_most_frequent_so_one_extra_span_does_not_raise_the_bar() {
        let mut spans: Vec<SpanRecord> = ["1", "2"].iter().flat_map(|t| whole(t)).collect();
        let mut retried = whole("3");
        retried.push(span("3", "d", Some("a"), "retry"));
        spans.extend(retried);
        let c = census(&spans, api);
        assert_eq!(c.usual_spans.get("GET /api/users/me"), Some(&3));
        assert_eq!(c.complete, 3, "a trace with one span more than usual is whole too: {c:?}");
    }
}
