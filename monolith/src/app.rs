//! Wiring the monolith: every port bound to the in-process service.
//!
//! Compare `microservices/payments-service/src/lib.rs` (and the other services' `lib.rs`),
//! where the same ports are bound to gRPC or HTTP clients. The routers, services and rules
//! are the same crates in both, and every process has the same [`Server`] shape.

use crate::Config;
use crate::events::EventWorkers;
use crate::signup_tx::OneTransactionSignup;
use anyhow::Context;
use archlab_auth::http::AuthRoutes;
use archlab_auth::{AddressLimit, AuthApi, AuthService, HashGate, SessionAuthenticator, SessionCache};
use archlab_kernel::faults::admin::AdminListener;
use archlab_kernel::http::{edge, with_authenticator};
use archlab_kernel::processes::MONOLITH;
use archlab_kernel::{Addrs, Faults, Server};
use archlab_notifications::{ExtsimEmail, NotificationsApi, NotificationsService};
use archlab_payments::{ExtsimPayments, PurchasePorts, PurchaseService, Reconciler};
use archlab_users::{UsersApi, UsersService};
use axum::Router;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A built monolith: bound, migrated, ready to serve.
pub struct App {
    listener: TcpListener,
    admin: Option<AdminListener>,
    router: Router,
    handle: Handle,
    poll: Duration,
    reconcile_every: Option<Duration>,
}

/// What tests and the harness may reach inside a running monolith.
#[derive(Clone)]
pub struct Handle {
    /// The one database.
    pub pool: PgPool,
    /// Fault points of this instance.
    pub faults: Faults,
    /// The outbox workers.
    pub events: EventWorkers,
    /// The cap on concurrent password hashes.
    pub hashes: HashGate,
    /// Settles payments left in doubt (it also runs on its own, every `RECONCILE_INTERVAL_MS`).
    pub reconciler: Reconciler,
}

impl Handle {
    /// Deliver every pending event now (the tests' alternative to sleeping).
    pub async fn process_pending(&self) -> archlab_kernel::Result<usize> {
        self.events.process_pending().await
    }
}

impl Server for App {
    type Config = Config;
    type Handle = Handle;
    const NAME: &'static str = MONOLITH.name;

    /// Create and migrate the database, bind the address (port 0 allowed), wire everything.
    async fn build(config: Config) -> anyhow::Result<Self> {
        config.reconcile.check(&config.external).map_err(anyhow::Error::msg)?;
        let pool = config
            .db
            .open(&config.database)
            .await
            .with_context(|| format!("connecting to database {} at {}", config.database, config.db.database_url))?;
        archlab_auth::migrate(&pool).await.context("migrating auth")?;
        archlab_users::migrate(&pool).await.context("migrating users")?;
        archlab_payments::migrate(&pool).await.context("migrating payments")?;
        archlab_notifications::migrate(&pool).await.context("migrating notifications")?;

        // Every domain runs here, so every fault point is reached here.
        let here = [
            archlab_auth::faults::ALL,
            archlab_users::faults::ALL,
            archlab_payments::faults::ALL,
            archlab_notifications::faults::ALL,
        ]
        .concat();
        let faults = config.behaviour.faults(&here)?;
        let cache = SessionCache::connect_optional(config.sessions.redis_url.as_deref()).await;

        // The services, and the ports bound to them in-process.
        let session_ttl = Duration::from_secs(config.sessions.session_ttl_secs);
        let auth =
            Arc::new(AuthService::new(pool.clone(), cache, session_ttl, faults.clone()).with_limits(&config.limits));
        let hashes = auth.hash_gate().clone();
        let users = Arc::new(UsersService::new(pool.clone(), faults.clone()));
        let email = Arc::new(ExtsimEmail::new(&config.external.extsim_url, config.external.timeout()));
        let notifications = Arc::new(NotificationsService::new(pool.clone(), email, faults.clone()));
        let provider = Arc::new(ExtsimPayments::new(&config.external.extsim_url, config.external.timeout()));
        let ports = PurchasePorts {
            auth: auth.clone() as Arc<dyn AuthApi>,
            users: users.clone() as Arc<dyn UsersApi>,
            provider,
            notifications: notifications.clone() as Arc<dyn NotificationsApi>,
        };
        let purchases =
            Arc::new(PurchaseService::new(pool.clone(), ports, config.behaviour.notification_mode, faults.clone()));
        let reconciler = Reconciler::new(purchases.clone(), config.reconcile.after());
        let signup = Arc::new(OneTransactionSignup { auth: auth.clone(), users: users.clone() });

        let api = Router::new()
            .merge(archlab_auth::http::router(AuthRoutes { auth: auth.clone(), signup }))
            .merge(archlab_users::http::router(users))
            .merge(archlab_payments::http::router(purchases))
            .merge(archlab_notifications::http::router(notifications.clone()));
        let api = with_authenticator(api, Arc::new(SessionAuthenticator(auth)));
        // The client's address is known here, at the public edge (as at the gateway).
        let api = AddressLimit::from_args(&config.limits).apply(api);
        let router = edge(
            api.merge(archlab_kernel::health::router(archlab_kernel::health::postgres(&pool)))
                .merge(archlab_openapi::router()),
        );

        let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        let admin = AdminListener::bind_optional(config.admin_addr, &faults).await?;
        let events = EventWorkers::new(&pool, notifications);
        tracing::info!(mode = %config.behaviour.notification_mode, "monolith built");
        Ok(Self {
            listener,
            admin,
            router,
            handle: Handle { pool, faults, events, hashes, reconciler },
            poll: Duration::from_millis(config.behaviour.outbox_poll_ms),
            reconcile_every: config.reconcile.interval(),
        })
    }

    fn addrs(&self) -> Addrs {
        Addrs::http(self.listener.local_addr().expect("a bound listener has an address"))
            .with_admin(self.admin.as_ref().map(AdminListener::local_addr))
    }

    fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Serve and run the outbox workers and the reconciler until `shutdown` completes, then
    /// stop them all.
    async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let mut workers = self.handle.events.spawn(self.poll, stop.clone());
        if let Some(every) = self.reconcile_every {
            workers.push(self.handle.reconciler.clone().spawn(every, stop.clone()));
        }
        let admin = self.admin.map(|admin| admin.spawn(stop.clone()));
        let serve_stop = stop.clone();
        let router = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = shutdown => {},
                    _ = serve_stop.cancelled() => {},
                }
            })
            .await;
        stop.cancel();
        for w in workers.into_iter().chain(admin) {
            let _ = w.await;
        }
        served.context("serving HTTP")
    }
}
