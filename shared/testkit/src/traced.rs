//! A server running as if it were its own process, for tests that look at its spans.
//!
//! In-process tests start every server of a topology in one process, where one global
//! subscriber and tracer provider would put every span under one `service.name`. [`spawn`]
//! gives a server what its binary has: a thread and a tokio runtime of its own, and on
//! every thread of that runtime (blocking pool included) a subscriber and tracer provider
//! of its own (`archlab_telemetry::dispatch`), whose resource names the process and whose
//! exporter sends to the test's OTLP receiver. Only the address space is shared.

use archlab_kernel::Server;
use archlab_kernel::server::{self, Running};
use std::sync::{Arc, OnceLock};
use tokio::sync::oneshot;

/// Keeps a [`spawn`]ed server's thread alive; dropping it lets the thread flush its spans
/// and end (stop the server itself with [`Running::stop`] or by dropping it).
pub struct ProcessThread {
    _close: oneshot::Sender<()>,
}

/// Build `S` from `config` on a thread and runtime of its own, its spans attributed to
/// `S::NAME` and exported over OTLP/gRPC to `otlp_endpoint` (`http://127.0.0.1:<port>`).
pub async fn spawn<S: Server>(
    config: S::Config,
    otlp_endpoint: &str,
) -> anyhow::Result<(Running<S::Handle>, ProcessThread)>
where
    S::Config: 'static,
{
    let (ready_tx, ready_rx) = oneshot::channel();
    let (close_tx, close_rx) = oneshot::channel::<()>();
    let endpoint = otlp_endpoint.to_owned();
    std::thread::Builder::new().name(S::NAME.to_owned()).spawn(move || {
        let slot: Arc<OnceLock<tracing::Dispatch>> = Arc::default();
        let for_threads = slot.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_start(move || {
                if let Some(dispatch) = for_threads.get() {
                    // Lives as long as the thread: the runtime's threads never change process.
                    std::mem::forget(tracing::dispatcher::set_default(dispatch));
                }
            })
            .build();
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready_tx.send(Err(anyhow::Error::from(e)));
                return;
            }
        };
        // The OTLP exporter's channel is built inside the runtime that carries it.
        let telemetry = {
            let _inside = runtime.enter();
            archlab_telemetry::dispatch(S::NAME, archlab_telemetry::Export::To(endpoint))
        };
        let (dispatch, guard) = match telemetry {
            Ok(built) => built,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let _ = slot.set(dispatch.clone());
        let _default = tracing::dispatcher::set_default(&dispatch);
        runtime.block_on(async move {
            let _ = ready_tx.send(server::spawn::<S>(config).await);
            let _ = close_rx.await;
            guard.shutdown().await;
        });
    })?;
    let running = ready_rx.await??;
    Ok((running, ProcessThread { _close: close_tx }))
}
