//! Session checks with the Redis `SessionCache` in front of the database.
//!
//! Covers: a verified session is written to Redis under
//! `archlab:session:<hex sha256 of token>` with a bounded TTL; a cached entry is what
//! answers (one carrying a past expiry is refused even though the row is live); logout
//! replaces the entry with a tombstone that outranks a stale read of the row; a refused
//! token is never cached; and `connect_optional` gives no cache without a URL or a Redis.

mod common;

use archlab_auth::{AuthApi, CredentialStatus, SessionCache};
use archlab_kernel::ErrorKind;
use common::{PASSWORD, create_account, service};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn connect_optional_gives_a_cache_only_when_redis_answers() {
    assert!(SessionCache::connect_optional(None).await.is_none(), "no URL, no cache");
    // Port 1 on loopback refuses at once: the start-up carries on without a cache.
    assert!(SessionCache::connect_optional(Some("redis://127.0.0.1:1")).await.is_none());
    let url = archlab_testkit::redis_url().await;
    assert!(SessionCache::connect_optional(Some(&url)).await.is_some(), "Redis at {url} should answer");
}

#[tokio::test]
async fn a_verified_session_is_cached_under_the_token_digest() {
    let (auth, _) = service(Some(cache().await)).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    let mut redis = redis().await;
    let key = key_of(&token);
    assert!(!redis.exists::<_, bool>(&key).await.unwrap(), "login alone should not fill the cache");

    let session = auth.verify_session(&token).await.unwrap();

    assert_eq!(session.user_id, user_id);
    let cached: String = redis.get(&key).await.expect("the session should be cached after a verify");
    let cached: serde_json::Value = serde_json::from_str(&cached).unwrap();
    assert_eq!(cached["user_id"], user_id.to_string());
    let ttl: i64 = redis.ttl(&key).await.unwrap();
    assert!((1..=60).contains(&ttl), "cache TTL {ttl}s, expected at most a minute");
    // The token itself is nowhere in the key.
    assert!(!key.contains(&token));
    // A second verify is answered the same.
    assert_eq!(auth.verify_session(&token).await.unwrap(), session);
}

#[tokio::test]
async fn the_cached_entry_answers_and_its_expiry_is_still_checked() {
    let (auth, _) = service(Some(cache().await)).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    let mut redis = redis().await;
    // A cached entry that says the session is over, for a session whose row is live: only an
    // answer taken from the cache can refuse it.
    let stale = serde_json::json!({"user_id": user_id, "expires_at": "2000-01-01T00:00:00Z"});
    let _: () = redis.set_ex(key_of(&token), stale.to_string(), 30).await.unwrap();

    let err = auth.verify_session(&token).await.expect_err("cached entry has expired");

    assert_eq!(err.kind, ErrorKind::Unauthorized);
    let _: () = redis.del(key_of(&token)).await.unwrap();
    assert_eq!(auth.verify_session(&token).await.unwrap().user_id, user_id, "the row itself is live");
}

#[tokio::test]
async fn logout_replaces_the_cached_entry_with_a_tombstone_and_the_token_fails() {
    let (auth, pool) = service(Some(cache().await)).await;
    create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    let mut redis = redis().await;
    auth.verify_session(&token).await.unwrap();
    assert!(redis.exists::<_, bool>(key_of(&token)).await.unwrap());

    auth.logout(&token).await.unwrap();

    let entry: String = redis.get(key_of(&token)).await.unwrap();
    assert_eq!(entry, "revoked", "logout left the cached session in place");
    let err = auth.verify_session(&token).await.expect_err("logged out");
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    let revoked = common::count(&pool, "SELECT count(*) FROM auth.sessions WHERE revoked_at IS NOT NULL").await;
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn the_tombstone_outranks_a_check_that_read_the_row_before_logout_committed() {
    let (auth, pool) = service(Some(cache().await)).await;
    create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    auth.logout(&token).await.unwrap();
    // What a check racing the logout saw: the row still live.
    sqlx::query("UPDATE auth.sessions SET revoked_at = NULL").execute(&pool).await.unwrap();

    let err = auth.verify_session(&token).await.expect_err("the tombstone must win");

    assert_eq!(err.kind, ErrorKind::Unauthorized);
    let mut redis = redis().await;
    let entry: String = redis.get(key_of(&token)).await.unwrap();
    assert_eq!(entry, "revoked");
}

#[tokio::test]
async fn a_refused_token_is_not_cached() {
    let (auth, pool) = service(Some(cache().await)).await;
    let user_id = create_account(&auth, "ada@example.com", CredentialStatus::Active).await;
    let token = auth.login("ada@example.com", PASSWORD).await.unwrap().token;
    common::expire_sessions(&pool, user_id).await;
    let unknown = "cd".repeat(32);

    assert!(auth.verify_session(&token).await.is_err());
    assert!(auth.verify_session(&unknown).await.is_err());

    let mut redis = redis().await;
    assert!(!redis.exists::<_, bool>(key_of(&token)).await.unwrap());
    assert!(!redis.exists::<_, bool>(key_of(&unknown)).await.unwrap());
}

// --- helpers ---

async fn cache() -> SessionCache {
    let url = archlab_testkit::redis_url().await;
    SessionCache::connect(&url).await.unwrap_or_else(|e| panic!("Redis at {url}: {e}"))
}

/// A plain Redis connection, to look at the cache from outside.
async fn redis() -> MultiplexedConnection {
    let url = archlab_testkit::redis_url().await;
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.expect("connect to Redis")
}

fn key_of(token: &str) -> String {
    format!("archlab:session:{}", hex::encode(Sha256::digest(token.as_bytes())))
}
