//! The fault points' admin endpoint in the microservices build: each service has its own,
//! reaching only its domain's points; the same cases as the monolith's
//! (`archlab_conformance::faults`), with signups through the gateway failing or waiting at
//! users-service's `users.create_profile`. `faults_process.rs` covers the kinds only a real
//! process shows.

use archlab_conformance::faults::{self, Admin};
use archlab_kernel::faults::points;
use archlab_kernel::processes::{AUTH_SERVICE, NOTIFICATIONS_SERVICE, PAYMENTS_SERVICE, USERS_SERVICE};
use archlab_system_tests::{Options, Stack};
use clap::Parser;

fn registry() -> Vec<&'static str> {
    points::ALL.iter().map(|p| p.name).collect()
}

fn admin_of(stack: &Stack, service: &str) -> Admin {
    Admin::new(&stack.addrs(service).admin_url().unwrap_or_else(|| panic!("{service} has no admin endpoint")))
}

#[tokio::test]
async fn each_service_reaches_its_own_points_and_refuses_unknown_ones() {
    let stack = Stack::start(Options::default()).await;
    for (service, here) in [
        (AUTH_SERVICE.name, archlab_auth::faults::ALL),
        (USERS_SERVICE.name, archlab_users::faults::ALL),
        (PAYMENTS_SERVICE.name, archlab_payments::faults::ALL),
        (NOTIFICATIONS_SERVICE.name, archlab_notifications::faults::ALL),
    ] {
        faults::unknown_points_are_refused_with_the_known_ones(&admin_of(&stack, service), &registry(), here).await;
    }
    assert_eq!(stack.addrs(archlab_kernel::processes::GATEWAY.name).admin, None, "the gateway has no fault points");
}

#[tokio::test]
async fn malformed_requests_are_refused() {
    let stack = Stack::start(Options::default()).await;
    faults::malformed_requests_are_refused(&admin_of(&stack, USERS_SERVICE.name), faults::SIGNUP_POINT).await;
}

#[tokio::test]
async fn a_share_of_one_fails_signup_through_the_gateway_and_zero_does_not() {
    let stack = Stack::start(Options::default()).await;
    faults::a_share_of_one_fails_the_endpoint_and_zero_does_not(&stack, &admin_of(&stack, USERS_SERVICE.name)).await;
}

#[tokio::test]
async fn latency_in_users_service_holds_signup_at_the_gateway() {
    let stack = Stack::start(Options::default()).await;
    faults::latency_holds_the_answer_at_least_that_long(&stack, &admin_of(&stack, USERS_SERVICE.name)).await;
}

/// `C` refuses a non-loopback `--admin-addr` with a message saying why, and takes a loopback one.
fn admin_addr_must_be_loopback<C: Parser>(bin: &str) {
    for public in ["0.0.0.0:8102", "[::]:0", "203.0.113.7:8102"] {
        let refused = C::try_parse_from([bin, "--admin-addr", public]).err().expect(public);
        let message = refused.to_string();
        assert!(message.contains("loopback only"), "{bin} {public}: {message}");
    }
    C::try_parse_from([bin, "--admin-addr", "127.0.0.1:1"]).map(drop).expect("loopback is fine");
}

#[test]
fn a_non_loopback_admin_address_is_refused_at_configuration() {
    admin_addr_must_be_loopback::<archlab_auth_service::Config>(AUTH_SERVICE.name);
    admin_addr_must_be_loopback::<archlab_users_service::Config>(USERS_SERVICE.name);
    admin_addr_must_be_loopback::<archlab_payments_service::Config>(PAYMENTS_SERVICE.name);
    admin_addr_must_be_loopback::<archlab_notifications_service::Config>(NOTIFICATIONS_SERVICE.name);
}
