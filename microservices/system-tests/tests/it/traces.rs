//! One trace per request across every process: the microservices export their spans over
//! OTLP to an in-test receiver, each process under its own `service.name`
//! (`archlab_testkit::traced`), and a purchase's spans form one tree with one trace id
//! across gateway, payments, auth, users and notifications, through the broker and the
//! outbox in async mode. A failed purchase answers the trace id that shows where it failed.

use archlab_conformance::{Api, unique_key};
use archlab_kernel::processes::{AUTH_SERVICE, GATEWAY, NOTIFICATIONS_SERVICE, PAYMENTS_SERVICE, USERS_SERVICE};
use archlab_kernel::{NotificationMode, Transport};
use archlab_system_tests::{Options, Stack};
use archlab_traces::{Receiver, SpanRecord};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// How long spans may take to arrive: the batch processor sends every second.
const ARRIVAL: Duration = Duration::from_secs(20);

/// A stack exporting to a fresh receiver.
async fn traced_stack(mode: NotificationMode, transport: Transport) -> (Stack, Receiver) {
    let (receiver, addr) = Receiver::start().await.expect("start the OTLP receiver");
    let options = Options { mode, transport, otlp_endpoint: Some(format!("http://{addr}")), ..Options::default() };
    (Stack::start(options).await, receiver)
}

/// One purchase through the gateway: its status, body and the trace id of its `traceparent`.
async fn purchase(stack: &Stack) -> (u16, serde_json::Value, String) {
    let user = Api::new(stack).new_user().await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/payments", stack.gateway_url))
        .bearer_auth(&user.token)
        .header("Idempotency-Key", unique_key())
        .json(&json!({"amount_cents": 1200, "currency": "EUR"}))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let traceparent = response
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("a {status} answer without traceparent"));
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    (status, body, trace_id(&traceparent))
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: &str) -> String {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "traceparent {traceparent:?}");
    assert_eq!(parts[1].len(), 32, "traceparent {traceparent:?}");
    parts[1].to_owned()
}

fn has(spans: &[SpanRecord], service: &str, name: &str) -> bool {
    spans.iter().any(|s| s.service_name == service && s.name == name)
}

fn find<'a>(spans: &'a [SpanRecord], service: &str, name: &str) -> &'a SpanRecord {
    spans.iter().find(|s| s.service_name == service && s.name == name).unwrap_or_else(|| {
        panic!("no span {name} from {service} in:\n{}", listing(spans));
    })
}

/// Every span's parent is in the trace too.
fn no_orphans(spans: &[SpanRecord]) -> bool {
    spans.iter().filter_map(|s| s.parent_span_id.as_ref()).all(|p| spans.iter().any(|s| &s.span_id == p))
}

fn listing(spans: &[SpanRecord]) -> String {
    spans
        .iter()
        .map(|s| format!("  {} {} [{}] {} <- {:?}", s.service_name, s.name, s.kind, s.span_id, s.parent_span_id))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Wait until the trace holds every `(service, span name)` of `expected` and no orphan.
async fn complete_trace(receiver: &Receiver, trace_id: &str, expected: &[(&str, &str)]) -> Vec<SpanRecord> {
    let ready = |spans: &[SpanRecord]| {
        let trace: Vec<SpanRecord> = spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        expected.iter().all(|(service, name)| has(&trace, service, name)) && no_orphans(&trace)
    };
    receiver.wait_for(ARRIVAL, ready).await;
    let trace = receiver.trace(trace_id);
    for (service, name) in expected {
        assert!(has(&trace, service, name), "trace {trace_id} lacks {name} from {service}:\n{}", listing(&trace));
    }
    trace
}

/// One root (the gateway's server span), no orphans, and every hop between two processes
/// goes from a client or producer span to a server or consumer span.
fn assert_one_tree(trace: &[SpanRecord], min_hops: usize) {
    let roots: Vec<&SpanRecord> = trace.iter().filter(|s| s.is_root()).collect();
    assert_eq!(roots.len(), 1, "one root:\n{}", listing(trace));
    assert_eq!((roots[0].service_name.as_str(), roots[0].kind.as_str()), (GATEWAY.name, "server"));
    assert_eq!(roots[0].name, "POST /api/payments", "the root is named after the route");
    assert!(no_orphans(trace), "orphan spans:\n{}", listing(trace));
    let by_id: HashMap<&str, &SpanRecord> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let mut hops = 0;
    for span in trace {
        let Some(parent) = span.parent_span_id.as_deref().and_then(|p| by_id.get(p)) else { continue };
        if parent.service_name != span.service_name {
            hops += 1;
            assert!(
                matches!(parent.kind.as_str(), "client" | "producer")
                    && matches!(span.kind.as_str(), "server" | "consumer"),
                "{} ({}, {}) is the child of {} ({}, {})",
                span.name,
                span.service_name,
                span.kind,
                parent.name,
                parent.service_name,
                parent.kind
            );
        }
    }
    assert!(hops >= min_hops, "{hops} hops between processes, expected {min_hops} or more\n{}", listing(trace));
}

/// The ancestors of `span`, nearest first.
fn ancestors<'a>(trace: &'a [SpanRecord], span: &SpanRecord) -> Vec<&'a SpanRecord> {
    let mut chain = Vec::new();
    let mut next = span.parent_span_id.clone();
    while let Some(id) = next {
        let Some(parent) = trace.iter().find(|s| s.span_id == id) else { break };
        chain.push(parent);
        next = parent.parent_span_id.clone();
    }
    chain
}

/// The logical steps of a purchase, in the process that runs each.
const STEPS: [(&str, &str); 7] = [
    (GATEWAY.name, "POST /api/payments"),
    (PAYMENTS_SERVICE.name, "payments.purchase"),
    (PAYMENTS_SERVICE.name, "payments.charge"),
    (PAYMENTS_SERVICE.name, "payments.record"),
    (AUTH_SERVICE.name, "auth.verify_session"),
    (USERS_SERVICE.name, "users.get_profile"),
    (NOTIFICATIONS_SERVICE.name, "notifications.deliver"),
];

async fn a_sync_purchase_is_one_trace_across_every_process(transport: Transport) {
    let (stack, receiver) = traced_stack(NotificationMode::Sync, transport).await;
    let (status, body, trace_id) = purchase(&stack).await;
    assert_eq!(status, 201, "{body}");

    let trace = complete_trace(&receiver, &trace_id, &STEPS).await;
    assert_one_tree(&trace, 4);
    // The transport shows in the server spans of the callee.
    let get_profile = find(&trace, USERS_SERVICE.name, "users.get_profile");
    let server = ancestors(&trace, get_profile)
        .into_iter()
        .find(|s| s.kind == "server")
        .expect("users.get_profile runs under a server span");
    assert_eq!(server.service_name, USERS_SERVICE.name);
    match transport {
        Transport::Grpc => assert_eq!(server.attributes.get("rpc.system").map(String::as_str), Some("grpc")),
        Transport::Http => assert!(server.attributes.contains_key("http.route"), "{server:?}"),
    }
    // Database spans under the logical steps.
    let db = trace.iter().find(|s| s.name == "SELECT users.profiles").expect("the profile read has a span");
    assert_eq!(db.attributes.get("db.system.name").map(String::as_str), Some("postgresql"));
    assert_eq!(db.parent_span_id.as_deref(), Some(get_profile.span_id.as_str()));
}

#[tokio::test]
async fn over_grpc_a_sync_purchase_is_one_trace_across_every_process() {
    a_sync_purchase_is_one_trace_across_every_process(Transport::Grpc).await;
}

#[tokio::test]
async fn over_http_a_sync_purchase_is_one_trace_across_every_process() {
    a_sync_purchase_is_one_trace_across_every_process(Transport::Http).await;
}

async fn an_async_purchase_continues_its_trace_through_the_outbox_and_the_broker(transport: Transport) {
    let (stack, receiver) = traced_stack(NotificationMode::Async, transport).await;
    let (status, body, trace_id) = purchase(&stack).await;
    assert_eq!(status, 201, "{body}");

    // The relay and the consumer run by themselves (woken by the outbox's NOTIFY).
    let mut expected = STEPS.to_vec();
    expected.extend([
        (PAYMENTS_SERVICE.name, "outbox.deliver"),
        (PAYMENTS_SERVICE.name, "broker.publish"),
        (NOTIFICATIONS_SERVICE.name, "broker.consume"),
    ]);
    let trace = complete_trace(&receiver, &trace_id, &expected).await;
    assert_one_tree(&trace, 4);

    // notifications.deliver ← broker.consume ← broker.publish ← outbox.deliver ← payments.record
    let deliver = find(&trace, NOTIFICATIONS_SERVICE.name, "notifications.deliver");
    let chain: Vec<(&str, &str)> =
        ancestors(&trace, deliver).iter().map(|s| (s.service_name.as_str(), s.name.as_str())).collect();
    let consume = chain.iter().position(|&s| s == (NOTIFICATIONS_SERVICE.name, "broker.consume"));
    let publish = chain.iter().position(|&s| s == (PAYMENTS_SERVICE.name, "broker.publish"));
    let outbox = chain.iter().position(|&s| s == (PAYMENTS_SERVICE.name, "outbox.deliver"));
    let record = chain.iter().position(|&s| s == (PAYMENTS_SERVICE.name, "payments.record"));
    assert!(
        matches!((consume, publish, outbox, record), (Some(c), Some(p), Some(o), Some(r)) if c < p && p < o && o < r),
        "notifications.deliver's ancestors: {chain:?}"
    );
    let publish = find(&trace, PAYMENTS_SERVICE.name, "broker.publish");
    assert_eq!(publish.kind, "producer");
    assert_eq!(publish.attributes.get("messaging.system").map(String::as_str), Some("rabbitmq"));
}

#[tokio::test]
async fn over_grpc_an_async_purchase_continues_its_trace_through_the_outbox_and_the_broker() {
    an_async_purchase_continues_its_trace_through_the_outbox_and_the_broker(Transport::Grpc).await;
}

#[tokio::test]
async fn over_http_an_async_purchase_continues_its_trace_through_the_outbox_and_the_broker() {
    an_async_purchase_continues_its_trace_through_the_outbox_and_the_broker(Transport::Http).await;
}

/// Payments' client span of the call to notifications (gRPC).
const DELIVER_CALL: &str = "archlab.notifications.v1.Notifications/Deliver";

#[tokio::test]
async fn a_purchase_failed_by_notifications_down_answers_the_trace_that_shows_the_failing_span() {
    let (mut stack, receiver) = traced_stack(NotificationMode::Sync, Transport::Grpc).await;
    stack.stop(NOTIFICATIONS_SERVICE.name).await;
    let (status, body, trace_id) = purchase(&stack).await;
    assert!(status >= 500, "the seed story: the purchase fails ({status}: {body})");
    assert_eq!(body["error"]["trace_id"].as_str(), Some(trace_id.as_str()), "the body names the header's trace");

    let expected = [
        (GATEWAY.name, "POST /api/payments"),
        (PAYMENTS_SERVICE.name, "payments.purchase"),
        (AUTH_SERVICE.name, "auth.verify_session"),
        (USERS_SERVICE.name, "users.get_profile"),
        (PAYMENTS_SERVICE.name, DELIVER_CALL),
    ];
    let trace = complete_trace(&receiver, &trace_id, &expected).await;
    // gateway→auth, gateway→payments, payments→auth, payments→users; nothing reached notifications.
    assert_one_tree(&trace, 3);
    assert!(
        !trace.iter().any(|s| s.service_name == NOTIFICATIONS_SERVICE.name),
        "a stopped process sent spans:\n{}",
        listing(&trace)
    );
    let failed = find(&trace, PAYMENTS_SERVICE.name, DELIVER_CALL);
    assert_eq!(failed.kind, "client");
    assert!(failed.status_error, "the call to the stopped service has error status: {failed:?}");
    let root = find(&trace, GATEWAY.name, "POST /api/payments");
    assert!(root.status_error, "a 5xx marks the root span: {root:?}");
    assert_eq!(root.attributes.get("http.response.status_code"), Some(&status.to_string()));
    // The path from the failure to the root is marked all the way up, across processes.
    let marked: Vec<&str> =
        ancestors(&trace, failed).iter().filter(|s| s.status_error).map(|s| s.name.as_str()).collect();
    assert!(marked.contains(&"payments.purchase"), "payments.purchase failed too: {marked:?}");
}
