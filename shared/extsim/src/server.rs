//! Putting it together: the router, binding, and serving until told to stop.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::Error;
use crate::state::AppState;
use crate::{admin, charges, emails};

/// Every route of the simulator over `state`; tests can `oneshot` it.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(charges::router())
        .merge(emails::router())
        .merge(admin::router())
        .fallback(|| async { Error::NotFound })
        .with_state(state)
}

/// A simulator bound to its address, ready to serve.
pub struct ExtSim {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
}

impl ExtSim {
    /// Binds `config.addr` (port 0 picks a free port) and opens the log directory, if any.
    pub async fn build(config: Config) -> anyhow::Result<ExtSim> {
        let state = match &config.log_dir {
            Some(dir) => {
                AppState::new(Some(dir)).with_context(|| format!("opening the log directory {}", dir.display()))?
            }
            None => AppState::default(),
        };
        let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        let local_addr = listener.local_addr().context("reading the bound address")?;
        Ok(ExtSim { listener, local_addr, state })
    }

    /// The address actually bound (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr, "extsim listening");
        axum::serve(self.listener, app(self.state)).with_graceful_shutdown(shutdown).await.context("serving HTTP")
    }
}

/// Starts an in-memory simulator on `127.0.0.1:0` in the background, for other crates'
/// tests; abort the handle to stop it.
pub async fn spawn_local() -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let sim = ExtSim::build(Config { addr: (Ipv4Addr::LOCALHOST, 0).into(), log_dir: None }).await?;
    let addr = sim.local_addr();
    let handle = tokio::spawn(async move {
        if let Err(error) = sim.run_until_stopped(std::future::pending()).await {
            tracing::error!(error = format!("{error:#}"), "extsim stopped");
        }
    });
    Ok((addr, handle))
}
