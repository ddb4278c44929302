//! Hosting one service: its HTTP router and its gRPC server, stopped together.
//!
//! Every microservice serves two ports (public + internal HTTP/JSON on one, gRPC on the
//! other), and a third, loopback-only one for its fault points when `*_ADMIN_ADDR` asks for
//! it, and runs background tasks (outbox relay, broker consumer). This is the one place
//! that starts them and stops them in order, so each service's `run_until_stopped` (in its
//! `lib.rs`) stays the size of the monolith's.

use crate::grpc::GrpcServer;
use crate::identity::{IdentityArgs, SignedIdentityAuthenticator};
use anyhow::Context;
use archlab_kernel::Addrs;
use archlab_kernel::config::{BehaviourArgs, DatabaseArgs};
use archlab_kernel::faults::admin::AdminListener;
use archlab_kernel::http::{edge, with_authenticator};
use axum::Router;
use clap::Args;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What every service reads besides its own addresses: its database server, the gateway's
/// identity secret, and the behaviour knobs shared with the monolith.
#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// PostgreSQL.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The gateway's identity signature.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Notification mode, outbox poll, fault points.
    #[command(flatten)]
    pub behaviour: BehaviourArgs,
}

/// How a service calls the others: transport and limits, and where they are.
#[derive(Args, Debug, Clone)]
pub struct Peers {
    /// Transport and limits of calls to other services.
    #[command(flatten)]
    pub client: crate::ClientConfig,
    /// Where the other services are.
    #[command(flatten)]
    pub upstreams: crate::Upstreams,
}

/// Open (creating it if missing) the service's own database `name`.
pub async fn open_database(db: &DatabaseArgs, name: &str) -> anyhow::Result<PgPool> {
    db.open(name).await.with_context(|| format!("connecting to database {name} at {}", db.database_url))
}

/// A service's whole HTTP side: its public routes, which trust only the gateway's signed
/// identity and run under the deadline the gateway sent (`crate::deadline`); its internal
/// routes; `/health` and `/ready` over its database; the lab-wide edge.
pub fn service_router(public: Router, internal: Router, identity: &IdentityArgs, pool: &PgPool) -> Router {
    let authn = Arc::new(SignedIdentityAuthenticator::new(identity.internal_secret.as_bytes()));
    let checks = archlab_kernel::health::postgres(pool);
    let public = with_authenticator(public, authn).layer(crate::deadline::BudgetLayer);
    edge(public.merge(internal).merge(archlab_kernel::health::router(checks)))
}

/// A service's bound listeners: HTTP, gRPC and, when configured, the fault admin endpoint.
pub struct Host {
    http: TcpListener,
    grpc: TcpListener,
    admin: Option<AdminListener>,
}

impl Host {
    /// Bind both addresses (port 0 allowed), refusing the development `INTERNAL_SECRET` on a
    /// non-loopback address.
    pub async fn bind(http: SocketAddr, grpc: SocketAddr, identity: &IdentityArgs) -> anyhow::Result<Self> {
        identity.check_for(&[http, grpc])?;
        let http_l = TcpListener::bind(http).await.with_context(|| format!("binding HTTP {http}"))?;
        let grpc_l = TcpListener::bind(grpc).await.with_context(|| format!("binding gRPC {grpc}"))?;
        Ok(Self { http: http_l, grpc: grpc_l, admin: None })
    }

    /// The same, also serving the fault admin endpoint `admin` (bound already, loopback only).
    pub fn with_admin(mut self, admin: Option<AdminListener>) -> Self {
        self.admin = admin;
        self
    }

    /// The bound addresses.
    pub fn addrs(&self) -> Addrs {
        Addrs {
            http: self.http.local_addr().expect("bound"),
            grpc: Some(self.grpc.local_addr().expect("bound")),
            admin: self.admin.as_ref().map(AdminListener::local_addr),
        }
    }

    /// Serve both until `stop` is cancelled (or one of them fails, which cancels `stop`),
    /// then wait for the `background` tasks, which must watch the same `stop`.
    pub async fn serve(
        self,
        router: Router,
        grpc: GrpcServer,
        stop: CancellationToken,
        mut background: Vec<JoinHandle<()>>,
    ) -> anyhow::Result<()> {
        background.extend(self.admin.map(|admin| admin.spawn(stop.clone())));
        let http_stop = stop.clone();
        let http = tokio::spawn(async move {
            axum::serve(self.http, router)
                .with_graceful_shutdown(http_stop.cancelled_owned())
                .await
                .context("serving HTTP")
        });
        let grpc_stop = stop.clone();
        let grpc =
            tokio::spawn(
                async move { grpc.serve(self.grpc, grpc_stop.cancelled_owned()).await.context("serving gRPC") },
            );
        let (h, g) = (stop.clone(), stop.clone());
        let http = async move {
            let r = http.await.context("HTTP task").and_then(|r| r);
            h.cancel();
            r
        };
        let grpc = async move {
            let r = grpc.await.context("gRPC task").and_then(|r| r);
            g.cancel();
            r
        };
        let (http_result, grpc_result) = tokio::join!(http, grpc);
        for task in background {
            let _ = task.await;
        }
        http_result.and(grpc_result)
    }
}

/// A stop switch that flips when `shutdown` completes (or when something else cancels it):
/// what a service's servers and background tasks all watch.
pub fn stop_on(shutdown: impl Future<Output = ()> + Send + 'static) -> CancellationToken {
    let stop = CancellationToken::new();
    let flip = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => flip.cancel(),
            _ = flip.cancelled() => {},
        }
    });
    stop
}
