//! Optional Redis cache-aside for session checks.
//!
//! A hit skips the database; the cached entry carries the expiry, so an expired session is
//! refused even from cache. Logout writes a tombstone rather than deleting the entry, and a
//! check only fills an absent key (`SET NX`): a check that read the row just before the
//! logout committed cannot put the revoked session back. Redis is optional: any Redis error
//! is logged and the database answers instead, so a Redis outage costs latency, not
//! correctness.

use crate::Session;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, ExistenceCheck, SetExpiry, SetOptions};
use std::time::Duration;

/// Longest time a session stays cached.
const MAX_TTL_SECS: u64 = 60;
/// What a revoked token's key holds.
const REVOKED: &str = "revoked";
/// A Redis call slower than this is treated as a miss.
const CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// A session cache in Redis.
#[derive(Clone)]
pub struct SessionCache {
    conn: ConnectionManager,
}

impl SessionCache {
    /// Connect to `url` (`redis://127.0.0.1:6379`).
    pub async fn connect(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = tokio::time::timeout(Duration::from_secs(3), ConnectionManager::new(client))
            .await
            .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
        Ok(Self { conn })
    }

    /// Connect when a URL is given; an unreachable Redis is logged and leaves no cache, so
    /// a start-up without Redis serves from the database alone (the same in both builds).
    pub async fn connect_optional(url: Option<&str>) -> Option<Self> {
        let url = url?;
        match Self::connect(url).await {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(error = %e, "Redis unreachable; running without the session cache");
                None
            }
        }
    }

    fn key(digest: &[u8]) -> String {
        format!("archlab:session:{}", hex::encode(digest))
    }

    /// `Some(Ok(session))` on a hit, `Some(Err(()))` for a revoked token, `None` on a miss.
    pub(crate) async fn get(&self, digest: &[u8]) -> Option<Result<Session, ()>> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = match tokio::time::timeout(CALL_TIMEOUT, conn.get(Self::key(digest))).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "session cache read failed");
                None
            }
            Err(_) => None,
        };
        match raw.as_deref() {
            Some(REVOKED) => Some(Err(())),
            Some(s) => serde_json::from_str(s).ok().map(Ok),
            None => None,
        }
    }

    /// Cache a session read from the database, only if its key is absent (`SET NX`): a
    /// tombstone written by a logout that committed after that read must win.
    pub(crate) async fn put(&self, digest: &[u8], session: &Session) {
        let remaining = (session.expires_at - chrono::Utc::now()).num_seconds();
        let Ok(remaining) = u64::try_from(remaining) else { return };
        let ttl = remaining.min(MAX_TTL_SECS);
        if ttl == 0 {
            return;
        }
        let Ok(value) = serde_json::to_string(session) else { return };
        let mut conn = self.conn.clone();
        let only_if_absent =
            SetOptions::default().conditional_set(ExistenceCheck::NX).with_expiration(SetExpiry::EX(ttl));
        // The reply is `OK` when written and nil when the key existed; either is fine.
        let r: Result<Result<redis::Value, _>, _> =
            tokio::time::timeout(CALL_TIMEOUT, conn.set_options(Self::key(digest), value, only_if_absent)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "session cache write failed");
        }
    }

    /// Mark the token revoked for as long as any cached copy could live.
    pub(crate) async fn forget(&self, digest: &[u8]) {
        let mut conn = self.conn.clone();
        let r: Result<Result<(), _>, _> =
            tokio::time::timeout(CALL_TIMEOUT, conn.set_ex(Self::key(digest), REVOKED, MAX_TTL_SECS)).await;
        if !matches!(r, Ok(Ok(()))) {
            tracing::warn!("session cache delete failed; the entry lives at most {MAX_TTL_SECS}s");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    /// The race a logout can lose: a check reads the live row, the logout commits and writes
    /// its tombstone, then the check caches what it read. The tombstone must survive.
    #[tokio::test]
    async fn a_check_that_read_the_row_before_a_logout_cannot_revive_the_token() {
        let cache = SessionCache::connect(&archlab_testkit::redis_url().await).await.expect("Redis");
        let digest = Uuid::new_v4().into_bytes();
        let live =
            Session { user_id: Uuid::new_v4(), expires_at: chrono::Utc::now() + chrono::Duration::seconds(3600) };

        cache.forget(&digest).await; // the logout's tombstone
        cache.put(&digest, &live).await; // the check that read the row before the logout

        assert_eq!(cache.get(&digest).await, Some(Err(())), "the revoked token must stay revoked");

        // Absent keys are still filled.
        let other = Uuid::new_v4().into_bytes();
        cache.put(&other, &live).await;
        assert_eq!(cache.get(&other).await, Some(Ok(live)));
    }
}
