//! Signup as a saga: whatever users-service does, no orphan credentials are left behind.

use archlab_conformance::{Api, unique_email};
use archlab_system_tests::{Options, Stack};
use sqlx::PgPool;
use std::time::Duration;

async fn count(pool: &PgPool, sql: &'static str, email: &str) -> i64 {
    sqlx::query_scalar(sql).bind(email).fetch_one(pool).await.expect(sql)
}

async fn credentials(stack: &Stack, email: &str) -> i64 {
    count(&stack.auth_db, "SELECT count(*) FROM auth.credentials WHERE email = $1", email).await
}

async fn profiles(stack: &Stack, email: &str) -> i64 {
    count(&stack.users_db, "SELECT count(*) FROM users.profiles WHERE email = $1", email).await
}

#[tokio::test]
async fn users_service_failing_during_signup_leaves_no_orphan_credentials() {
    let stack = Stack::start(Options::default()).await;
    let api = Api::new(&stack);
    let email = unique_email();
    // The fault fires inside users-service after its insert, before its commit.
    stack.users_faults.enable("users.create_profile");

    api.signup(&email, "correct horse", "Ada").await.expect_error(503, "dependency_unavailable", "users-service fails");

    assert_eq!(credentials(&stack, &email).await, 0, "orphan credentials");
    assert_eq!(profiles(&stack, &email).await, 0, "orphan profile");
    let compensated: i64 =
        sqlx::query_scalar("SELECT count(*) FROM auth.audit_log WHERE action = 'signup_compensated'")
            .fetch_one(&stack.auth_db)
            .await
            .unwrap();
    assert_eq!(compensated, 1, "the compensation is on the audit trail");
    assert_eq!(stack.auth_relay.pending().await.unwrap(), 0, "no welcome for an account that does not exist");

    // The email is free again.
    stack.users_faults.disable("users.create_profile");
    api.signup(&email, "correct horse", "Ada").await.expect_json(201, "signup once users-service recovers");
    assert_eq!(credentials(&stack, &email).await, 1);
    assert_eq!(profiles(&stack, &email).await, 1);
}

#[tokio::test]
async fn users_service_down_during_signup_leaves_no_orphan_credentials() {
    let mut stack = Stack::start(Options::default()).await;
    let api = Api::new(&stack);
    let email = unique_email();
    stack.stop("users-service").await;

    api.signup(&email, "correct horse", "Ada").await.expect_error(
        503,
        "dependency_unavailable",
        "users-service is down",
    );

    assert_eq!(credentials(&stack, &email).await, 0, "orphan credentials");
    assert_eq!(profiles(&stack, &email).await, 0);
    // Nobody can tell whether a request that got no answer was applied, so a profile
    // delete is owed and recorded for recovery.
    assert_eq!(stack.saga.owed_profile_deletes().await.unwrap(), 1);
    assert_eq!(stack.saga.recover_stale(Duration::from_secs(3600)).await.unwrap(), 0, "still down: nothing completes");
    assert_eq!(stack.saga.owed_profile_deletes().await.unwrap(), 1, "the debt is kept while users-service is down");
}

#[tokio::test]
async fn a_signup_left_pending_by_a_crash_is_compensated_by_recovery() {
    let stack = Stack::start(Options::default()).await;
    let api = Api::new(&stack);
    // A signup that completed, then rewound to "crashed after step 2": profile created,
    // credentials still pending.
    let user = api.new_user().await;
    sqlx::query("UPDATE auth.credentials SET status = 'pending' WHERE email = $1")
        .bind(&user.email)
        .execute(&stack.auth_db)
        .await
        .unwrap();
    assert_eq!(profiles(&stack, &user.email).await, 1);

    let undone = stack.saga.recover_stale(Duration::ZERO).await.unwrap();

    assert_eq!(undone, 1);
    assert_eq!(credentials(&stack, &user.email).await, 0);
    assert_eq!(profiles(&stack, &user.email).await, 0, "recovery removes the profile too");
    assert_eq!(stack.saga.owed_profile_deletes().await.unwrap(), 0);
}
