//! The monolith's traces: the same logical span names as the microservices
//! (microservices/system-tests/tests/it/traces.rs), in one process and one tree, and a failed
//! purchase that answers the trace id showing its failing step.

use archlab_conformance::{Api, Target, User, unique_key};
use archlab_extsim::{BehaviourPatch, SimConfigPatch};
use archlab_kernel::NotificationMode;
use archlab_kernel::config::{AbuseArgs, BehaviourArgs, DatabaseArgs, ExternalArgs, ReconcileArgs, SessionArgs};
use archlab_kernel::processes::MONOLITH;
use archlab_kernel::server::Running;
use archlab_monolith::{App, Config, Handle};
use archlab_testkit::Extsim;
use archlab_testkit::traced::{self, ProcessThread};
use archlab_traces::{Receiver, SpanRecord};
use serde_json::json;
use std::time::Duration;

/// How long spans may take to arrive: the batch processor sends every second.
const ARRIVAL: Duration = Duration::from_secs(20);

/// The same logical steps the microservices test expects, each in its own process there.
const STEPS: [&str; 7] = [
    "POST /api/payments",
    "payments.purchase",
    "payments.charge",
    "payments.record",
    "auth.verify_session",
    "users.get_profile",
    "notifications.deliver",
];

struct Traced {
    base_url: String,
    extsim: Extsim,
    handle: Handle,
    receiver: Receiver,
    _server: Running<Handle>,
    _thread: ProcessThread,
}

impl Target for Traced {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn extsim_url(&self) -> &str {
        &self.extsim.url
    }
    async fn settle(&self) {
        self.handle.process_pending().await.expect("deliver pending events");
    }
}

async fn traced_monolith(mode: NotificationMode) -> Traced {
    let (receiver, addr) = Receiver::start().await.expect("start the OTLP receiver");
    let extsim = archlab_testkit::extsim().await;
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: None,
        database: archlab_testkit::fresh_database_name("mono"),
        db: DatabaseArgs { database_url: archlab_testkit::database_url().await, db_max_connections: 5 },
        external: ExternalArgs { extsim_url: extsim.url.clone(), external_timeout_ms: 5_000 },
        sessions: SessionArgs { redis_url: None, session_ttl_secs: 3_600 },
        behaviour: BehaviourArgs { notification_mode: mode, outbox_poll_ms: 1_000, faults: String::new() },
        limits: AbuseArgs::default(),
        reconcile: ReconcileArgs::default(),
    };
    let (server, thread) = traced::spawn::<App>(config, &format!("http://{addr}")).await.expect("build the monolith");
    Traced {
        base_url: server.addrs.http_url(),
        extsim,
        handle: server.handle.clone(),
        receiver,
        _server: server,
        _thread: thread,
    }
}

/// One purchase by a new user: its status, body and the trace id of its `traceparent` header.
async fn purchase(app: &Traced) -> (u16, serde_json::Value, String) {
    let user = Api::new(app).new_user().await;
    purchase_by(app, &user).await
}

/// One purchase by `user`.
async fn purchase_by(app: &Traced, user: &User) -> (u16, serde_json::Value, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/payments", app.base_url))
        .bearer_auth(&user.token)
        .header("Idempotency-Key", unique_key())
        .json(&json!({"amount_cents": 1200, "currency": "EUR"}))
        .send()
        .await
        .expect("the monolith answers");
    let status = response.status().as_u16();
    let traceparent = response.headers().get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let traceparent = traceparent.unwrap_or_else(|| panic!("a {status} answer without traceparent"));
    let trace_id = traceparent.split('-').nth(1).expect("00-<trace id>-<span id>-<flags>").to_owned();
    assert_eq!(trace_id.len(), 32, "{traceparent}");
    (status, response.json().await.expect("a JSON body"), trace_id)
}

fn listing(spans: &[SpanRecord]) -> String {
    spans.iter().map(|s| format!("  {} {} <- {:?}", s.name, s.span_id, s.parent_span_id)).collect::<Vec<_>>().join("\n")
}

fn no_orphans(spans: &[SpanRecord]) -> bool {
    spans.iter().filter_map(|s| s.parent_span_id.as_ref()).all(|p| spans.iter().any(|s| &s.span_id == p))
}

/// Wait for the trace to hold every name of `expected` and no orphan; then check it is one
/// tree, in one process.
async fn complete_trace(receiver: &Receiver, trace_id: &str, expected: &[&str]) -> Vec<SpanRecord> {
    let ready = |spans: &[SpanRecord]| {
        let trace: Vec<SpanRecord> = spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        expected.iter().all(|name| trace.iter().any(|s| s.name == *name)) && no_orphans(&trace)
    };
    receiver.wait_for(ARRIVAL, ready).await;
    let trace = receiver.trace(trace_id);
    for name in expected {
        assert!(trace.iter().any(|s| s.name == *name), "trace {trace_id} lacks {name}:\n{}", listing(&trace));
    }
    assert!(no_orphans(&trace), "orphans:\n{}", listing(&trace));
    let roots: Vec<&SpanRecord> = trace.iter().filter(|s| s.is_root()).collect();
    assert_eq!(roots.len(), 1, "one root:\n{}", listing(&trace));
    assert_eq!(roots[0].name, "POST /api/payments");
    assert!(trace.iter().all(|s| s.service_name == MONOLITH.name), "one process: {:?}", trace[0].service_name);
    // In-process: no RPC or broker span anywhere in the tree.
    assert!(trace.iter().all(|s| !s.attributes.contains_key("rpc.system")), "{}", listing(&trace));
    trace
}

#[tokio::test]
async fn a_sync_purchase_shows_the_same_logical_steps_in_one_process() {
    let app = traced_monolith(NotificationMode::Sync).await;
    let (status, body, trace_id) = purchase(&app).await;
    assert_eq!(status, 201, "{body}");
    complete_trace(&app.receiver, &trace_id, &STEPS).await;
}

#[tokio::test]
async fn an_async_purchase_continues_its_trace_through_the_outbox_worker() {
    let app = traced_monolith(NotificationMode::Async).await;
    let (status, body, trace_id) = purchase(&app).await;
    assert_eq!(status, 201, "{body}");
    let mut expected = STEPS.to_vec();
    expected.push("outbox.deliver");
    let trace = complete_trace(&app.receiver, &trace_id, &expected).await;
    let outbox = trace.iter().find(|s| s.name == "outbox.deliver").expect("checked above");
    let deliver = trace.iter().find(|s| s.name == "notifications.deliver").expect("checked above");
    let record = trace.iter().find(|s| s.name == "payments.record").expect("checked above");
    assert_eq!(deliver.parent_span_id.as_deref(), Some(outbox.span_id.as_str()), "{}", listing(&trace));
    assert_eq!(outbox.parent_span_id.as_deref(), Some(record.span_id.as_str()), "{}", listing(&trace));
}

/// In one process a module cannot go down on its own; what can is its dependency. With the
/// email provider failing every request, notifications fails, and the purchase with it.
#[tokio::test]
async fn a_purchase_failed_by_notifications_down_answers_the_trace_that_shows_the_failing_span() {
    let app = traced_monolith(NotificationMode::Sync).await;
    // Signed up first: in sync mode the welcome email is part of the signup.
    let user = Api::new(&app).new_user().await;
    let down = SimConfigPatch::default().with_email(BehaviourPatch::default().with_failure_rate(1.0));
    app.extsim.client.set_config(&down).await.expect("set the email provider down");
    let (status, body, trace_id) = purchase_by(&app, &user).await;
    assert!(status >= 500, "the purchase fails ({status}: {body})");
    assert_eq!(body["error"]["trace_id"].as_str(), Some(trace_id.as_str()), "the body names the header's trace");
    let mut expected = STEPS.to_vec();
    expected.push("email.send");
    let trace = complete_trace(&app.receiver, &trace_id, &expected).await;
    let failed = trace.iter().find(|s| s.name == "email.send").expect("checked above");
    assert_eq!(failed.kind, "client", "{failed:?}");
    assert!(failed.status_error, "the failed call to the provider has error status: {failed:?}");
    let deliver = trace.iter().find(|s| s.name == "notifications.deliver").expect("checked above");
    assert_eq!(failed.parent_span_id.as_deref(), Some(deliver.span_id.as_str()), "{}", listing(&trace));
    assert!(deliver.status_error, "the failing step has error status: {deliver:?}");
    let purchase = trace.iter().find(|s| s.name == "payments.purchase").expect("checked above");
    assert!(purchase.status_error, "the purchase step failed too: {purchase:?}");
    let root = trace.iter().find(|s| s.is_root()).expect("checked above");
    assert!(root.status_error, "a 5xx marks the root span: {root:?}");
}
