//! Calls that leave the process, counted: `GET /metrics` in Prometheus text format.
//!
//! The lab's cost figure "network calls per user request" is counted, not estimated: each
//! place where a process calls out increments one process-wide counter, and the harness
//! (`archlab compare`) reads every process's `/metrics` before and after a load step and
//! divides the difference by the requests sent. Database calls are not counted here; the
//! harness reads them from PostgreSQL's own `pg_stat_database`.
//!
//! The counting sites, one line each:
//! - [`INTERNAL_RPC`]: every remote port call and every gateway forward, gRPC or HTTP, in the
//!   tower stack of microservices/remote/src/transport.rs (the gateway's forwards and its
//!   token checks go through that stack too, and so do its `/ready` probes of the services).
//! - [`THIRD_PARTY`]: every request to the payment provider (shared/payments/src/provider.rs)
//!   and the email provider (shared/notifications/src/email.rs).
//! - [`BROKER_PUBLISH`]: every publish to RabbitMQ (microservices/remote/src/broker/publisher.rs).
//!
//! Beside them, `archlab_resilience_total{event}`: what the resilience policies of the remote
//! clients did (microservices/remote/src/transport.rs), so an experiment can show with
//! numbers that retries stay within their budget and that a breaker opens and closes again:
//! [`RETRIES`] and [`RETRIES_REFUSED`] (a retry the budget did not allow), the breaker's
//! transitions [`BREAKER_OPENED`], [`BREAKER_HALF_OPENED`], [`BREAKER_CLOSED`] and the calls
//! it refused, [`BREAKER_REJECTED`], the calls the bulkhead refused, [`BULKHEAD_REJECTED`],
//! and the calls refused because the caller's deadline was already spent, [`DEADLINE_SPENT`].
//! None of these is a call to another process, so they are not `archlab_calls_total` kinds.
//!
//! And `archlab_spans_total{outcome}`: what the process's span pipeline did with its
//! spans (`ended`, `exported`, `export_failed`), as archlab-telemetry counts them and
//! registers with [`report_spans_with`]; `ended − exported − export_failed` is what was
//! dropped (or is still queued). `archlab trace-overhead` reads it.
//!
//! A plain static registry of atomics, no metrics library: a dozen counters do not need one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// The metric name every counter is a series of.
pub const CALLS_TOTAL: &str = "archlab_calls_total";

/// One monotonically increasing count of calls of one kind, for the life of the process.
#[derive(Debug)]
pub struct Counter {
    /// The `kind` label value, e.g. `internal_rpc`.
    kind: &'static str,
    value: AtomicU64,
}

impl Counter {
    /// A counter at zero labelled `kind`.
    pub const fn new(kind: &'static str) -> Self {
        Self { kind, value: AtomicU64::new(0) }
    }

    /// Count one call.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// The `kind` label value.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// A tower layer that counts one call on this counter each time the wrapped service is
    /// called (before it is sent, so calls that fail or time out count too).
    pub fn layer(&'static self) -> CountLayer {
        CountLayer(self)
    }
}

/// Calls from one process to another process of the build (gRPC or HTTP).
pub static INTERNAL_RPC: Counter = Counter::new("internal_rpc");
/// Requests to a simulated third party (payment or email provider).
pub static THIRD_PARTY: Counter = Counter::new("third_party");
/// Messages published to the broker.
pub static BROKER_PUBLISH: Counter = Counter::new("broker_publish");

/// Every counter `/metrics` shows, in the order it shows them.
pub static ALL: [&Counter; 3] = [&INTERNAL_RPC, &THIRD_PARTY, &BROKER_PUBLISH];

/// The metric name of the resilience policies' events; its label is `event`.
pub const RESILIENCE_TOTAL: &str = "archlab_resilience_total";

/// A retry sent by a remote client (an idempotent call that failed transiently, within budget).
pub static RETRIES: Counter = Counter::new("retry");
/// A retry a remote client wanted to send but its retry budget did not allow.
pub static RETRIES_REFUSED: Counter = Counter::new("retry_budget_exhausted");
/// A circuit breaker of a remote client went to open (closed → open, or half-open → open).
pub static BREAKER_OPENED: Counter = Counter::new("breaker_opened");
/// A circuit breaker went from open to half-open, letting trial calls through.
pub static BREAKER_HALF_OPENED: Counter = Counter::new("breaker_half_opened");
/// A circuit breaker went back to closed: the dependency recovered.
pub static BREAKER_CLOSED: Counter = Counter::new("breaker_closed");
/// A call an open circuit breaker refused without sending it.
pub static BREAKER_REJECTED: Counter = Counter::new("breaker_rejected");
/// A call the bulkhead refused: no free slot within its bounded wait.
pub static BULKHEAD_REJECTED: Counter = Counter::new("bulkhead_rejected");
/// A call refused before it was sent because the caller's deadline was already spent.
pub static DEADLINE_SPENT: Counter = Counter::new("deadline_spent");

/// Every resilience counter `/metrics` shows, in the order it shows them.
pub static RESILIENCE: [&Counter; 8] = [
    &RETRIES,
    &RETRIES_REFUSED,
    &BREAKER_OPENED,
    &BREAKER_HALF_OPENED,
    &BREAKER_CLOSED,
    &BREAKER_REJECTED,
    &BULKHEAD_REJECTED,
    &DEADLINE_SPENT,
];

/// The metric name of the span pipeline's counts.
pub const SPANS_TOTAL: &str = "archlab_spans_total";

/// What a process's span pipeline did with its spans so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanTotals {
    /// Spans ended and handed to the exporter's queue.
    pub ended: u64,
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Spans in export requests that failed.
    pub export_failed: u64,
}

/// Where `/metrics` reads the span counts; set once by the telemetry set-up.
static SPAN_SOURCE: OnceLock<fn() -> SpanTotals> = OnceLock::new();

/// Show `source()` as `archlab_spans_total` on `/metrics`. The first call wins; without one
/// the series is absent (a process that exports nothing has nothing to count).
pub fn report_spans_with(source: fn() -> SpanTotals) {
    let _ = SPAN_SOURCE.set(source);
}

/// Every counter in Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    let mut out = format!(
        "# HELP {CALLS_TOTAL} Calls this process made to another process, by kind.\n# TYPE {CALLS_TOTAL} counter\n"
    );
    for counter in ALL {
        out.push_str(&format!("{CALLS_TOTAL}{{kind=\"{}\"}} {}\n", counter.kind, counter.get()));
    }
    out.push_str(&format!(
        "# HELP {RESILIENCE_TOTAL} What the remote clients' resilience policies did, by event.\n# TYPE {RESILIENCE_TOTAL} counter\n"
    ));
    for counter in RESILIENCE {
        out.push_str(&format!("{RESILIENCE_TOTAL}{{event=\"{}\"}} {}\n", counter.kind, counter.get()));
    }
    if let Some(source) = SPAN_SOURCE.get() {
        let spans = source();
        out.push_str(&format!(
            "# HELP {SPANS_TOTAL} Spans this process ended, exported and failed to export.\n# TYPE {SPANS_TOTAL} counter\n"
        ));
        for (outcome, value) in
            [("ended", spans.ended), ("exported", spans.exported), ("export_failed", spans.export_failed)]
        {
            out.push_str(&format!("{SPANS_TOTAL}{{outcome=\"{outcome}\"}} {value}\n"));
        }
    }
    out
}

/// Read `text` (Prometheus text format) back into `(kind, value)` pairs of
/// [`CALLS_TOTAL`]; lines of other metrics, comments and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<(String, u64)> {
    parse_series(text, CALLS_TOTAL, "kind")
}

/// The `(label value, value)` pairs of the series of `metric` with the single label
/// `label`, read from Prometheus text; everything else is skipped.
pub fn parse_series(text: &str, metric: &str, label: &str) -> Vec<(String, u64)> {
    let open = format!("{{{label}=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix(metric)?.strip_prefix(open.as_str())?;
            let (value_of_label, rest) = rest.split_once("\"}")?;
            Some((value_of_label.to_owned(), rest.trim().parse().ok()?))
        })
        .collect()
}

/// Read `text` (Prometheus text format) back into `(event, value)` pairs of
/// [`RESILIENCE_TOTAL`].
pub fn parse_resilience(text: &str) -> Vec<(String, u64)> {
    parse_series(text, RESILIENCE_TOTAL, "event")
}

/// The span counts read back from one process's `/metrics` text (zero when absent).
pub fn parse_spans(text: &str) -> SpanTotals {
    let mut spans = SpanTotals::default();
    for (outcome, value) in parse_series(text, SPANS_TOTAL, "outcome") {
        match outcome.as_str() {
            "ended" => spans.ended = value,
            "exported" => spans.exported = value,
            "export_failed" => spans.export_failed = value,
            _ => {}
        }
    }
    spans
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counts of the calls this process made to other processes.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "health", responses(
    (status = 200, description = "`archlab_calls_total{kind=\"internal_rpc\"|\"third_party\"|\"broker_publish\"}` \
        counters in Prometheus text format, and `archlab_spans_total{outcome=\"ended\"|\"exported\"|\"export_failed\"}` \
        when the process exports spans", body = String, content_type = "text/plain"),
))]
pub(crate) async fn metrics() -> impl axum::response::IntoResponse {
    ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], render())
}

/// See [`Counter::layer`].
#[derive(Debug, Clone, Copy)]
pub struct CountLayer(&'static Counter);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count { counter: self.0, inner }
    }
}

/// A service that counts its calls; see [`Counter::layer`].
#[derive(Debug, Clone)]
pub struct Count<S> {
    counter: &'static Counter,
    inner: S,
}

impl<S: tower::Service<R>, R> tower::Service<R> for Count<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.counter.inc();
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    #[test]
    fn render_is_prometheus_text_that_parse_reads_back() {
        static LOCAL: Counter = Counter::new("local");
        LOCAL.inc();
        LOCAL.inc();
        assert_eq!(LOCAL.get(), 2);
        let text = render();
        assert!(text.starts_with("# HELP archlab_calls_total "), "{text}");
        assert!(text.contains("\n# TYPE archlab_calls_total counter\n"), "{text}");
        let kinds: Vec<String> = parse(&text).into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, ["internal_rpc", "third_party", "broker_publish"]);
        let events: Vec<String> = parse_resilience(&text).into_iter().map(|(event, _)| event).collect();
        assert_eq!(
            events,
            RESILIENCE.map(Counter::kind),
            "every resilience event is shown, and only under its own name"
        );
        assert_eq!(
            parse("# x\narchlab_calls_total{kind=\"third_party\"} 42\nother{kind=\"a\"} 1\nbroken{\n"),
            [("third_party".to_owned(), 42)]
        );
    }

    #[test]
    fn span_counts_render_once_registered_and_parse_back() {
        fn totals() -> SpanTotals {
            SpanTotals { ended: 7, exported: 5, export_failed: 1 }
        }
        assert_eq!(parse_spans(&render()), SpanTotals::default(), "absent before registration");
        report_spans_with(totals);
        let text = render();
        assert!(text.contains("\n# TYPE archlab_spans_total counter\n"), "{text}");
        assert_eq!(parse_spans(&text), totals());
        assert_eq!(parse(&text).len(), 3, "the calls series are unchanged: {text}");
    }

    #[tokio::test]
    async fn the_layer_counts_each_call() {
        static CALLS: Counter = Counter::new("calls");
        let mut service = CALLS.layer().layer(tower::service_fn(|n: u32| async move { Ok::<_, ()>(n + 1) }));
        for n in 0..3 {
            assert_eq!(service.ready().await.expect("ready").call(n).await, Ok(n + 1));
        }
        assert_eq!(CALLS.get(), 3);
    }
}
