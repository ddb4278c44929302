//! `AuthService` credentials and sessions over a freshly migrated database, without a cache.
//!
//! Covers: a second account with the same email is a 409 `email_taken`; login succeeds with
//! the right password (email compared normalised) and fails alike for a wrong password and
//! an unknown email; pending credentials cannot log in until activated, and are reported
//! stale once old enough (then no longer once activated); `verify_session`
//! refuses garbled, unknown, expired and revoked tokens; logout revokes; and
//! `delete_credentials` removes the credentials with their sessions.

mod common;

use archlab_auth::{AuthApi, CredentialStatus};
use archlab_kernel::{ErrorKind, Result};
use common::{PASSWORD, count, create_account, service};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn a_second_account_with_the_same_email_is_a_409_email_taken() {
    let (auth, pool) = service(None).await;
    let first = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;

    let err = common::try_create_account(&auth, Uuid::new_v4(), " ADA@example.com", CredentialStatus::Active)
        .await
        .expect_err("same email, other user");

    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(err.code, "email_taken");
    let owners: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM auth.credentials").fetch_all(&pool).await.unwrap();
    assert_eq!(owners, vec![first]);
}

#[tokio::test]
async fn login_with_the_right_password_issues_a_working_session() {
    let (auth, pool) = service(None).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;

    let issued = auth.login("  Ada@Example.COM ", PASSWORD).await.unwrap();

    assert_eq!(issued.token.len(), 64);
    assert!(issued.token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let ttl = issued.expires_at - chrono::Utc::now();
    assert!(ttl > chrono::Duration::minutes(59) && ttl <= chrono::Duration::hours(1), "session ttl {ttl}");
    let session = auth.verify_session(&issued.token).await.unwrap();
    assert_eq!(session.user_id, user_id);
    assert_eq!(session.expires_at, issued.expires_at);
    // Only the token's digest is stored.
    let stored_plain = count(
        &pool,
        &format!("SELECT count(*) FROM auth.sessions WHERE encode(token_hash, 'hex') = '{}'", issued.token),
    )
    .await;
    assert_eq!(stored_plain, 0, "the token itself is in the table");
    assert_eq!(count(&pool, "SELECT count(*) FROM auth.sessions").await, 1);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_fail_alike() {
    let (auth, pool) = service(None).await;
    create_account(&auth, "ada@example.com", CredentialStatus::Active).await;

    let wrong = auth.login("ada@example.com", "not-the-password").await.expect_err("wrong password");
    let unknown = auth.login("nobody@example.com", PASSWORD).await.expect_err("unknown email");
    let garbled = auth.login("not an email", PASSWORD).await.expect_err("garbled email");

    for err in [&wrong, &unknown, &garbled] {
        assert_eq!(err.kind, ErrorKind::Unauthorized);
        assert_eq!(err.code, "invalid_credentials");
    }
    assert_eq!(wrong.message, unknown.message, "the answer tells which part was wrong");
    assert_eq!(count(&pool, "SELECT count(*) FROM auth.sessions").await, 0);
}

#[tokio::test]
async fn pending_credentials_cannot_log_in_until_activated() {
    let (auth, pool) = service(None).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Pending).await;

    let err = auth.login("ada@example.com", PASSWORD).await.expect_err("pending account");
    assert_eq!(err.code, "invalid_credentials");
    assert_eq!(count(&pool, "SELECT count(*) FROM auth.sessions").await, 0);

    let mut conn = pool.acquire().await.unwrap();
    auth.activate(&mut conn, user_id).await.unwrap();
    let issued = auth.login("ada@example.com", PASSWORD).await.expect("active account");
    assert_eq!(auth.verify_session(&issued.token).await.unwrap().user_id, user_id);
}

#[tokio::test]
async fn pending_credentials_are_stale_once_older_than_asked_and_not_once_active() {
    let (auth, pool) = service(None).await;
    let pending = create_account(&auth, "ada@example.com", CredentialStatus::Pending).await;
    create_account(&auth, "grace@example.com", CredentialStatus::Active).await;

    assert_eq!(auth.stale_pending_signups(Duration::from_secs(3600)).await.unwrap(), Vec::<Uuid>::new(), "too young");
    assert_eq!(auth.stale_pending_signups(Duration::ZERO).await.unwrap(), vec![pending]);

    let mut conn = pool.acquire().await.unwrap();
    auth.activate(&mut conn, pending).await.unwrap();
    assert_eq!(auth.stale_pending_signups(Duration::ZERO).await.unwrap(), Vec::<Uuid>::new());
}

#[tokio::test]
async fn verify_session_refuses_garbled_tokens() {
    let (auth, _) = service(None).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let live = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    assert_eq!(auth.verify_session(&live).await.unwrap().user_id, user_id);

    for garbled in [
        String::new(),
        "not-a-token".to_owned(),
        live.to_uppercase(),
        format!("{live}0"),
        live[..63].to_owned(),
        format!(" {}", &live[1..]),
    ] {
        assert_refused(auth.verify_session(&garbled).await, &garbled);
    }
}

#[tokio::test]
async fn verify_session_refuses_an_unknown_token() {
    let (auth, _) = service(None).await;
    create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    auth.login("ada@example.com", PASSWORD).await.unwrap();

    assert_refused(auth.verify_session(&"ab".repeat(32)).await, "well-shaped but never issued");
}

#[tokio::test]
async fn verify_session_refuses_an_expired_token() {
    let (auth, pool) = service(None).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;

    common::expire_sessions(&pool, user_id).await;

    assert_refused(auth.verify_session(&token).await, "expired");
}

#[tokio::test]
async fn verify_session_refuses_a_revoked_token() {
    let (auth, pool) = service(None).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    let other = auth.login("ada@example.com", PASSWORD).await.unwrap().token;

    sqlx::query("UPDATE auth.sessions SET revoked_at = now() WHERE user_id = $1 AND token_hash = sha256($2::bytea)")
        .bind(user_id)
        .bind(token.as_bytes())
        .execute(&pool)
        .await
        .unwrap();

    assert_refused(auth.verify_session(&token).await, "revoked");
    assert!(auth.verify_session(&other).await.is_ok(), "revoking one session revoked another");
}

#[tokio::test]
async fn logout_revokes_the_session_and_only_that_session() {
    let (auth, pool) = service(None).await;
    create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    let other = auth.login("ada@example.com", PASSWORD).await.unwrap().token;

    auth.logout(&token).await.unwrap();

    assert_refused(auth.verify_session(&token).await, "logged out");
    assert_eq!(count(&pool, "SELECT count(*) FROM auth.sessions WHERE revoked_at IS NOT NULL").await, 1);
    assert!(auth.verify_session(&other).await.is_ok());
    // A second logout with the same token is refused like any dead token.
    let again = auth.logout(&token).await.expect_err("second logout");
    assert_eq!(again.kind, ErrorKind::Unauthorized);
}

#[tokio::test]
async fn delete_credentials_removes_the_account_and_its_sessions() {
    let (auth, pool) = service(None).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let keep = create_account(&auth, "bob@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    let bobs = auth.login("bob@example.com", PASSWORD).await.unwrap().token;

    let mut conn = pool.acquire().await.unwrap();
    auth.delete_credentials(&mut conn, user_id).await.unwrap();

    let q = format!("SELECT count(*) FROM auth.credentials WHERE user_id = '{user_id}'");
    assert_eq!(count(&pool, &q).await, 0);
    let q = format!("SELECT count(*) FROM auth.sessions WHERE user_id = '{user_id}'");
    assert_eq!(count(&pool, &q).await, 0);
    assert_refused(auth.verify_session(&token).await, "session of deleted credentials");
    let err = auth.login("ada@example.com", PASSWORD).await.expect_err("deleted account");
    assert_eq!(err.code, "invalid_credentials");
    assert_eq!(auth.verify_session(&bobs).await.unwrap().user_id, keep, "another user's session went too");
    // The email is free again.
    common::try_create_account(&auth, Uuid::new_v4(), "ada@example.com", CredentialStatus::Active)
        .await
        .expect("email freed by the deletion");
}

// --- helpers ---

fn assert_refused<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{what}");
    assert_eq!(err.code, "unauthorized", "{what}");
}
