//! Putting it together: the router, binding, and serving until told to stop.

use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use archlab_kernel::processes::EXTSIM;
use archlab_kernel::server::{self, Running};
use archlab_kernel::{Addrs, Server};
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::Error;
use crate::hangup::{self, Connection};
use crate::state::AppState;
use crate::{admin, charges, emails};

/// Every route of the simulator over `state`; tests can `oneshot` it.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(charges::router())
        .merge(emails::router())
        .merge(admin::router())
        .fallback(|| async { Error::NotFound })
        .layer(axum::middleware::from_fn(hangup::drop_marked))
        .with_state(state)
}

/// A simulator bound to its address, ready to serve.
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
}

impl Server for App {
    type Config = Config;
    type Handle = AppState;
    const NAME: &'static str = EXTSIM.name;

    /// Binds `config.addr` (port 0 picks a free port) and opens the log directory, if any.
    async fn build(config: Config) -> anyhow::Result<App> {
        let state = match &config.log_dir {
            Some(dir) => {
                AppState::new(Some(dir)).with_context(|| format!("opening the log directory {}", dir.display()))?
            }
            None => AppState::default(),
        };
        let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        let local_addr = listener.local_addr().context("reading the bound address")?;
        Ok(App { listener, local_addr, state })
    }

    fn addrs(&self) -> Addrs {
        Addrs::http(self.local_addr)
    }

    /// The knobs and the two logs every handler shares.
    fn handle(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight. Each
    /// connection is reachable from its requests, so a reply can be lost (`hangup.rs`).
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let service = app(self.state).into_make_service_with_connect_info::<Connection>();
        axum::serve(hangup::Listener(self.listener), service)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")
    }
}

/// An in-memory simulator on `127.0.0.1:0`, running as a task until the returned value is
/// stopped or dropped: what other crates' tests start.
pub async fn spawn_local() -> anyhow::Result<Running<AppState>> {
    server::spawn::<App>(Config { addr: (Ipv4Addr::LOCALHOST, 0).into(), log_dir: None }).await
}
