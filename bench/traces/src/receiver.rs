//! The OTLP/gRPC receiver: `opentelemetry-proto`'s generated `TraceService`, backed by a
//! [`Store`], with an optional JSON-lines file that every span is appended to.
//!
//! Tests start one on `127.0.0.1:0` with [`Receiver::start`] and wait on it with
//! [`Receiver::wait_for`], which wakes on every insert instead of polling.

use crate::span::{self, SpanRecord};
use crate::store::{Store, StoreStats};
use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// The span bound [`Receiver::start`] uses.
pub const DEFAULT_KEEP: usize = 100_000;

/// The largest export request accepted (the SDK's batches are far smaller).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A handle to a running receiver and its store. Clones share both; the server stops when
/// the last clone is dropped or on [`Receiver::stop`].
#[derive(Clone, Debug)]
pub struct Receiver {
    shared: Arc<Shared>,
    stopper: Arc<Stopper>,
}

/// What the gRPC service and the handles share.
#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    /// Bumped on every insert; `wait_for` waits on it.
    inserts: watch::Sender<u64>,
    file: Option<Mutex<BufWriter<File>>>,
}

/// Ends the server when dropped (the oneshot sender's drop completes the shutdown future).
#[derive(Debug)]
struct Stopper {
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Receiver {
    /// An OTLP/gRPC receiver on `127.0.0.1:0`, spawned on the current runtime, keeping
    /// [`DEFAULT_KEEP`] spans in memory.
    pub async fn start() -> anyhow::Result<(Receiver, SocketAddr)> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), DEFAULT_KEEP, None).await
    }

    /// A receiver on `addr` keeping at most `keep` spans in memory and, when `file` is given,
    /// appending every span to it as one JSON line. Returns the bound address.
    pub async fn start_on(
        addr: SocketAddr,
        keep: usize,
        file: Option<PathBuf>,
    ) -> anyhow::Result<(Receiver, SocketAddr)> {
        let file = match file {
            Some(path) => {
                let handle = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .with_context(|| format!("opening {} to append spans", path.display()))?;
                Some(Mutex::new(BufWriter::new(handle)))
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the OTLP receiver to {addr}"))?;
        let bound = listener.local_addr().context("reading the OTLP receiver's address")?;
        let shared = Arc::new(Shared { store: Mutex::new(Store::new(keep)), inserts: watch::channel(0).0, file });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(Service { shared: Arc::clone(&shared) })
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!("OTLP receiver on {bound} failed: {error}");
            }
        });
        let stopper = Arc::new(Stopper { stop: Mutex::new(Some(stop_tx)) });
        Ok((Receiver { shared, stopper }, bound))
    }

    /// Stop accepting spans; what is held stays readable.
    pub fn stop(&self) {
        if let Some(stop) = lock(&self.stopper.stop).take() {
            let _ = stop.send(());
        }
    }

    /// Every span held, trace by trace in arrival order.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.store().spans()
    }

    /// The spans of one trace (empty when unknown).
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.store().trace(trace_id)
    }

    /// Trace ids held, newest first.
    pub fn trace_ids(&self) -> Vec<String> {
        self.store().trace_ids_newest_first()
    }

    /// Spans received, held and dropped.
    pub fn stats(&self) -> StoreStats {
        self.store().stats()
    }

    /// Wait until `pred` holds for the spans held, or `timeout` passes; returns the spans
    /// seen last. Wakes on every insert, so there is no polling interval to tune.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[SpanRecord]) -> bool) -> Vec<SpanRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut inserts = self.shared.inserts.subscribe();
        loop {
            // Mark the current version seen before reading, so no insert slips between.
            inserts.borrow_and_update();
            let spans = self.spans();
            if pred(&spans) {
                return spans;
            }
            tokio::select! {
                changed = inserts.changed() => if changed.is_err() { return self.spans() },
                () = tokio::time::sleep_until(deadline) => return self.spans(),
            }
        }
    }

    /// Remove and return every span held (the counters keep counting): how a benchmark
    /// starts each run with an empty store.
    pub fn take(&self) -> Vec<SpanRecord> {
        self.store().take()
    }

    /// Wait until no span has arrived for `quiet`, or `limit` passes; true when it went quiet.
    pub async fn wait_quiet(&self, quiet: Duration, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut inserts = self.shared.inserts.subscribe();
        loop {
            inserts.borrow_and_update();
            tokio::select! {
                changed = inserts.changed() => if changed.is_err() { return true },
                () = tokio::time::sleep(quiet) => return true,
                () = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }

    /// Add spans as if they had been received (used to load a file into the page).
    pub fn insert(&self, spans: Vec<SpanRecord>) {
        self.shared.insert(spans);
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.shared.store)
    }
}

impl Shared {
    fn insert(&self, spans: Vec<SpanRecord>) {
        if spans.is_empty() {
            return;
        }
        if let Some(file) = &self.file {
            let mut file = lock(file);
            let written = spans
                .iter()
                .try_for_each(|span| {
                    serde_json::to_writer(&mut *file, span).map_err(std::io::Error::other)?;
                    file.write_all(b"\n")
                })
                .and_then(|()| file.flush());
            if let Err(error) = written {
                tracing::warn!("appending spans to the trace file failed: {error}");
            }
        }
        let count = spans.len() as u64;
        lock(&self.store).insert(spans);
        self.inserts.send_modify(|n| *n += count);
    }
}

/// A poisoned lock only means another thread panicked mid-insert; the store stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The generated gRPC trait, implemented over the shared store.
struct Service {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.shared.insert(span::from_request(request.get_ref()));
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}
