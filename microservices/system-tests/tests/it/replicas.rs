//! Two payments-service replicas over one database behind the gateway: the balancer sends
//! purchases to both, and once one is gone, after the detection time, every purchase still
//! succeeds on the other.

use archlab_conformance::faults::Admin;
use archlab_conformance::{Api, unique_key};
use archlab_remote::replicas::DETECTION;
use archlab_system_tests::{Options, REPLICA_NAMES, Stack};
use serde_json::json;

/// Purchases that reached `payments.record` in the replica `name`.
async fn recorded_by(stack: &Stack, name: &str) -> u64 {
    let admin = Admin::new(&stack.addrs(name).admin_url().expect("an admin endpoint"));
    let listing = admin.listing().await;
    let points = listing["points"].as_array().unwrap_or_else(|| panic!("no points in {listing}"));
    let record = points.iter().find(|p| p["name"] == "payments.record").expect("payments.record is listed");
    record["reached"].as_u64().expect("a count")
}

async fn purchase(api: &Api, token: &str) -> u16 {
    let body = json!({"amount_cents": 700, "currency": "EUR"});
    api.purchase(Some(token), Some(&unique_key()), &body).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_balances_purchases_over_two_replicas_and_drops_one_that_is_gone() {
    let mut stack = Stack::start(Options { payments_replicas: 2, ..Options::default() }).await;
    let api = Api::new(&stack);
    let buyer = api.new_user().await;
    const N: u64 = 40;
    for _ in 0..N {
        assert_eq!(purchase(&api, &buyer.token).await, 201);
    }
    let (first, second) = (recorded_by(&stack, "payments-service").await, recorded_by(&stack, REPLICA_NAMES[0]).await);
    assert_eq!(first + second, N, "every purchase was recorded once, by one replica");
    assert!(first > 0 && second > 0, "one replica took everything: {first} and {second}");

    // One replica gone: after the detection time, every purchase lands on the other.
    stack.stop(REPLICA_NAMES[0]).await;
    tokio::time::sleep(DETECTION).await;
    let before = recorded_by(&stack, "payments-service").await;
    for _ in 0..N {
        assert_eq!(purchase(&api, &buyer.token).await, 201, "a purchase failed after the detection time");
    }
    assert_eq!(recorded_by(&stack, "payments-service").await, before + N);
}

/// Two whole monoliths over one database behind the gateway passing every request through
/// (`GATEWAY_PASS_THROUGH=on`), balanced: the suite the monolith passes alone, each request
/// landing on either. The monoliths authenticate bearer tokens themselves; the gateway checks
/// none and signs no identity.
mod two_monoliths {
    use archlab_kernel::server::{self, Running};
    use archlab_testkit::Extsim;
    use clap::Parser;

    pub struct TwoMonoliths {
        gateway_url: String,
        extsim: Extsim,
        monoliths: Vec<Running<archlab_monolith::Handle>>,
        _gateway: Running<()>,
    }

    impl archlab_conformance::Target for TwoMonoliths {
        fn base_url(&self) -> &str {
            &self.gateway_url
        }
        fn extsim_url(&self) -> &str {
            &self.extsim.url
        }
        async fn settle(&self) {
            for monolith in &self.monoliths {
                monolith.handle.process_pending().await.expect("deliver pending events");
            }
        }
    }

    async fn setup() -> TwoMonoliths {
        let extsim = archlab_testkit::extsim().await;
        let db_url = archlab_testkit::database_url().await;
        let database = archlab_testkit::fresh_database_name("mono2");
        archlab_kernel::db::ensure_database(&db_url, &database).await.expect("the shared database");
        let mut monoliths = Vec::new();
        for _ in 0..2 {
            let args = [
                "monolith",
                "--addr",
                "127.0.0.1:0",
                "--database",
                &database,
                "--database-url",
                &db_url,
                "--db-max-connections",
                "5",
                "--extsim-url",
                &extsim.url,
            ];
            let config = archlab_monolith::Config::try_parse_from(args).expect("monolith arguments");
            monoliths.push(server::spawn::<archlab_monolith::App>(config).await.expect("a monolith"));
        }
        let list = monoliths.iter().map(|m| m.addrs.http_url()).collect::<Vec<_>>().join(",");
        let mut args = vec!["gateway", "--addr", "127.0.0.1:0", "--pass-through", "on"];
        for flag in ["--auth-http-url", "--users-http-url", "--payments-http-url", "--notifications-http-url"] {
            args.extend([flag, &list]);
        }
        let config = archlab_gateway::Config::try_parse_from(args).expect("gateway arguments");
        let gateway = server::spawn::<archlab_gateway::App>(config).await.expect("the gateway");
        TwoMonoliths { gateway_url: gateway.addrs.http_url(), extsim, monoliths, _gateway: gateway }
    }

    archlab_conformance::conformance_tests!(setup);

    /// Both monoliths answered some of the suite's kind of traffic: a balancer that sent
    /// everything to one would pass the suite too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_monoliths_take_requests() {
        let two = setup().await;
        let api = archlab_conformance::Api::new(&two);
        for _ in 0..10 {
            api.new_user().await;
        }
        let point = archlab_auth::faults::CREATE_CREDENTIALS;
        let reached = |m: &Running<archlab_monolith::Handle>| {
            m.handle.faults.states().into_iter().find(|p| p.name == point).map_or(0, |p| p.reached)
        };
        let signed_up: Vec<u64> = two.monoliths.iter().map(reached).collect();
        assert_eq!(signed_up.iter().sum::<u64>(), 10, "every signup reached one monolith once");
        assert!(signed_up.iter().all(|n| *n > 0), "signups per monolith: {signed_up:?}");
    }
}
