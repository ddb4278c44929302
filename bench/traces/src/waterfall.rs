//! One trace as a waterfall: spans in parent/child order with their depth and start offset,
//! the "between processes" time of each client call, and the terminal rendering.
//!
//! Between processes: a client span covers the whole remote call; its server child covers
//! only the work inside the other process. The difference is network, (de)serialization and
//! queueing, the price the microservices pay per hop and the monolith does not.

use crate::span::SpanRecord;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

/// One line of a waterfall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Nesting depth: 0 for roots (and for spans whose parent never arrived).
    pub depth: usize,
    /// Start, in nanoseconds after the trace's first span started.
    pub offset_nanos: u64,
    /// True when the span names a parent that is not in the trace.
    pub orphan: bool,
    /// The span itself.
    pub span: SpanRecord,
}

/// The time a client span spent outside its server child: network, (de)serialization and
/// queueing between two processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The client span's id.
    pub client_span_id: String,
    /// Client span name.
    pub client_name: String,
    /// The calling service.
    pub from_service: String,
    /// The called service (the server child's).
    pub to_service: String,
    /// Client duration minus its server children's durations.
    pub gap_nanos: u64,
    /// Absolute `(start, end)` intervals of the gap: before the server started and after it ended.
    pub intervals: Vec<(u64, u64)>,
}

/// A trace laid out for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waterfall {
    /// The trace id.
    pub trace_id: String,
    /// Earliest span start (Unix nanoseconds).
    pub start_unix_nanos: u64,
    /// Latest span end (Unix nanoseconds).
    pub end_unix_nanos: u64,
    /// Spans in depth-first order, children by start time.
    pub rows: Vec<Row>,
    /// Between-processes time of every client call that has a server child.
    pub hops: Vec<Hop>,
}

impl Waterfall {
    /// Lay out the spans of one trace; `None` when there are none.
    pub fn build(spans: &[SpanRecord]) -> Option<Waterfall> {
        let first = spans.first()?;
        let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(first.start_unix_nanos);
        let end = spans.iter().map(|s| s.end_unix_nanos).max().unwrap_or(first.end_unix_nanos).max(start);
        let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
        let mut children: HashMap<&str, Vec<&SpanRecord>> = HashMap::new();
        let mut roots = Vec::new();
        for span in spans {
            match span.parent_span_id.as_deref() {
                Some(parent) if ids.contains(parent) && parent != span.span_id => {
                    children.entry(parent).or_default().push(span)
                }
                _ => roots.push(span),
            }
        }
        let by_start =
            |a: &&SpanRecord, b: &&SpanRecord| (a.start_unix_nanos, &a.span_id).cmp(&(b.start_unix_nanos, &b.span_id));
        roots.sort_by(by_start);
        children.values_mut().for_each(|c| c.sort_by(by_start));

        let mut rows = Vec::with_capacity(spans.len());
        let mut seen = HashSet::new();
        let mut stack: Vec<(&SpanRecord, usize)> = roots.iter().rev().map(|s| (*s, 0)).collect();
        while let Some((span, depth)) = stack.pop() {
            if !seen.insert(span.span_id.as_str()) {
                continue;
            }
            rows.push(Row {
                depth,
                offset_nanos: span.start_unix_nanos.saturating_sub(start),
                orphan: span.parent_span_id.as_deref().is_some_and(|p| !ids.contains(p)),
                span: span.clone(),
            });
            if let Some(kids) = children.get(span.span_id.as_str()) {
                stack.extend(kids.iter().rev().map(|k| (*k, depth + 1)));
            }
        }
        // Spans caught in a parent cycle are unreachable from any root: show them anyway.
        for span in spans {
            if !seen.contains(span.span_id.as_str()) {
                rows.push(Row {
                    depth: 0,
                    offset_nanos: span.start_unix_nanos.saturating_sub(start),
                    orphan: true,
                    span: span.clone(),
                });
            }
        }
        Some(Waterfall {
            trace_id: first.trace_id.clone(),
            start_unix_nanos: start,
            end_unix_nanos: end,
            rows,
            hops: between_processes(spans),
        })
    }

    /// From the first start to the last end.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos - self.start_unix_nanos
    }

    /// The root row (the first row), which names the request.
    pub fn root(&self) -> Option<&SpanRecord> {
        self.rows.first().map(|r| &r.span)
    }

    /// Distinct service names, sorted.
    pub fn services(&self) -> BTreeSet<&str> {
        self.rows.iter().map(|r| r.span.service_name.as_str()).collect()
    }

    /// True when any span has error status.
    pub fn has_error(&self) -> bool {
        self.rows.iter().any(|r| r.span.status_error)
    }

    /// Total between-processes time.
    pub fn between_processes_nanos(&self) -> u64 {
        self.hops.iter().map(|h| h.gap_nanos).sum()
    }

    /// The waterfall as text: one line per span with offset, duration, error mark, service,
    /// the name indented by depth and a bar scaled so `scale_nanos` fills `bar_width` cells.
    pub fn render_text(&self, scale_nanos: u64, bar_width: usize) -> String {
        let scale = scale_nanos.max(self.duration_nanos()).max(1) as f64;
        let service_width = self.rows.iter().map(|r| r.span.service_name.len()).max().unwrap_or(0).max(7);
        let name_width = self.rows.iter().map(|r| r.depth * 2 + r.span.name.len()).max().unwrap_or(0).max(4);
        let mut out = String::new();
        let root = self.root().map(|r| r.name.as_str()).unwrap_or("?");
        let _ = writeln!(
            out,
            "trace {}  {}  {} spans, {} services, {}{}",
            self.trace_id,
            root,
            self.rows.len(),
            self.services().len(),
            millis(self.duration_nanos()),
            if self.has_error() { "  ERROR" } else { "" }
        );
        let _ = writeln!(
            out,
            "{:>10} {:>10}   {:<service_width$}  {:<name_width$}  0{:>w$}",
            "start",
            "duration",
            "service",
            "span",
            millis(scale as u64),
            w = bar_width + 1
        );
        let gaps: HashMap<&str, u64> = self.hops.iter().map(|h| (h.client_span_id.as_str(), h.gap_nanos)).collect();
        for row in &self.rows {
            let span = &row.span;
            let cell = |nanos: u64| ((nanos as f64 / scale) * bar_width as f64).round() as usize;
            let from = cell(row.offset_nanos).min(bar_width);
            let len = cell(span.duration_nanos()).max(1).min(bar_width - from.min(bar_width - 1));
            let bar = format!("{}{}", " ".repeat(from), "█".repeat(len));
            let mark = if span.status_error {
                "✗"
            } else if row.orphan {
                "?"
            } else {
                " "
            };
            let name = format!("{}{}", "  ".repeat(row.depth), span.name);
            let gap = match gaps.get(span.span_id.as_str()) {
                Some(gap) => format!("  (between processes {})", millis(*gap)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "{:>10} {:>10} {mark} {:<service_width$}  {name:<name_width$}  |{bar:<bar_width$}|{gap}",
                format!("+{}", millis(row.offset_nanos)),
                millis(span.duration_nanos()),
                span.service_name,
            );
        }
        if !self.hops.is_empty() {
            let _ = writeln!(
                out,
                "between processes: {} over {} calls ({:.0} % of the trace)",
                millis(self.between_processes_nanos()),
                self.hops.len(),
                100.0 * self.between_processes_nanos() as f64 / self.duration_nanos().max(1) as f64
            );
        }
        let errors: Vec<&Row> = self.rows.iter().filter(|r| r.span.status_error).collect();
        for row in errors {
            let _ = writeln!(out, "✗ {} {}: {}", row.span.service_name, row.span.name, row.span.status_message);
        }
        out
    }
}

/// Every client span with at least one server child, and the time it spent outside them.
pub fn between_processes(spans: &[SpanRecord]) -> Vec<Hop> {
    let mut hops = Vec::new();
    for client in spans.iter().filter(|s| s.kind == "client") {
        let servers: Vec<&SpanRecord> = spans
            .iter()
            .filter(|s| s.kind == "server" && s.parent_span_id.as_deref() == Some(client.span_id.as_str()))
            .collect();
        let (Some(first), Some(last)) =
            (servers.iter().map(|s| s.start_unix_nanos).min(), servers.iter().map(|s| s.end_unix_nanos).max())
        else {
            continue;
        };
        let inside: u64 = servers.iter().map(|s| s.duration_nanos()).sum();
        let mut intervals = Vec::new();
        if first > client.start_unix_nanos {
            intervals.push((client.start_unix_nanos, first.min(client.end_unix_nanos)));
        }
        if last < client.end_unix_nanos {
            intervals.push((last.max(client.start_unix_nanos), client.end_unix_nanos));
        }
        hops.push(Hop {
            client_span_id: client.span_id.clone(),
            client_name: client.name.clone(),
            from_service: client.service_name.clone(),
            to_service: servers
                .iter()
                .map(|s| s.service_name.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(","),
            gap_nanos: client.duration_nanos().saturating_sub(inside),
            intervals,
        });
    }
    hops
}

/// Nanoseconds as milliseconds with enough digits to tell short spans apart.
pub fn millis(nanos: u64) -> String {
    let ms = nanos as f64 / 1e6;
    if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 1.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.3}ms")
    }
}

/// Two waterfalls in the terminal on one scale, one above the other, with their totals.
pub fn render_compare_text(left: &Waterfall, right: &Waterfall, labels: [&str; 2], bar_width: usize) -> String {
    let scale = left.duration_nanos().max(right.duration_nanos());
    let mut out = String::new();
    for (label, waterfall) in labels.iter().zip([left, right]) {
        let _ = writeln!(out, "== {label}");
        out.push_str(&waterfall.render_text(scale, bar_width));
        out.push('\n');
    }
    let _ = writeln!(out, "{:<14}{:>12}{:>22}{:>8}", "", "total", "between processes", "hops");
    for (label, waterfall) in labels.iter().zip([left, right]) {
        let _ = writeln!(
            out,
            "{label:<14}{:>12}{:>22}{:>8}",
            millis(waterfall.duration_nanos()),
            millis(waterfall.between_processes_nanos()),
            waterfall.hops.len()
        );
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span of trace "t" from `start` to `end` (nanoseconds).
    pub(crate) fn span(id: &str, parent: Option<&str>, service: &str, kind: &str, start: u64, end: u64) -> SpanRecord {
        SpanRecord {
            trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
            span_id: id.to_owned(),
            parent_span_id: parent.map(str::to_owned),
            name: format!("op-{id}"),
            service_name: service.to_owned(),
            kind: kind.to_owned(),
            start_unix_nanos: start,
            end_unix_nanos: end,
            status_error: false,
            status_message: String::new(),
            attributes: Default::default(),
            links: Vec::new(),
            scope: String::new(),
        }
    }

    /// gateway server 0..100; client call 10..90 to payments (server 20..70), which calls
    /// auth (client 30..50, server 35..45); an internal span and a client without server.
    pub(crate) fn micro_trace() -> Vec<SpanRecord> {
        vec![
            span("c1", Some("s0"), "gateway", "client", 10, 90),
            span("s0", None, "gateway", "server", 0, 100),
            span("s1", Some("c1"), "payments-service", "server", 20, 70),
            span("c2", Some("s1"), "payments-service", "client", 30, 50),
            span("s2", Some("c2"), "auth-service", "server", 35, 45),
            span("i1", Some("s1"), "payments-service", "internal", 55, 60),
            span("c3", Some("s1"), "payments-service", "client", 60, 68),
        ]
    }

    #[test]
    fn between_processes_is_client_minus_server_child_per_hop_and_totalled() {
        let hops = between_processes(&micro_trace());
        // c3 has no server child (extsim not traced): it is not a hop.
        assert_eq!(hops.len(), 2);
        let c1 = hops.iter().find(|h| h.client_span_id == "c1").expect("hop c1");
        assert_eq!(c1.gap_nanos, 80 - 50);
        assert_eq!(c1.intervals, vec![(10, 20), (70, 90)]);
        assert_eq!((c1.from_service.as_str(), c1.to_service.as_str()), ("gateway", "payments-service"));
        let c2 = hops.iter().find(|h| h.client_span_id == "c2").expect("hop c2");
        assert_eq!(c2.gap_nanos, 20 - 10);
        assert_eq!(c2.intervals, vec![(30, 35), (45, 50)]);
        let waterfall = Waterfall::build(&micro_trace()).expect("a waterfall");
        assert_eq!(waterfall.between_processes_nanos(), 40);
    }

    #[test]
    fn a_server_child_longer_than_its_client_counts_zero_not_an_underflow() {
        // Clock skew between processes can make the server look longer than the call.
        let spans = vec![span("c", None, "a", "client", 10, 20), span("s", Some("c"), "b", "server", 5, 30)];
        let hops = between_processes(&spans);
        assert_eq!(hops[0].gap_nanos, 0);
        assert!(hops[0].intervals.is_empty());
    }

    #[test]
    fn two_server_children_retries_are_both_subtracted() {
        let spans = vec![
            span("c", None, "a", "client", 0, 100),
            span("s1", Some("c"), "b", "server", 10, 30),
            span("s2", Some("c"), "b", "server", 50, 80),
        ];
        assert_eq!(between_processes(&spans)[0].gap_nanos, 100 - 20 - 30);
    }

    #[test]
    fn rows_are_depth_first_children_by_start_with_depths_and_offsets() {
        let waterfall = Waterfall::build(&micro_trace()).expect("a waterfall");
        let order: Vec<(&str, usize, u64)> =
            waterfall.rows.iter().map(|r| (r.span.span_id.as_str(), r.depth, r.offset_nanos)).collect();
        assert_eq!(
            order,
            vec![
                ("s0", 0, 0),
                ("c1", 1, 10),
                ("s1", 2, 20),
                ("c2", 3, 30),
                ("s2", 4, 35),
                ("i1", 3, 55),
                ("c3", 3, 60)
            ]
        );
        assert_eq!(waterfall.duration_nanos(), 100);
        assert_eq!(waterfall.services().len(), 3);
    }

    #[test]
    fn an_orphan_is_shown_at_depth_zero_and_marked() {
        let spans = vec![span("a", None, "x", "server", 0, 10), span("b", Some("missing"), "x", "internal", 2, 4)];
        let waterfall = Waterfall::build(&spans).expect("a waterfall");
        let b = waterfall.rows.iter().find(|r| r.span.span_id == "b").expect("row b");
        assert!(b.orphan);
        assert_eq!(b.depth, 0);
        assert!(waterfall.render_text(0, 20).lines().any(|l| l.contains('?') && l.contains("op-b")));
    }

    #[test]
    fn the_text_shows_offset_duration_error_and_a_scaled_bar() {
        let mut spans = vec![
            span("a", None, "gateway", "server", 0, 2_000_000),
            span("b", Some("a"), "db", "client", 1_000_000, 2_000_000),
        ];
        spans[1].status_error = true;
        spans[1].status_message = "boom".to_owned();
        let text = Waterfall::build(&spans).expect("a waterfall").render_text(0, 10);
        let line = text.lines().find(|l| l.contains("op-b")).expect("line of b");
        assert!(line.contains("+1.00ms") && line.contains("1.00ms") && line.contains('✗'), "{line}");
        assert!(line.contains("|     █████|"), "half-way start, half the width: {line}");
        assert!(line.contains("  op-b"), "indented by depth: {line}");
        assert!(text.contains("ERROR") && text.contains("boom"), "{text}");
    }
}
