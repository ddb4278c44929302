//! The published development `INTERNAL_SECRET` is refused by any process that listens beyond
//! loopback: with it, anyone who has read this repository could sign identities.

use archlab_kernel::Server;
use clap::Parser;

/// `users-service` configured as its binary would be, with `extra` flags on top.
async fn users_config(extra: &[&str]) -> archlab_users_service::Config {
    let db_url = archlab_testkit::database_url().await;
    let database = archlab_testkit::fresh_database_name("secret");
    let base = ["users-service", "--database-url", &db_url, "--database", &database, "--grpc-addr", "127.0.0.1:0"];
    archlab_users_service::Config::try_parse_from(base.iter().chain(extra)).expect("valid flags")
}

#[tokio::test]
async fn a_service_on_a_public_address_refuses_the_development_secret() {
    let config =
        users_config(&["--http-addr", "0.0.0.0:0", "--internal-secret", archlab_remote::identity::DEV_SECRET]).await;
    let refused = archlab_users_service::App::build(config).await.err().expect("it must refuse to start");
    let message = format!("{refused:#}");
    assert!(message.contains("INTERNAL_SECRET") && message.contains("0.0.0.0"), "{message}");

    // With a secret of its own it starts on the same address.
    let config = users_config(&["--http-addr", "0.0.0.0:0", "--internal-secret", "a-long-random-test-value"]).await;
    let app = archlab_users_service::App::build(config).await.expect("starts with its own secret");
    assert!(app.addrs().http.ip().is_unspecified());
}

#[tokio::test]
async fn on_loopback_the_development_secret_still_starts_the_lab() {
    let config =
        users_config(&["--http-addr", "127.0.0.1:0", "--internal-secret", archlab_remote::identity::DEV_SECRET]).await;
    archlab_users_service::App::build(config).await.expect("loopback with the default secret starts");
}

#[tokio::test]
async fn the_gateway_on_a_public_address_refuses_it_too() {
    let config = archlab_gateway::Config::try_parse_from([
        "gateway",
        "--addr",
        "0.0.0.0:0",
        "--internal-secret",
        archlab_remote::identity::DEV_SECRET,
    ])
    .expect("valid flags");
    let refused = archlab_gateway::App::build(config).await.err().expect("it must refuse to start");
    assert!(format!("{refused:#}").contains("INTERNAL_SECRET"));
}
