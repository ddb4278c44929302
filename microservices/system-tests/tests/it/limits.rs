//! The signup and login limits with their default numbers (docs/api.md, "Limits"), through
//! the gateway: the per-address limit is the gateway's, the per-account limit and the
//! hashing cap auth-service's. The same checks as `monolith/tests/it/limits.rs`.

use archlab_conformance::limits;
use archlab_kernel::config::AbuseArgs;
use archlab_system_tests::{Options, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_logins_are_limited_per_account_and_others_still_log_in() {
    let stack = Stack::start(Options::default()).await;
    limits::account_limit(&stack, AbuseArgs::DEFAULT.auth_limit_per_account_per_hour).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signups_and_logins_are_limited_per_client_address() {
    let stack = Stack::start(Options::default()).await;
    limits::address_limit(&stack, AbuseArgs::DEFAULT.auth_limit_per_address_per_minute).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_password_hashing_cap_sheds_with_503_and_retry_after() {
    let stack = Stack::start(Options::default()).await;
    let gate = stack.auth_hashes.clone();
    limits::busy_hashing_is_shed(&stack, async move { gate.occupy().await }).await;
}
