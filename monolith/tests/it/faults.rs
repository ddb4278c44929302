//! The fault points' admin endpoint on a running monolith: the registry, refusals, a failing
//! share and latency (the cases in `archlab_conformance::faults`, which the microservices
//! build runs too), and a non-loopback address refused before anything starts.
//! `monolith/tests/it/faults_process.rs` covers the kinds only a real process shows.

use crate::common;

use archlab_conformance::faults::{self, Admin};
use archlab_kernel::faults::points;
use archlab_monolith::Config;
use clap::Parser;
use common::spawn;

fn registry() -> Vec<&'static str> {
    points::ALL.iter().map(|p| p.name).collect()
}

#[tokio::test]
async fn unknown_points_are_refused_with_the_known_ones() {
    let app = spawn().await;
    let known = registry();
    // The monolith runs every domain, so it reaches every point.
    faults::unknown_points_are_refused_with_the_known_ones(&Admin::new(&app.admin_url), &known, &known).await;
}

#[tokio::test]
async fn malformed_requests_are_refused() {
    let app = spawn().await;
    faults::malformed_requests_are_refused(&Admin::new(&app.admin_url), faults::SIGNUP_POINT).await;
}

#[tokio::test]
async fn a_share_of_one_fails_signup_and_zero_does_not() {
    let app = spawn().await;
    faults::a_share_of_one_fails_the_endpoint_and_zero_does_not(&app, &Admin::new(&app.admin_url)).await;
}

#[tokio::test]
async fn latency_holds_signup_at_least_that_long() {
    let app = spawn().await;
    faults::latency_holds_the_answer_at_least_that_long(&app, &Admin::new(&app.admin_url)).await;
}

#[test]
fn the_domains_name_exactly_the_registered_points() {
    let mut named = [
        archlab_auth::faults::ALL,
        archlab_users::faults::ALL,
        archlab_payments::faults::ALL,
        archlab_notifications::faults::ALL,
    ]
    .concat();
    let mut registered = registry();
    named.sort_unstable();
    registered.sort_unstable();
    assert_eq!(named, registered, "a point in a domain crate and the registry disagree");
}

#[test]
fn a_non_loopback_admin_address_is_refused_at_configuration() {
    for public in ["0.0.0.0:8180", "[::]:8180", "192.0.2.10:8180"] {
        let refused = Config::try_parse_from(["monolith", "--admin-addr", public]).expect_err(public);
        let message = refused.to_string();
        assert!(message.contains("loopback only") && message.contains("--admin-addr"), "{public}: {message}");
    }
    let config = Config::try_parse_from(["monolith", "--admin-addr", "127.0.0.1:8180"]).expect("loopback is fine");
    assert_eq!(config.admin_addr, Some("127.0.0.1:8180".parse().unwrap()));
    let config = Config::try_parse_from(["monolith"]).expect("no admin endpoint is fine");
    assert_eq!(config.admin_addr, None, "the admin endpoint is off unless asked for");
}

#[tokio::test]
async fn a_non_loopback_admin_address_set_in_code_is_refused_at_build() {
    let mut config = Config::try_parse_from(["monolith"]).expect("defaults");
    config.database = archlab_testkit::fresh_database_name("mono");
    config.db.database_url = archlab_testkit::database_url().await;
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.admin_addr = Some("0.0.0.0:0".parse().unwrap());
    let refused = archlab_kernel::server::spawn::<archlab_monolith::App>(config).await.err().expect("refused");
    assert!(format!("{refused:#}").contains("loopback only"), "{refused:#}");
}

#[test]
fn an_unknown_point_in_archlab_faults_is_refused_at_configuration_with_the_known_ones() {
    let refused = Config::try_parse_from(["monolith", "--faults", "users.create_profile,payments.recrod"])
        .expect_err("a misspelt point");
    let message = refused.to_string();
    assert!(message.contains("payments.recrod"), "{message}");
    for known in registry() {
        assert!(message.contains(known), "the refusal does not list {known}: {message}");
    }
    Config::try_parse_from(["monolith", "--faults", "users.create_profile, payments.record"]).expect("known points");
}
