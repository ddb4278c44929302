//! The auth application service and its store (the only code that touches `auth.*`).

use crate::domain::{is_token_shaped, new_token, token_digest};
use crate::limits::{AccountLimit, HashGate};
use crate::{AuditAction, AuthApi, CredentialStatus, IssuedToken, Password, Session, SessionCache, codes, faults};
use archlab_kernel::config::AbuseArgs;
use archlab_kernel::http::{Authenticator, BearerToken, Caller};
use archlab_kernel::{Email, Error, Faults, Result};
use archlab_notifications::{NotificationEvent, TOPIC};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use uuid::Uuid;

/// Credentials and sessions over the `auth` schema.
#[derive(Clone)]
pub struct AuthService {
    pool: PgPool,
    cache: Option<SessionCache>,
    session_ttl: Duration,
    faults: Faults,
    accounts: AccountLimit,
    hashes: HashGate,
}

impl AuthService {
    /// A service over `pool`; sessions live `session_ttl`; `cache` is the optional Redis.
    /// The per-account limit and the hashing cap start at their defaults
    /// ([`AbuseArgs::DEFAULT`]); binaries set what their configuration says with
    /// [`AuthService::with_limits`].
    pub fn new(pool: PgPool, cache: Option<SessionCache>, session_ttl: Duration, faults: Faults) -> Self {
        Self {
            pool,
            cache,
            session_ttl,
            faults,
            accounts: AccountLimit::per_hour(0),
            hashes: HashGate::new(0, Duration::ZERO),
        }
        .with_limits(&AbuseArgs::DEFAULT)
    }

    /// The same service with the per-account limit and hashing cap of `limits` (the
    /// per-address limit is the public edge's: see [`crate::AddressLimit`]).
    pub fn with_limits(mut self, limits: &AbuseArgs) -> Self {
        self.accounts = AccountLimit::per_hour(limits.auth_limit_per_account_per_hour);
        self.hashes = HashGate::from_args(limits);
        self
    }

    /// The cap on concurrent password hashes (tests and drills hold it full).
    pub fn hash_gate(&self) -> &HashGate {
        &self.hashes
    }

    /// Count one signup or login attempt for `email`; 429 `rate_limited` once the account's
    /// budget is spent. Login counts its own; the signup route calls this before hashing.
    pub fn count_attempt(&self, email: &str) -> Result<()> {
        self.accounts.check(email)
    }

    /// The pool, for flows that write auth and other tables in one transaction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Hash a password with argon2id, off the async threads (it takes tens of milliseconds)
    /// and within the hashing cap (503 `overloaded` when no slot frees in time).
    #[tracing::instrument(level = "debug", name = "auth.hash_password", skip_all, err)]
    pub async fn hash_password(&self, password: &Password) -> Result<String> {
        let password = password.clone();
        self.hashes.run(move |memory| crate::hashing::hash(memory, password.expose())).await?
    }

    /// Write credentials on the caller's connection; 409 `email_taken` if the email is used.
    #[tracing::instrument(level = "debug", name = "auth.create_credentials", skip_all, fields(%user_id), err)]
    pub async fn insert_credentials(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        email: &Email,
        password_hash: &str,
        status: CredentialStatus,
    ) -> Result<()> {
        self.faults.check(faults::CREATE_CREDENTIALS).await?;
        let r =
            sqlx::query("INSERT INTO auth.credentials (user_id, email, password_hash, status) VALUES ($1, $2, $3, $4)")
                .bind(user_id)
                .bind(email.as_str())
                .bind(password_hash)
                .bind(status.as_str())
                .execute(&mut *conn)
                .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.as_database_error().is_some_and(|d| d.is_unique_violation()) => {
                Err(Error::conflict(codes::EMAIL_TAKEN, "an account with this email already exists"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Turn pending credentials into an active account.
    pub async fn activate(&self, conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE auth.credentials SET status = $2 WHERE user_id = $1")
            .bind(user_id)
            .bind(CredentialStatus::Active.as_str())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Users whose credentials have been `pending` for longer than `older_than`: signups a
    /// saga started and never finished (the process died, or its compensation failed).
    pub async fn stale_pending_signups(&self, older_than: Duration) -> Result<Vec<Uuid>> {
        let stale = sqlx::query_scalar(
            "SELECT user_id FROM auth.credentials WHERE status = $1 AND created_at < now() - make_interval(secs => $2)",
        )
        .bind(CredentialStatus::Pending.as_str())
        .bind(older_than.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        Ok(stale)
    }

    /// Remove credentials (and their sessions): a saga's compensation.
    #[tracing::instrument(level = "debug", name = "auth.delete_credentials", skip_all, fields(%user_id), err)]
    pub async fn delete_credentials(&self, conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM auth.credentials WHERE user_id = $1").bind(user_id).execute(&mut *conn).await?;
        Ok(())
    }

    /// Append to the audit trail on the caller's connection.
    pub async fn audit(&self, conn: &mut PgConnection, user_id: Uuid, action: AuditAction) -> Result<()> {
        sqlx::query("INSERT INTO auth.audit_log (user_id, action) VALUES ($1, $2)")
            .bind(user_id)
            .bind(action.as_str())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Put the welcome notification into `auth.outbox` on the caller's connection.
    pub async fn enqueue_welcome(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        email: &Email,
        name: &str,
    ) -> Result<()> {
        let event = NotificationEvent::welcome(user_id, email.as_str(), name);
        archlab_kernel::outbox::enqueue(conn, crate::SCHEMA, event.event_id, TOPIC, &event).await
    }

    /// Start a session on the caller's connection; the token is returned once, only its
    /// digest is stored.
    pub async fn issue_session(&self, conn: &mut PgConnection, user_id: Uuid) -> Result<IssuedToken> {
        let token = new_token();
        let ttl = chrono::Duration::from_std(self.session_ttl).map_err(Error::internal)?;
        let expires_at: DateTime<Utc> =
            sqlx::query_scalar("INSERT INTO auth.sessions (token_hash, user_id, expires_at) VALUES ($1, $2, now() + $3) RETURNING expires_at")
                .bind(token_digest(&token))
                .bind(user_id)
                .bind(ttl)
                .fetch_one(&mut *conn)
                .await?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Exchange email and password for a new session. The attempt is counted against the
    /// account first (429 once its budget is spent, before any hashing), then the password
    /// is checked within the hashing cap.
    #[tracing::instrument(level = "debug", name = "auth.login", skip_all, err)]
    pub async fn login(&self, email: &str, password: &str) -> Result<IssuedToken> {
        let invalid = || {
            Error::new(
                archlab_kernel::ErrorKind::Unauthorized,
                codes::INVALID_CREDENTIALS,
                "email or password is wrong",
            )
        };
        // A malformed email cannot match, but is checked like any other so timing tells nothing.
        let email = Email::parse(email).map(|e| e.as_str().to_owned()).unwrap_or_default();
        // Unknown and malformed addresses (all counted as "") are limited like any account.
        self.count_attempt(&email)?;
        let row: Option<(Uuid, String)> =
            sqlx::query_as("SELECT user_id, password_hash FROM auth.credentials WHERE email = $1 AND status = $2")
                .bind(&email)
                .bind(CredentialStatus::Active.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let (user_id, stored) = row.unzip();
        let password = password.to_owned();
        let matches = self
            .hashes
            // An unknown account is checked against a decoy, inside the cap like any other.
            .run(move |memory| crate::hashing::verify(memory, stored.as_deref(), &password))
            .await?;
        let user_id = user_id.filter(|_| matches).ok_or_else(invalid)?;
        let mut conn = self.pool.acquire().await?;
        self.issue_session(&mut conn, user_id).await
    }

    /// Revoke the session behind `token`; 401 if it is not live.
    #[tracing::instrument(level = "debug", name = "auth.logout", skip_all, err)]
    pub async fn logout(&self, token: &str) -> Result<()> {
        let session = self.verify_session(token).await?;
        let digest = token_digest(token);
        sqlx::query("UPDATE auth.sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(&digest)
            .execute(&self.pool)
            .await?;
        if let Some(cache) = &self.cache {
            cache.forget(&digest).await;
        }
        tracing::debug!(user_id = %session.user_id, "session revoked");
        Ok(())
    }
}

#[async_trait]
impl AuthApi for AuthService {
    #[tracing::instrument(level = "debug", name = "auth.verify_session", skip_all, err)]
    async fn verify_session(&self, token: &str) -> Result<Session> {
        let refused = || Error::unauthorized("the token is unknown, expired or revoked");
        if !is_token_shaped(token) {
            return Err(refused());
        }
        let digest = token_digest(token);
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(&digest).await
        {
            return match hit {
                Ok(session) if session.expires_at > Utc::now() => Ok(session),
                _ => Err(refused()),
            };
        }
        let row: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT user_id, expires_at FROM auth.sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
        )
        .bind(&digest)
        .fetch_optional(&self.pool)
        .instrument(archlab_kernel::trace::db_span("SELECT", "auth.sessions"))
        .await?;
        let (user_id, expires_at) = row.ok_or_else(refused)?;
        let session = Session { user_id, expires_at };
        if let Some(cache) = &self.cache {
            cache.put(&digest, &session).await;
        }
        Ok(session)
    }
}

/// Bearer token → [`Caller`], through whatever [`AuthApi`] binding it is given.
pub struct SessionAuthenticator(pub Arc<dyn AuthApi>);

#[async_trait]
impl Authenticator for SessionAuthenticator {
    async fn authenticate(&self, request: &http::request::Parts) -> Result<Caller> {
        let BearerToken(token) = BearerToken::from_headers(&request.headers)?;
        let session = self.0.verify_session(&token).await?;
        Ok(Caller { user_id: session.user_id })
    }
}
