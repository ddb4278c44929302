//! Send two demonstration traces over OTLP/gRPC, shaped like one purchase in each build
//! (the monolith, then gateway → services → extsim), through the real OpenTelemetry SDK
//! exporter. Durations are made up and fixed, so screenshots are reproducible; the spans'
//! names and attributes follow the services' conventions. Used by
//! `deploy/local/screenshot-trace.sh`; real traces come from running the builds with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set.
//!
//! `cargo run --release -p archlab-traces --example demo-trace -- http://127.0.0.1:4317`

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// One span to send: key, parent key, service, kind, name, start and end (µs after the
/// trace starts), error message, attributes.
type Step = (
    &'static str,
    &'static str,
    &'static str,
    SpanKind,
    &'static str,
    u64,
    u64,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const DB_SELECT: &[(&str, &str)] = &[("db.system", "postgresql"), ("db.operation.name", "SELECT")];
const DB_INSERT: &[(&str, &str)] = &[("db.system", "postgresql"), ("db.operation.name", "INSERT")];
const ROUTE: &[(&str, &str)] = &[("http.request.method", "POST"), ("http.route", "/api/payments")];
const GRPC: &[(&str, &str)] = &[("rpc.system", "grpc")];
const EMAIL_503: &str = "extsim answered 503 to POST /emails";

const MONOLITH: &[Step] = &[
    ("root", "", "monolith", SpanKind::Server, "POST /api/payments", 0, 5200, EMAIL_503, ROUTE),
    ("auth", "root", "monolith", SpanKind::Internal, "auth.verify_session", 100, 600, "", &[]),
    ("auth_db", "auth", "monolith", SpanKind::Client, "SELECT auth.sessions", 150, 550, "", DB_SELECT),
    ("purchase", "root", "monolith", SpanKind::Internal, "payments.purchase", 700, 5100, EMAIL_503, &[]),
    ("users", "purchase", "monolith", SpanKind::Internal, "users.get_profile", 750, 1150, "", &[]),
    ("users_db", "users", "monolith", SpanKind::Client, "SELECT users.profiles", 780, 1100, "", DB_SELECT),
    ("charge", "purchase", "monolith", SpanKind::Internal, "payments.charge", 1200, 3900, "", &[]),
    ("charge_http", "charge", "monolith", SpanKind::Client, "POST /charges", 1250, 3850, "", &[]),
    ("charge_sim", "charge_http", "extsim", SpanKind::Server, "POST /charges", 1350, 3700, "", &[]),
    ("record", "purchase", "monolith", SpanKind::Internal, "payments.record", 3950, 4500, "", &[]),
    ("record_db", "record", "monolith", SpanKind::Client, "INSERT payments.payments", 4000, 4450, "", DB_INSERT),
    ("notify", "purchase", "monolith", SpanKind::Internal, "notifications.deliver", 4550, 5050, EMAIL_503, &[]),
    ("email_http", "notify", "monolith", SpanKind::Client, "POST /emails", 4600, 5000, EMAIL_503, &[]),
    ("email_sim", "email_http", "extsim", SpanKind::Server, "POST /emails", 4680, 4900, "fault injected: 503", &[]),
];

const MICRO: &[Step] = &[
    ("root", "", "gateway", SpanKind::Server, "POST /api/payments", 0, 9800, EMAIL_503, ROUTE),
    ("auth_rpc", "root", "gateway", SpanKind::Client, "auth.Auth/VerifySession", 150, 1350, "", GRPC),
    ("auth_srv", "auth_rpc", "auth-service", SpanKind::Server, "auth.Auth/VerifySession", 420, 1100, "", GRPC),
    ("auth", "auth_srv", "auth-service", SpanKind::Internal, "auth.verify_session", 450, 1050, "", &[]),
    ("auth_db", "auth", "auth-service", SpanKind::Client, "SELECT auth.sessions", 500, 950, "", DB_SELECT),
    ("pay_rpc", "root", "gateway", SpanKind::Client, "payments.Payments/Purchase", 1450, 9600, EMAIL_503, GRPC),
    (
        "pay_srv",
        "pay_rpc",
        "payments-service",
        SpanKind::Server,
        "payments.Payments/Purchase",
        1700,
        9350,
        EMAIL_503,
        GRPC,
    ),
    ("purchase", "pay_srv", "payments-service", SpanKind::Internal, "payments.purchase", 1720, 9300, EMAIL_503, &[]),
    ("users_rpc", "purchase", "payments-service", SpanKind::Client, "users.Users/GetProfile", 1800, 2900, "", GRPC),
    ("users_srv", "users_rpc", "users-service", SpanKind::Server, "users.Users/GetProfile", 2050, 2650, "", GRPC),
    ("users", "users_srv", "users-service", SpanKind::Internal, "users.get_profile", 2070, 2600, "", &[]),
    ("users_db", "users", "users-service", SpanKind::Client, "SELECT users.profiles", 2100, 2500, "", DB_SELECT),
    ("charge", "purchase", "payments-service", SpanKind::Internal, "payments.charge", 2950, 6300, "", &[]),
    ("charge_http", "charge", "payments-service", SpanKind::Client, "POST /charges", 3000, 6200, "", &[]),
    ("charge_sim", "charge_http", "extsim", SpanKind::Server, "POST /charges", 3150, 6000, "", &[]),
    ("record", "purchase", "payments-service", SpanKind::Internal, "payments.record", 6350, 7400, "", &[]),
    (
        "record_db",
        "record",
        "payments-service",
        SpanKind::Client,
        "INSERT payments.payments",
        6400,
        7300,
        "",
        DB_INSERT,
    ),
    (
        "notify_rpc",
        "purchase",
        "payments-service",
        SpanKind::Client,
        "notifications.Notifications/Deliver",
        7450,
        9200,
        EMAIL_503,
        GRPC,
    ),
    (
        "notify_srv",
        "notify_rpc",
        "notifications-service",
        SpanKind::Server,
        "notifications.Notifications/Deliver",
        7700,
        8950,
        EMAIL_503,
        GRPC,
    ),
    (
        "notify",
        "notify_srv",
        "notifications-service",
        SpanKind::Internal,
        "notifications.deliver",
        7720,
        8900,
        EMAIL_503,
        &[],
    ),
    ("email_http", "notify", "notifications-service", SpanKind::Client, "POST /emails", 7800, 8800, EMAIL_503, &[]),
    ("email_sim", "email_http", "extsim", SpanKind::Server, "POST /emails", 7900, 8700, "fault injected: 503", &[]),
];

/// Send `steps` as one trace starting at `base`; tracers are looked up by service.
fn send(steps: &[Step], base: SystemTime, tracers: &HashMap<&str, SdkTracer>) -> anyhow::Result<String> {
    let mut contexts: HashMap<&str, Context> = HashMap::new();
    let mut trace_id = String::new();
    for (key, parent, service, kind, name, start, end, error, attributes) in steps {
        let tracer = tracers.get(service).ok_or_else(|| anyhow::anyhow!("no tracer for {service}"))?;
        let parent_cx = contexts.get(parent).cloned().unwrap_or_default();
        let mut span = tracer
            .span_builder(*name)
            .with_kind(kind.clone())
            .with_start_time(base + Duration::from_micros(*start))
            .with_attributes(attributes.iter().map(|(k, v)| KeyValue::new(*k, *v)))
            .start_with_context(tracer, &parent_cx);
        if !error.is_empty() {
            span.set_status(Status::error(*error));
        }
        let span_context = span.span_context().clone();
        span.end_with_timestamp(base + Duration::from_micros(*end));
        trace_id = span_context.trace_id().to_string();
        contexts.insert(key, Context::new().with_remote_span_context(span_context));
    }
    Ok(trace_id)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:4317".to_owned());
    let services =
        ["monolith", "gateway", "auth-service", "users-service", "payments-service", "notifications-service", "extsim"];
    let mut providers = Vec::new();
    let mut tracers = HashMap::new();
    for service in services {
        let exporter = SpanExporter::builder().with_tonic().with_endpoint(&endpoint).build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder_empty().with_service_name(service).build())
            .build();
        tracers.insert(service, provider.tracer("archlab-demo"));
        providers.push(provider);
    }
    let base = SystemTime::now();
    let monolith = send(MONOLITH, base, &tracers)?;
    let micro = send(MICRO, base + Duration::from_millis(50), &tracers)?;
    for provider in providers {
        tokio::task::spawn_blocking(move || provider.shutdown()).await??;
    }
    println!("monolith {monolith}\nmicro {micro}");
    Ok(())
}
