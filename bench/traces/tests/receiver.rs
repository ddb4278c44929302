//! The receiver against a real OpenTelemetry SDK exporter: what the services will send is
//! what arrives, ids, parents and `service.name` included.

use archlab_traces::{Receiver, SpanRecord};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::time::Duration;

/// One process's tracer provider exporting to `endpoint` over OTLP/gRPC.
fn provider(endpoint: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder().with_tonic().with_endpoint(endpoint).build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder_empty().with_service_name(service.to_owned()).build())
        .build())
}

/// Flush and shut down off the runtime's worker threads: the batch processor blocks.
async fn shut_down(provider: SdkTracerProvider) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || provider.shutdown()).await??;
    Ok(())
}

fn find<'a>(spans: &'a [SpanRecord], name: &str) -> anyhow::Result<&'a SpanRecord> {
    spans.iter().find(|s| s.name == name).ok_or_else(|| anyhow::anyhow!("no span named {name} in {spans:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_from_an_otlp_exporter_arrive_with_ids_parents_and_service_names() -> anyhow::Result<()> {
    let file = std::env::temp_dir().join(format!("archlab-traces-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let (receiver, addr) = Receiver::start_on(([127, 0, 0, 1], 0).into(), 1000, Some(file.clone())).await?;
    let endpoint = format!("http://{addr}");

    // Two "processes": the gateway's server span and its client call, then the payments
    // service continuing the trace from the (remote) client span, as a propagator would.
    let gateway = provider(&endpoint, "gateway")?;
    let payments = provider(&endpoint, "payments-service")?;
    let tracer = gateway.tracer("gateway-test");
    let remote_tracer = payments.tracer("payments-test");
    let (trace_id, root_id, client_id, server_id) = tracer.in_span("POST /api/payments", |cx| {
        let root = cx.span().span_context().clone();
        let mut client = tracer
            .span_builder("payments.Payments/Charge")
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new("rpc.system", "grpc"), KeyValue::new("attempt", 1_i64)])
            .start_with_context(&tracer, &cx);
        let client_ctx = client.span_context().clone();
        let remote_parent = Context::new().with_remote_span_context(client_ctx.clone());
        let mut server = remote_tracer
            .span_builder("payments.charge")
            .with_kind(SpanKind::Server)
            .start_with_context(&remote_tracer, &remote_parent);
        server.set_status(Status::error("card declined"));
        let server_id = server.span_context().span_id();
        server.end();
        client.end();
        (root.trace_id(), root.span_id(), client_ctx.span_id(), server_id)
    });
    shut_down(gateway).await?;
    shut_down(payments).await?;

    let spans = receiver.wait_for(Duration::from_secs(20), |spans| spans.len() >= 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let trace_hex = trace_id.to_string();
    assert_eq!(trace_hex.len(), 32);
    assert!(spans.iter().all(|s| s.trace_id == trace_hex), "one trace id across both processes: {spans:#?}");

    let root = find(&spans, "POST /api/payments")?;
    assert_eq!(root.span_id, root_id.to_string());
    assert_eq!(root.span_id.len(), 16);
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.service_name, "gateway");
    assert_eq!(root.kind, "internal");
    assert_eq!(root.scope, "gateway-test");

    let client = find(&spans, "payments.Payments/Charge")?;
    assert_eq!(client.span_id, client_id.to_string());
    assert_eq!(client.parent_span_id.as_deref(), Some(root.span_id.as_str()));
    assert_eq!(client.service_name, "gateway");
    assert_eq!(client.kind, "client");
    assert_eq!(client.attributes.get("rpc.system").map(String::as_str), Some("grpc"));
    assert_eq!(client.attributes.get("attempt").map(String::as_str), Some("1"));
    assert!(!client.status_error);

    let server = find(&spans, "payments.charge")?;
    assert_eq!(server.span_id, server_id.to_string());
    assert_eq!(server.parent_span_id.as_deref(), Some(client.span_id.as_str()));
    assert_eq!(server.service_name, "payments-service");
    assert_eq!(server.kind, "server");
    assert!(server.status_error);
    assert_eq!(server.status_message, "card declined");
    assert!(server.start_unix_nanos >= client.start_unix_nanos && server.end_unix_nanos <= client.end_unix_nanos);
    assert_eq!(receiver.trace(&trace_hex).len(), 3);

    // The file holds the same spans, one JSON line each.
    let lines = std::fs::read_to_string(&file)?;
    let from_file: Vec<SpanRecord> = lines.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    let _ = std::fs::remove_file(&file);
    let mut expected = spans.clone();
    let mut got = from_file;
    expected.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    got.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    assert_eq!(got, expected);
    Ok(())
}

#[tokio::test]
async fn wait_for_gives_up_at_the_timeout_with_what_it_saw() -> anyhow::Result<()> {
    let (receiver, _addr) = Receiver::start().await?;
    let spans = receiver.wait_for(Duration::from_millis(50), |spans| !spans.is_empty()).await;
    assert!(spans.is_empty());
    receiver.stop();
    Ok(())
}
