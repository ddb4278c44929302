//! What the telemetry pipeline does with spans: with no endpoint, trace ids and nothing else;
//! with one, every ended span exported and counted; with a dead one, every span counted lost.

use archlab_telemetry::{Export, SpanCounts, dispatch};
use archlab_traces::Receiver;
use std::time::Duration;

/// End `n` spans, each a root of its own trace, under `subscriber`; their trace ids.
fn end_spans(subscriber: &tracing::Dispatch, n: usize) -> Vec<Option<String>> {
    tracing::dispatcher::with_default(subscriber, || {
        (0..n)
            .map(|_| {
                let span = tracing::info_span!("test.step");
                let _entered = span.enter();
                archlab_kernel::trace::current_trace_id()
            })
            .collect()
    })
}

#[tokio::test]
async fn without_an_endpoint_spans_have_trace_ids_and_nothing_is_queued_or_waited_for() {
    let (subscriber, guard) = dispatch("no-endpoint", Export::None).unwrap();
    let ids = end_spans(&subscriber, 100);
    assert!(ids.iter().all(|id| id.as_ref().is_some_and(|id| id.len() == 32 && id != &"0".repeat(32))), "{ids:?}");
    assert_ne!(ids[0], ids[1], "each root span starts a trace of its own");
    assert_eq!(guard.span_counts(), SpanCounts::default(), "no processor: nothing is queued");
    // An exporter would wait for its endpoint here (up to its 10 s timeout); there is none.
    let counts =
        tokio::time::timeout(Duration::from_secs(2), guard.shutdown()).await.expect("shutdown waits for nothing");
    assert_eq!(counts, SpanCounts::default());
}

#[tokio::test]
async fn with_an_endpoint_every_ended_span_is_exported_and_counted() {
    let (receiver, addr) = Receiver::start().await.unwrap();
    let (subscriber, guard) = dispatch("counted", Export::To(format!("http://{addr}"))).unwrap();
    let ids = end_spans(&subscriber, 50);
    let counts = guard.shutdown().await;
    assert_eq!(counts, SpanCounts { ended: 50, exported: 50, export_failed: 0 });
    assert_eq!(counts.dropped(), 0);
    let received = receiver.spans();
    assert_eq!(received.len(), 50, "the shutdown flushed every span");
    assert!(received.iter().all(|s| s.service_name == "counted" && s.name == "test.step"));
    assert!(ids.iter().flatten().all(|id| received.iter().any(|s| &s.trace_id == id)));
}

#[tokio::test]
async fn with_the_receiver_gone_every_span_is_counted_as_lost() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (subscriber, guard) = dispatch("lost", Export::To(format!("http://{dead}"))).unwrap();
    end_spans(&subscriber, 20);
    let counts = guard.shutdown().await;
    assert_eq!(counts.ended, 20);
    assert_eq!(counts.exported, 0);
    assert_eq!(counts.export_failed + counts.dropped(), 20, "{counts:?}");
}

/// A root span with a database span inside it, under `subscriber`: whether the inner span
/// was built, and the trace id seen from inside it.
fn db_span_inside_a_root(subscriber: &tracing::Dispatch) -> (bool, Option<String>, Option<String>) {
    tracing::dispatcher::with_default(subscriber, || {
        let root = tracing::info_span!("test.root");
        let _root = root.enter();
        let root_id = archlab_kernel::trace::current_trace_id();
        let inner = archlab_kernel::trace::db_span("SELECT", "test");
        let _inner = inner.enter();
        (!inner.is_disabled(), root_id, archlab_kernel::trace::current_trace_id())
    })
}

#[tokio::test]
async fn spans_inside_a_process_are_built_only_when_exported() {
    // Without an endpoint nobody sees a db.query span: it is not built, and code inside it
    // still reads its request's trace id (for an error body, an outbox row).
    let (subscriber, guard) = dispatch("inner-off", Export::None).unwrap();
    let (built, root_id, inner_id) = db_span_inside_a_root(&subscriber);
    assert!(!built, "a debug-level span is built with nobody to export it to");
    assert!(root_id.is_some());
    assert_eq!(inner_id, root_id);
    drop(guard);

    // With one, it is exported as the root's child.
    let (receiver, addr) = Receiver::start().await.unwrap();
    let (subscriber, guard) = dispatch("inner-on", Export::To(format!("http://{addr}"))).unwrap();
    let (built, root_id, inner_id) = db_span_inside_a_root(&subscriber);
    assert!(built);
    assert_eq!(inner_id, root_id);
    assert_eq!(guard.shutdown().await.ended, 2);
    let received = receiver.spans();
    let root = received.iter().find(|s| s.name == "test.root").expect("root exported");
    let inner = received.iter().find(|s| s.name == "SELECT test").expect("db span exported");
    assert_eq!(inner.parent_span_id.as_deref(), Some(root.span_id.as_str()));
}
