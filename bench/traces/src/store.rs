//! The span store: every span received, grouped by trace, bounded by a span count.
//!
//! When the bound is passed the oldest traces (by first span received) go first, whole, so
//! what is kept is complete traces; the spans dropped are counted, never lost silently.

use crate::span::SpanRecord;
use std::collections::{HashMap, VecDeque};

/// Traces in arrival order with a bound on the spans held.
#[derive(Debug)]
pub struct Store {
    keep: usize,
    order: VecDeque<String>,
    traces: HashMap<String, Vec<SpanRecord>>,
    held: usize,
    received: u64,
    dropped: u64,
}

/// What a store has seen, for the page and the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Spans received since start.
    pub received: u64,
    /// Spans held now.
    pub held: usize,
    /// Traces held now.
    pub traces: usize,
    /// Spans dropped to stay within the bound (whole oldest traces).
    pub dropped: u64,
    /// The bound, in spans.
    pub keep: usize,
}

impl Store {
    /// An empty store holding at most `keep` spans (at least one).
    pub fn new(keep: usize) -> Self {
        Self { keep: keep.max(1), order: VecDeque::new(), traces: HashMap::new(), held: 0, received: 0, dropped: 0 }
    }

    /// Add spans, then drop the oldest traces until the bound holds again.
    pub fn insert(&mut self, spans: Vec<SpanRecord>) {
        for span in spans {
            self.received += 1;
            self.held += 1;
            match self.traces.get_mut(&span.trace_id) {
                Some(trace) => trace.push(span),
                None => {
                    self.order.push_back(span.trace_id.clone());
                    self.traces.insert(span.trace_id.clone(), vec![span]);
                }
            }
        }
        while self.held > self.keep {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(trace) = self.traces.remove(&oldest) {
                self.held -= trace.len();
                self.dropped += trace.len() as u64;
            }
        }
    }

    /// Every span held, trace by trace in arrival order.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.order.iter().filter_map(|id| self.traces.get(id)).flatten().cloned().collect()
    }

    /// Remove and return every span held, trace by trace in arrival order.
    pub fn take(&mut self) -> Vec<SpanRecord> {
        let mut traces = std::mem::take(&mut self.traces);
        self.held = 0;
        self.order.drain(..).filter_map(|id| traces.remove(&id)).flatten().collect()
    }

    /// The spans of one trace (empty when unknown).
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.traces.get(&trace_id.to_ascii_lowercase()).cloned().unwrap_or_default()
    }

    /// Trace ids, newest first.
    pub fn trace_ids_newest_first(&self) -> Vec<String> {
        self.order.iter().rev().cloned().collect()
    }

    /// Counters.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            received: self.received,
            held: self.held,
            traces: self.traces.len(),
            dropped: self.dropped,
            keep: self.keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: &str, id: &str) -> SpanRecord {
        SpanRecord {
            trace_id: trace.to_owned(),
            span_id: id.to_owned(),
            parent_span_id: None,
            name: "s".to_owned(),
            service_name: "svc".to_owned(),
            kind: "internal".to_owned(),
            start_unix_nanos: 0,
            end_unix_nanos: 1,
            status_error: false,
            status_message: String::new(),
            attributes: Default::default(),
            links: Vec::new(),
            scope: String::new(),
        }
    }

    #[test]
    fn the_oldest_whole_trace_goes_first_and_is_counted() {
        let mut store = Store::new(4);
        store.insert(vec![span("a", "1"), span("a", "2")]);
        store.insert(vec![span("b", "3"), span("b", "4")]);
        assert_eq!(store.stats().dropped, 0);
        // A fifth span passes the bound: trace "a" (oldest) goes, both its spans counted.
        store.insert(vec![span("c", "5")]);
        let stats = store.stats();
        assert_eq!((stats.received, stats.held, stats.traces, stats.dropped), (5, 3, 2, 2));
        assert!(store.trace("a").is_empty());
        assert_eq!(store.trace("b").len(), 2);
        assert_eq!(store.trace_ids_newest_first(), vec!["c".to_owned(), "b".to_owned()]);
        let ids: Vec<String> = store.spans().into_iter().map(|s| s.span_id).collect();
        assert_eq!(ids, ["3", "4", "5"]);
    }

    #[test]
    fn a_late_span_joins_its_trace_without_moving_it() {
        let mut store = Store::new(10);
        store.insert(vec![span("a", "1"), span("b", "2")]);
        store.insert(vec![span("a", "3")]);
        assert_eq!(store.trace("a").len(), 2);
        assert_eq!(store.trace_ids_newest_first(), vec!["b".to_owned(), "a".to_owned()]);
    }

    #[test]
    fn take_empties_the_store_in_arrival_order_and_keeps_counting() {
        let mut store = Store::new(10);
        store.insert(vec![span("a", "1"), span("b", "2"), span("a", "3")]);
        let taken: Vec<String> = store.take().into_iter().map(|s| s.span_id).collect();
        assert_eq!(taken, ["1", "3", "2"]);
        let stats = store.stats();
        assert_eq!((stats.received, stats.held, stats.traces), (3, 0, 0));
        store.insert(vec![span("c", "4")]);
        assert_eq!(store.trace_ids_newest_first(), vec!["c".to_owned()]);
    }
}
