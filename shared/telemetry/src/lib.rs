//! Process set-up shared by every binary: telemetry (`let _guard = archlab_telemetry::init("monolith");`),
//! the [`shutdown_signal`] every server runs until, and [`serve`], the whole `main` of every
//! [`Server`].
//!
//! [`init`] installs a `tracing` subscriber with two layers: log lines on stderr, filtered by
//! `RUST_LOG` (default `info`, the SDK's own narration at `warn`), and a
//! `tracing-opentelemetry` layer that turns spans into OpenTelemetry spans. It installs the
//! W3C `TraceContextPropagator` globally, so `archlab_kernel::trace` can carry the context
//! across every boundary.
//!
//! - With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans
//!   leave through an OTLP/gRPC batch exporter; the standard variables are honoured
//!   (`OTEL_SERVICE_NAME` overrides the name given to [`init`], `OTEL_TRACES_SAMPLER` and
//!   `OTEL_TRACES_SAMPLER_ARG`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`).
//! - Without it there is still a tracer provider, with no processor at all: spans get trace
//!   ids (every response names its trace) but nothing is queued, exported or waited for, and
//!   only the spans at a process boundary are built (`info` level); the spans inside one
//!   (`debug`: domain operations, `db.query`) are built only when exporting (`otel_filter`).
//!
//! The batch queue is sized for sampling at 1.0 under the lab's loads (see [`MAX_QUEUE_SIZE`]),
//! and what it drops is counted, never lost silently: [`span_counts`], logged once when the
//! [`Guard`] shuts the provider down, and shown on the process's `/metrics` as
//! `archlab_spans_total` while it runs.

use anyhow::Context as _;
use archlab_kernel::Server;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// Spans the batch processor holds before it drops new ones: 65,536.
///
/// One purchase makes about 30 spans across the microservices (27 in the sync gRPC purchase
/// of `microservices/system-tests/tests/it/traces.rs`). Sized for a design ceiling of 1,000
/// purchases/s, that is 30,000 spans/s in the busiest process at worst. The exporter drains
/// a batch every [`SCHEDULED_DELAY`] (or as soon as [`MAX_EXPORT_BATCH_SIZE`] wait), so the
/// queue must absorb an export's round trip plus a stall of the receiver: 65,536 spans is
/// two seconds of that, at most about 64 MiB held at 1 KiB a span. The SDK default (2,048)
/// would overflow within 70 ms of a stalled receiver at that rate.
pub const MAX_QUEUE_SIZE: usize = 65_536;

/// Spans per OTLP export request: 2,048 (the default is 512). At 30,000 spans/s that is 15
/// requests a second instead of 60, each under 2 MiB, below tonic's 4 MiB message limit.
pub const MAX_EXPORT_BATCH_SIZE: usize = 2_048;

/// How long a span may wait in the queue before its batch leaves: 1 s (the SDK's 5 s makes a
/// person looking at a trace wait for it).
pub const SCHEDULED_DELAY: Duration = Duration::from_secs(1);

/// What happened to the spans this process ended: the lab reports a dropped span, it never
/// loses one silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpanCounts {
    /// Spans ended and handed to the batch processor (sampled ones only).
    pub ended: u64,
    /// Spans the receiver accepted.
    pub exported: u64,
    /// Spans in export requests that failed (receiver down, timeout).
    pub export_failed: u64,
}

impl SpanCounts {
    /// Ended but neither exported nor failed: dropped on a full queue, or still queued.
    /// After the [`Guard`] has shut the provider down, nothing is queued and this is the
    /// number dropped.
    pub fn dropped(&self) -> u64 {
        self.ended.saturating_sub(self.exported + self.export_failed)
    }
}

#[derive(Debug, Default)]
struct Counters {
    ended: AtomicU64,
    exported: AtomicU64,
    export_failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SpanCounts {
        SpanCounts {
            ended: self.ended.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            export_failed: self.export_failed.load(Ordering::Relaxed),
        }
    }
}

/// The counters of the pipeline [`init`] installed.
static PROCESS_COUNTERS: OnceLock<Arc<Counters>> = OnceLock::new();

/// What this process's spans became so far (all zero without an exporter).
pub fn span_counts() -> SpanCounts {
    PROCESS_COUNTERS.get().map(|c| c.snapshot()).unwrap_or_default()
}

/// Counts the spans the wrapped (batch) processor is handed.
#[derive(Debug)]
struct CountEnded<P> {
    inner: P,
    counters: Arc<Counters>,
}

impl<P: SpanProcessor> SpanProcessor for CountEnded<P> {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::Relaxed);
        self.inner.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts the spans the wrapped exporter delivered or failed to.
#[derive(Debug)]
struct CountExported<E> {
    inner: E,
    counters: Arc<Counters>,
}

impl<E: SpanExporter> SpanExporter for CountExported<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let n = batch.len() as u64;
        let counters = self.counters.clone();
        let exported = self.inner.export(batch);
        async move {
            let result = exported.await;
            let counter = if result.is_ok() { &counters.exported } else { &counters.export_failed };
            counter.fetch_add(n, Ordering::Relaxed);
            result
        }
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Where one pipeline's spans go.
#[derive(Debug, Clone)]
pub enum Export {
    /// Nowhere: trace ids only.
    None,
    /// OTLP/gRPC to the endpoint the standard `OTEL_EXPORTER_OTLP_*` variables name.
    FromEnv,
    /// OTLP/gRPC to this endpoint (`http://127.0.0.1:4317`).
    To(String),
}

impl Export {
    /// [`Export::FromEnv`] when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and not empty, else [`Export::None`].
    pub fn from_env() -> Self {
        let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        match set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            true => Export::FromEnv,
            false => Export::None,
        }
    }
}

/// Keeps telemetry alive; dropping it flushes what is queued and shuts the provider down.
#[must_use = "dropping the guard ends telemetry"]
pub struct Guard {
    /// The service name spans are attributed to.
    pub service_name: String,
    provider: Option<SdkTracerProvider>,
    counters: Arc<Counters>,
    exporting: bool,
}

impl Guard {
    /// What this guard's pipeline did with its spans so far.
    pub fn span_counts(&self) -> SpanCounts {
        self.counters.snapshot()
    }

    /// Flush and shut down from async code, without blocking a runtime thread (the batch
    /// flush needs the runtime the exporter was built in); returns the final counts.
    pub async fn shutdown(mut self) -> SpanCounts {
        if let Some(provider) = self.provider.take() {
            let (counters, name, exporting) = (self.counters.clone(), self.service_name.clone(), self.exporting);
            let _ = tokio::task::spawn_blocking(move || finish(provider, &counters, &name, exporting)).await;
        }
        self.counters.snapshot()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else { return };
        let (counters, name, exporting) = (self.counters.clone(), self.service_name.clone(), self.exporting);
        let shut = move || finish(provider, &counters, &name, exporting);
        // The flush needs the runtime's other threads (tonic's connection tasks) to run while
        // this one waits: hand this worker's tasks away when it is a multi-thread worker,
        // else wait on a thread of its own.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(shut),
            _ => {
                let _ = std::thread::spawn(shut).join();
            }
        }
    }
}

/// Shut `provider` down (flushing its queue) and say, once, what became of its spans.
fn finish(provider: SdkTracerProvider, counters: &Counters, service_name: &str, exporting: bool) {
    let shut = provider.shutdown();
    if !exporting {
        return;
    }
    let counts = counters.snapshot();
    if let Err(e) = shut {
        tracing::warn!(error = %e, "telemetry shutdown incomplete");
    }
    if counts.dropped() > 0 || counts.export_failed > 0 {
        tracing::warn!(
            service = service_name,
            ended = counts.ended,
            exported = counts.exported,
            export_failed = counts.export_failed,
            dropped = counts.dropped(),
            "spans lost"
        );
    } else {
        tracing::info!(service = service_name, ended = counts.ended, exported = counts.exported, "spans exported");
    }
}

/// A tracer provider for `service_name` exporting as `export` says, with its counters.
/// `name_wins` makes `service_name` override `OTEL_SERVICE_NAME` (tests naming processes).
fn provider(
    service_name: &str,
    export: &Export,
    name_wins: bool,
) -> anyhow::Result<(SdkTracerProvider, Arc<Counters>)> {
    let counters = Arc::new(Counters::default());
    // `Resource::builder` reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let env_name = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty());
    let mut resource = Resource::builder();
    if name_wins || !env_name {
        resource = resource.with_service_name(service_name.to_owned());
    }
    // The builder's default sampler reads OTEL_TRACES_SAMPLER(_ARG); unset, parent-based always-on.
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    let exporter = match export {
        Export::None => None,
        Export::FromEnv => Some(opentelemetry_otlp::SpanExporter::builder().with_tonic().build()),
        Export::To(endpoint) => {
            Some(opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build())
        }
    };
    if let Some(exporter) = exporter {
        let exporter =
            CountExported { inner: exporter.context("building the OTLP exporter")?, counters: counters.clone() };
        let set = |name: &str| std::env::var_os(name).is_some();
        let mut config = BatchConfigBuilder::default();
        if !set("OTEL_BSP_MAX_QUEUE_SIZE") {
            config = config.with_max_queue_size(MAX_QUEUE_SIZE);
        }
        if !set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            config = config.with_max_export_batch_size(MAX_EXPORT_BATCH_SIZE);
        }
        if !set("OTEL_BSP_SCHEDULE_DELAY") {
            config = config.with_scheduled_delay(SCHEDULED_DELAY);
        }
        let batch = BatchSpanProcessor::builder(exporter).with_batch_config(config.build()).build();
        builder = builder.with_span_processor(CountEnded { inner: batch, counters: counters.clone() });
    }
    Ok((builder.build(), counters))
}

/// Which spans reach OpenTelemetry, never the exporter's own transport (h2, hyper, tonic,
/// tower), which would trace its own traffic.
///
/// Spans at a process boundary (server, client, producer, consumer) are at `info`: they carry
/// the trace id every response names and the context every outgoing call injects, so they
/// are built always. Spans inside a process (domain operations such as `users.get_profile`,
/// and `db.query`) are at `debug`, and reach OpenTelemetry only when `exporting`: without an
/// exporter nobody can see them, and a span that no layer wants costs next to nothing, where
/// a built one costs thousands of instructions (docs/benchmarks.md, "Monolith vs baseline").
fn otel_filter(exporting: bool) -> Targets {
    let ours = if exporting { LevelFilter::DEBUG } else { LevelFilter::INFO };
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("archlab", ours)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
}

/// A subscriber for `service_name` (stderr logs + OpenTelemetry) and the guard of its
/// provider, without installing either: for a test that runs each server of a topology on
/// its own thread under its own `service.name` (set it with `tracing::dispatcher::set_default`).
/// `service_name` wins over `OTEL_SERVICE_NAME` here.
pub fn dispatch(service_name: &str, export: Export) -> anyhow::Result<(tracing::Dispatch, Guard)> {
    install_propagator();
    let (provider, counters) = provider(service_name, &export, true)?;
    let exporting = !matches!(export, Export::None);
    let dispatch = tracing::Dispatch::new(subscriber(&provider, exporting));
    Ok((dispatch, Guard { service_name: service_name.to_owned(), provider: Some(provider), counters, exporting }))
}

fn subscriber(provider: &SdkTracerProvider, exporting: bool) -> impl tracing::Subscriber + Send + Sync + 'static {
    // The SDK narrates its own set-up at info level; a person reading the logs wants its warnings.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn"));
    // Colour only for a person at a terminal; piped logs (the harness, CI) stay plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // Each span carries what the lab reads and no more. The layer's defaults add eight
    // attributes to every span (thread id and name, target, busy and idle time, which takes
    // two clock reads on every poll, and the code location: span names already say where),
    // and exporting them was most of what tracing cost per request (docs/traces.md,
    // "Overhead"). No context activation either: nothing in the lab reads
    // `opentelemetry::Context::current()`; every context is read from the tracing span
    // (`archlab_kernel::trace`), so activating one on every poll of every instrumented
    // future would be work for nobody.
    let otel = tracing_opentelemetry::layer()
        .with_context_activation(false)
        .with_tracer(provider.tracer("archlab"))
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_location(false)
        .with_filter(otel_filter(exporting));
    tracing_subscriber::registry().with(fmt).with(otel)
}

fn install_propagator() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    });
}

/// Install the process-wide subscriber and tracer provider for `service_name`, exporting
/// when the `OTEL_EXPORTER_OTLP_*` variables ask for it (a second call is a no-op, so tests
/// may call it freely). Call it inside the tokio runtime: the OTLP exporter is built there.
pub fn init(service_name: &str) -> Guard {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let mut guard = Guard {
        service_name: service_name.to_owned(),
        provider: None,
        counters: Arc::new(Counters::default()),
        exporting: false,
    };
    if INSTALLED.set(()).is_err() {
        return guard;
    }
    install_propagator();
    let mut export = Export::from_env();
    let (provider, counters) = match provider(service_name, &export, false) {
        Ok(built) => built,
        Err(e) => {
            // Telemetry never stops a process: log it and run with trace ids only.
            eprintln!("telemetry: {e:#}; spans will not be exported");
            export = Export::None;
            match provider(service_name, &export, false) {
                Ok(built) => built,
                Err(_) => return guard,
            }
        }
    };
    let exporting = !matches!(export, Export::None) && PROCESS_COUNTERS.set(counters.clone()).is_ok();
    if exporting {
        archlab_kernel::metrics::report_spans_with(|| {
            let counts = span_counts();
            archlab_kernel::metrics::SpanTotals {
                ended: counts.ended,
                exported: counts.exported,
                export_failed: counts.export_failed,
            }
        });
    }
    let _ = tracing::subscriber::set_global_default(subscriber(&provider, exporting));
    opentelemetry::global::set_tracer_provider(provider.clone());
    guard.provider = Some(provider);
    guard.counters = counters;
    guard.exporting = exporting;
    guard
}

/// Completes on Ctrl-C or SIGTERM: the shutdown future every binary serves until.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The whole life of a server process: read its config, start telemetry, build, say where it
/// listens, serve until Ctrl-C or SIGTERM, flush its spans. Every binary's `main` is this one call.
pub async fn serve<S: Server>() -> anyhow::Result<()> {
    let config = <S::Config as clap::Parser>::parse();
    let telemetry = init(S::NAME);
    let server = S::build(config).await.with_context(|| format!("starting {}", S::NAME))?;
    tracing::info!(addrs = %server.addrs(), "{} ready", S::NAME);
    let served = server.run_until_stopped(shutdown_signal()).await;
    // Flushed while the runtime still runs (the exporter's connection lives on it).
    telemetry.shutdown().await;
    served
}
