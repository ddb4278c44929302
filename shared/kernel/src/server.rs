//! The one shape of every archlab process: build from config → a handle with its addresses →
//! run until a shutdown signal.
//!
//! The monolith, the gateway, the four services and extsim all implement [`Server`], so a
//! reader learns it once, every `main.rs` is the same three lines
//! (`archlab_telemetry::serve::<App>()`), and tests start any of them the same way, as a
//! task ([`spawn`]).

use std::fmt;
use std::net::SocketAddr;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An archlab process.
///
/// `build` does everything that can fail at start-up — connect, create and migrate its
/// database, wire the ports, bind every listener (port 0 allowed) — and serves nothing yet,
/// so the caller can read the bound addresses and the [`Server::Handle`] first.
/// `run_until_stopped` serves, and runs every background task (outbox workers, relays, the
/// broker consumer, recovery loops), for exactly as long as the process lives: until
/// `shutdown` completes or one of them fails, after which all of them are stopped and
/// awaited before it returns.
pub trait Server: Sized + Send + 'static {
    /// Its environment, one `clap` parser (flags and environment variables).
    type Config: clap::Parser + Send;
    /// What tests and the harness may reach inside (database, fault points, workers):
    /// cloneable, and available before serving starts.
    type Handle: Clone + Send + Sync + 'static;
    /// Its binary name (see [`crate::processes`]).
    const NAME: &'static str;

    /// Connect, migrate, wire and bind; nothing is served yet.
    fn build(config: Self::Config) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// The addresses actually bound.
    fn addrs(&self) -> Addrs;

    /// The way in for tests and the harness.
    fn handle(&self) -> Self::Handle;

    /// Serve and run every background task until `shutdown` completes, then stop them all.
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Where a process listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// Its HTTP listener (every process has one).
    pub http: SocketAddr,
    /// Its gRPC listener, for the four services.
    pub grpc: Option<SocketAddr>,
    /// Its fault admin endpoint (loopback only), when one is configured.
    pub admin: Option<SocketAddr>,
}

impl Addrs {
    /// A process with only an HTTP listener.
    pub fn http(http: SocketAddr) -> Self {
        Self { http, grpc: None, admin: None }
    }

    /// These addresses, with the fault admin endpoint's.
    pub fn with_admin(mut self, admin: Option<SocketAddr>) -> Self {
        self.admin = admin;
        self
    }

    /// `http://<admin addr>`, when there is a fault admin endpoint.
    pub fn admin_url(&self) -> Option<String> {
        self.admin.map(|admin| format!("http://{admin}"))
    }

    /// `http://<http addr>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `http://<grpc addr>`, for tonic clients.
    pub fn grpc_url(&self) -> Option<String> {
        self.grpc.map(|grpc| format!("http://{grpc}"))
    }
}

impl fmt::Display for Addrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http {}", self.http)?;
        if let Some(grpc) = self.grpc {
            write!(f, ", grpc {grpc}")?;
        }
        if let Some(admin) = self.admin {
            write!(f, ", admin {admin}")?;
        }
        Ok(())
    }
}

/// A [`Server`] running as a task of this process: what tests start instead of a binary.
///
/// Dropping it stops the server without waiting; [`Running::stop`] stops it and waits until
/// it no longer serves, as if its process had exited.
pub struct Running<H> {
    /// Where it listens.
    pub addrs: Addrs,
    /// Its way in.
    pub handle: H,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl<H> Running<H> {
    /// Stop it and wait until it has finished; its own error, if it failed while serving.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => task.await.map_err(anyhow::Error::from).and_then(|served| served),
            None => Ok(()),
        }
    }
}

impl<H> Drop for Running<H> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Build `S` from `config` and run it in a task until [`Running::stop`] or drop.
pub async fn spawn<S: Server>(config: S::Config) -> anyhow::Result<Running<S::Handle>> {
    let server = S::build(config).await?;
    let (addrs, handle) = (server.addrs(), server.handle());
    let stop = CancellationToken::new();
    let task = tokio::spawn(server.run_until_stopped(stop.clone().cancelled_owned()));
    Ok(Running { addrs, handle, stop, task: Some(task) })
}
