//! Process set-up shared by every binary: telemetry (`let _guard = archlab_telemetry::init("monolith");`),
//! the [`shutdown_signal`] every server runs until, and [`serve`], the whole `main` of every
//! [`Server`].
//!
//! Today it installs a `tracing` subscriber that prints spans' events to stderr, filtered by
//! `RUST_LOG` (default `info`). Spans are already named `module.operation` the same way in
//! both builds; the OTLP exporter that ships them to Jaeger or `archlab traces` plugs in here
//! behind the returned [`Guard`], whose `Drop` will flush it.

use anyhow::Context;
use archlab_kernel::Server;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Keeps telemetry alive; dropping it flushes whatever is buffered.
#[must_use = "dropping the guard ends telemetry"]
pub struct Guard {
    /// The service name spans are attributed to.
    pub service_name: String,
}

/// Install the process-wide subscriber for `service_name` (a second call is a no-op, so
/// tests may call it freely).
pub fn init(service_name: &str) -> Guard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal; piped logs (the harness, CI) stay plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
    Guard { service_name: service_name.to_owned() }
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
/// listens, serve until Ctrl-C or SIGTERM. Every binary's `main` is this one call.
pub async fn serve<S: Server>() -> anyhow::Result<()> {
    let config = <S::Config as clap::Parser>::parse();
    let _telemetry = init(S::NAME);
    let server = S::build(config).await.with_context(|| format!("starting {}", S::NAME))?;
    tracing::info!(addrs = %server.addrs(), "{} ready", S::NAME);
    server.run_until_stopped(shutdown_signal()).await
}
