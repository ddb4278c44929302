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
