//! The hybrid topology inside one test process: the gateway, the hybrid core (three modules
//! over one database) and the one extracted service, as `archlab up hybrid --extract` runs
//! them, each built from its own `Config`, over real gRPC or HTTP and the real RabbitMQ.

use super::{Flag, Flags, Options, published, spawn, urls, wait_consumed};
use archlab_hybrid::Module;
use archlab_kernel::server::Running;
use archlab_remote::Relay;
use archlab_remote::broker::ConsumerHandle;
use archlab_testkit::Extsim;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// The extracted service (each kind has its own handle type).
enum Extracted {
    Notifications(Running<archlab_notifications_service::Handle>),
    Payments(Running<archlab_payments_service::Handle>),
}

/// A running hybrid: gateway, core, one extracted service, and an extsim.
pub struct HybridStack {
    /// The gateway's public URL.
    pub gateway_url: String,
    /// The third parties.
    pub extsim: Extsim,
    /// Which module is out.
    pub extract: Module,
    /// The core's database (the monolith's, less one schema).
    pub core_db: PgPool,
    /// The extracted service's own database.
    pub service_db: PgPool,
    /// The core.
    pub core: Running<archlab_hybrid::Handle>,
    extracted: Extracted,
    gateway: Running<()>,
}

impl HybridStack {
    /// Start the hybrid with `extract` out, with the machine's PostgreSQL and RabbitMQ.
    pub async fn start(extract: Module, options: Options) -> HybridStack {
        let amqp = archlab_testkit::amqp_url().await;
        let extsim = archlab_testkit::extsim().await;
        let db_url = archlab_testkit::database_url().await;
        let [core_db, service_db] = ["monolith", extract.name()].map(archlab_testkit::fresh_database_name);
        let create = archlab_kernel::db::ensure_database;
        tokio::try_join!(create(&db_url, &core_db), create(&db_url, &service_db))
            .unwrap_or_else(|e| panic!("cannot create the test databases on {db_url}: {e}"));
        let f = Flags::new(&options, db_url, &amqp, &extsim.url);
        let mut threads = Vec::new();
        let core_flags = |peers: Vec<Flag>| {
            [
                f.common(&core_db),
                vec![("extract", extract.name().to_owned())],
                f.secret.clone(),
                f.broker.clone(),
                f.client.clone(),
                f.extsim.clone(),
                f.sessions.clone(),
                f.limits.clone(),
                f.reconcile.clone(),
                peers,
            ]
            .concat()
        };
        let core_urls = |addrs| {
            [urls("auth-grpc-url", "auth-http-url", addrs), urls("users-grpc-url", "users-http-url", addrs)].concat()
        };
        let (core, extracted, routes) = match extract {
            Module::Notifications => {
                let service = spawn::<archlab_notifications_service::App>(
                    &[f.common(&service_db), f.secret.clone(), f.broker.clone(), f.extsim.clone()].concat(),
                    None,
                    &mut threads,
                )
                .await;
                let service_urls = urls("notifications-grpc-url", "notifications-http-url", &service.addrs);
                let core = spawn::<archlab_hybrid::App>(&core_flags(service_urls.clone()), None, &mut threads).await;
                let routes =
                    [core_urls(&core.addrs), vec![("payments-http-url", core.addrs.http_url())], service_urls].concat();
                (core, Extracted::Notifications(service), routes)
            }
            Module::Payments => {
                let core = spawn::<archlab_hybrid::App>(&core_flags(Vec::new()), None, &mut threads).await;
                let peers =
                    [core_urls(&core.addrs), urls("notifications-grpc-url", "notifications-http-url", &core.addrs)]
                        .concat();
                let service = spawn::<archlab_payments_service::App>(
                    &[
                        f.common(&service_db),
                        f.secret.clone(),
                        f.broker.clone(),
                        f.client.clone(),
                        f.extsim.clone(),
                        f.reconcile.clone(),
                        peers.clone(),
                    ]
                    .concat(),
                    None,
                    &mut threads,
                )
                .await;
                let routes = [peers, vec![("payments-http-url", service.addrs.http_url())]].concat();
                (core, Extracted::Payments(service), routes)
            }
        };
        let gateway = spawn::<archlab_gateway::App>(
            &[vec![("addr", "127.0.0.1:0".to_owned())], f.limits.clone(), routes, f.client.clone(), f.secret.clone()]
                .concat(),
            None,
            &mut threads,
        )
        .await;
        let service_db = match &extracted {
            Extracted::Notifications(s) => s.handle.pool.clone(),
            Extracted::Payments(s) => s.handle.pool.clone(),
        };
        HybridStack {
            gateway_url: gateway.addrs.http_url(),
            extsim,
            extract,
            core_db: core.handle.pool.clone(),
            service_db,
            core,
            extracted,
            gateway,
        }
    }

    /// Where payments' rows are (`payments.payments`, `payments.outbox`).
    pub fn payments_db(&self) -> &PgPool {
        match self.extract {
            Module::Payments => &self.service_db,
            Module::Notifications => &self.core_db,
        }
    }

    /// Where notifications' rows are.
    pub fn notifications_db(&self) -> &PgPool {
        match self.extract {
            Module::Notifications => &self.service_db,
            Module::Payments => &self.core_db,
        }
    }

    /// The broker consumer that feeds notifications, the relay outside the core that
    /// publishes to it (payments-service's, when payments is out), and the outboxes whose
    /// published events it must have processed.
    fn event_path(&self) -> (&ConsumerHandle, Option<&Relay>, Vec<(&PgPool, &'static str)>) {
        match &self.extracted {
            Extracted::Notifications(service) => {
                let outboxes = vec![(&self.core_db, archlab_auth::SCHEMA), (&self.core_db, archlab_payments::SCHEMA)];
                (&service.handle.consumer, None, outboxes)
            }
            Extracted::Payments(service) => {
                let consumer = self.core.handle.consumer.as_ref().expect("notifications consume here");
                (consumer, Some(&service.handle.relay), vec![(&self.service_db, archlab_payments::SCHEMA)])
            }
        }
    }

    /// Deliver what is pending now: the core's outboxes (in-process or relayed), the extracted
    /// service's relay, then wait (on the consumer's ack counter) until every event published
    /// has been processed; panics after 20 s, naming what is missing.
    pub async fn settle(&self) {
        let limit = Duration::from_secs(20);
        let deadline = Instant::now() + limit;
        self.core.handle.process_pending().await.expect("the core's outboxes");
        let (consumer, relay, outboxes) = self.event_path();
        if let Some(relay) = relay {
            relay.process_pending().await.expect("the extracted service's relay");
        }
        let mut expected = Vec::new();
        for (pool, schema) in outboxes {
            expected.extend(published(pool, schema).await.expect("published events"));
        }
        if let Err(e) = wait_consumed(&expected, self.notifications_db(), consumer, deadline, limit).await {
            panic!("{e}");
        }
    }

    /// Stop every process.
    pub async fn stop(self) {
        self.gateway.stop().await.expect("gateway stopped");
        match self.extracted {
            Extracted::Notifications(s) => s.stop().await.expect("notifications-service stopped"),
            Extracted::Payments(s) => s.stop().await.expect("payments-service stopped"),
        }
        self.core.stop().await.expect("core stopped");
    }
}

impl archlab_conformance::Target for HybridStack {
    fn base_url(&self) -> &str {
        &self.gateway_url
    }
    fn extsim_url(&self) -> &str {
        &self.extsim.url
    }
    async fn settle(&self) {
        HybridStack::settle(self).await
    }
}
