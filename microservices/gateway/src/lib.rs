//! gateway: the microservices build's front door, serving the same public API as the monolith.
//!
//! The monolith answers `/api/*` itself; here every request crosses one more hop. The gateway
//! holds no domain code: it routes by an explicit table ([`ROUTES`], a mirror of
//! docs/api.md), checks bearer tokens with auth-service (through whatever `AuthApi` it is
//! given: gRPC or HTTP, each call carrying the gateway's service credential), stamps the
//! verified caller as a signed `x-archlab-identity` header valid for that one method and path
//! (see `archlab_remote::identity`) and forwards to the owning service's public HTTP routes.
//! With `GATEWAY_PASS_THROUGH=on` it is the balancer in front of replicated monoliths instead:
//! the same table, no token check, no identity, the `Authorization` header passed on (an
//! upstream URL may list replicas; `archlab_remote::replicas` balances them).
//! Unknown routes, wrong methods and oversized bodies are answered here, in the lab's JSON
//! error shape, without bothering any service; so are `/health`, `/ready` and
//! `/openapi.json` (the document `archlab-openapi` generates from the domain crates' handlers,
//! byte for byte the monolith's).
//!
//! # Layout
//! - `config`: [`Config`], the environment variables.
//! - `table`: the route table, plain data ([`ROUTES`]).
//! - `routes`: the table as a router.
//! - `forward`: authenticate, strip and re-send, copy the answer back.
//! - `ready`: `/ready` asks every upstream's `/health`.
//!
//! Start reading at [`App`]'s `Server::build`.

mod config;
mod forward;
mod ready;
mod routes;
mod table;

pub use config::Config;
pub use table::{Access, ROUTES, Route, Service};

use anyhow::Context;
use archlab_auth::{AddressLimit, AuthApi};
use archlab_kernel::health::ReadyCheck;
use archlab_kernel::http::edge;
use archlab_kernel::processes::GATEWAY;
use archlab_kernel::{Addrs, Server};
use archlab_remote::http::HttpUpstream;
use archlab_remote::identity::IdentitySigner;
use archlab_remote::{ClientConfig, Switch};
use axum::Router;
use forward::Forwarder;
use ready::UpstreamHealth;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The whole public router: route table, `/health`, `/ready` and `/openapi.json` (the
/// monolith's very document: the gateway has no handlers to describe), wrapped in the
/// lab-wide edge.
pub fn app(config: &Config, auth: Arc<dyn AuthApi>) -> anyhow::Result<Router> {
    let forwarding = config.forwarding();
    let upstreams = Service::ALL
        .into_iter()
        .map(|service| {
            let url = service.http_url(&config.upstreams);
            HttpUpstream::new(service.name(), url, &forwarding).with_context(|| format!("{} at {url}", service.name()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Readiness probes get clients of their own, neither retried nor behind a breaker: a
    // probe says how the upstream is now, and the probes of a start-up (every upstream still
    // down) must not open the breakers the forwarded calls go through.
    let probing = ClientConfig { retry: Switch::Off, breaker: Switch::Off, ..forwarding.clone() };
    let checks = Service::ALL
        .into_iter()
        .map(|service| {
            let url = service.http_url(&config.upstreams);
            let probe = HttpUpstream::new(service.name(), url, &probing)?;
            Ok(Arc::new(UpstreamHealth(probe)) as Arc<dyn ReadyCheck>)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signer = IdentitySigner::new(config.identity.internal_secret.as_bytes());
    let forwarder = Forwarder::new(upstreams, auth, signer);
    let forwarder = Arc::new(if config.pass_through.is_on() { forwarder.passing_through() } else { forwarder });
    // Behind this hop auth-service sees the gateway's address, so the per-address limit is here.
    let api = AddressLimit::from_args(&config.limits).apply(routes::router(forwarder));
    Ok(edge(api.merge(archlab_kernel::health::router(checks)).merge(archlab_openapi::router())))
}

/// A built gateway: bound, wired, ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
}

impl App {
    /// [`Server::build`] with bearer tokens checked by `auth` instead of auth-service (tests
    /// put a fake there).
    pub async fn with_auth(config: Config, auth: Arc<dyn AuthApi>) -> anyhow::Result<Self> {
        config.identity.check_for(&[config.addr])?;
        let router = app(&config, auth)?;
        let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        let u = &config.upstreams;
        tracing::info!(
            auth = %u.auth_http_url,
            users = %u.users_http_url,
            payments = %u.payments_http_url,
            notifications = %u.notifications_http_url,
            transport = %config.client.transport,
            "gateway built"
        );
        Ok(Self { listener, router })
    }
}

impl Server for App {
    type Config = Config;
    /// The gateway keeps no state worth reaching into.
    type Handle = ();
    const NAME: &'static str = GATEWAY.name;

    /// Bind the address (port 0 allowed) and wire the router; bearer tokens are checked by
    /// auth-service over `INTERNAL_TRANSPORT`.
    async fn build(config: Config) -> anyhow::Result<Self> {
        let me = config.identity.service_credentials(Self::NAME);
        let auth = config.upstreams.auth(&config.client, &me).context("auth-service client")?;
        Self::with_auth(config, auth).await
    }

    fn addrs(&self) -> Addrs {
        Addrs::http(self.listener.local_addr().expect("a bound listener has an address"))
    }

    fn handle(&self) {}

    /// Serve until `shutdown` completes, then finish the requests in flight.
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let router = self.router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, router).with_graceful_shutdown(shutdown).await.context("serving HTTP")
    }
}
