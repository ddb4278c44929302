//! The signup and login limits with their default numbers (docs/api.md, "Limits"): the same
//! checks as `microservices/system-tests/tests/it/limits.rs` runs through the gateway.

use crate::common;

use archlab_conformance::limits;
use archlab_kernel::config::AbuseArgs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_logins_are_limited_per_account_and_others_still_log_in() {
    let app = common::spawn().await;
    limits::account_limit(&app, AbuseArgs::DEFAULT.auth_limit_per_account_per_hour).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signups_and_logins_are_limited_per_client_address() {
    let app = common::spawn().await;
    limits::address_limit(&app, AbuseArgs::DEFAULT.auth_limit_per_address_per_minute).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_password_hashing_cap_sheds_with_503_and_retry_after() {
    let app = common::spawn().await;
    let gate = app.handle.hashes.clone();
    limits::busy_hashing_is_shed(&app, async move { gate.occupy().await }).await;
}
