//! Signup in the microservices: a SAGA with compensation.
//!
//! Credentials live in auth-service's database and the profile in users-service's, so no
//! transaction can span both. The steps, each a local commit or one remote call:
//!
//! 1. credentials written `pending` (this reserves the email; pending credentials cannot
//!    log in) with an audit entry;
//! 2. `UsersApi::create_profile` across the network (idempotent by user id);
//! 3. credentials activated, audit entry, welcome event in the outbox, session — one local
//!    transaction.
//!
//! If step 2 or 3 fails, the compensation deletes the credentials at once, so there are no
//! orphan credentials and the email is free again. When the failure leaves it unknown
//! whether the profile was written (a timeout, a lost connection), a delete of the profile
//! is owed: it is recorded in `saga.signup_compensations` in the same transaction and tried
//! at once, and [`SignupSaga::recover_stale`] retries it until users-service answers. If the
//! process dies between steps, recovery compensates the signups left `pending`;
//! [`SignupSaga::spawn_recovery`] runs it in the background. Compare
//! `monolith/src/signup_tx.rs`: one transaction, no compensation needed.

use archlab_auth::{AuditAction, AuthService, CredentialStatus, SignedUp, Signup, SignupFlow};
use archlab_kernel::{ErrorKind, Result};
use archlab_users::{NewProfile, UsersApi};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a signup may stay `pending` before recovery takes it for abandoned and
/// compensates it: far longer than a live saga takes (its remote call times out in seconds),
/// so recovery never undoes a signup that is still running.
const STALE_SIGNUP: Duration = Duration::from_secs(120);

/// How often the background recovery runs. Owed profile deletes wait at most this long for
/// their next attempt once users-service is back.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// [`SignupFlow`] as a saga across auth-service and users-service.
pub struct SignupSaga {
    /// Credentials, sessions, audit (local).
    pub auth: Arc<AuthService>,
    /// Profiles (remote).
    pub users: Arc<dyn UsersApi>,
}

#[async_trait]
impl SignupFlow for SignupSaga {
    #[tracing::instrument(level = "debug", name = "auth.signup", skip_all, err)]
    async fn signup(&self, signup: Signup) -> Result<SignedUp> {
        let password_hash = self.auth.hash_password(&signup.password).await?;
        let user_id = Uuid::new_v4();

        // Step 1: reserve the email.
        let mut tx = self.auth.pool().begin().await?;
        self.auth
            .insert_credentials(&mut tx, user_id, &signup.email, &password_hash, CredentialStatus::Pending)
            .await?;
        self.auth.audit(&mut tx, user_id, AuditAction::SignupStarted).await?;
        tx.commit().await?;

        // Step 2: the profile, in another service.
        let profile = NewProfile { user_id, email: signup.email.clone(), name: signup.name.clone() };
        if let Err(e) = self.users.create_profile(profile).await {
            // A clear refusal means nothing was written there; anything else (timeout, lost
            // connection) leaves the profile's fate unknown, so remove it too.
            let profile_unknown =
                !matches!(e.kind, ErrorKind::Conflict | ErrorKind::Unprocessable | ErrorKind::BadRequest);
            self.compensate(user_id, profile_unknown).await;
            return Err(e);
        }

        // Step 3: complete the account.
        let completed = async {
            let mut tx = self.auth.pool().begin().await?;
            self.auth.activate(&mut tx, user_id).await?;
            self.auth.audit(&mut tx, user_id, AuditAction::Signup).await?;
            self.auth.enqueue_welcome(&mut tx, user_id, &signup.email, signup.name.as_str()).await?;
            let session = self.auth.issue_session(&mut tx, user_id).await?;
            tx.commit().await?;
            Ok::<_, archlab_kernel::Error>(session)
        }
        .await;
        match completed {
            Ok(session) => Ok(SignedUp { user_id, token: session.token }),
            Err(e) => {
                self.compensate(user_id, true).await;
                Err(e)
            }
        }
    }
}

/// The schema of the saga's bookkeeping (auth-service's own migrations).
pub const SAGA_SCHEMA: &str = "saga";

/// Create the saga's bookkeeping table in auth-service's database.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    archlab_kernel::db::migrate(pool, sqlx::migrate!("./migrations"), SAGA_SCHEMA).await
}

impl SignupSaga {
    /// Undo step 1 at once (the credentials go, the email is free again) and, when the
    /// profile may exist, record that its delete is owed before trying it.
    /// True when the compensation is complete (nothing left owed).
    #[tracing::instrument(level = "debug", name = "auth.signup_compensate", skip(self))]
    async fn compensate(&self, user_id: Uuid, profile_may_exist: bool) -> bool {
        let undone = async {
            let mut tx = self.auth.pool().begin().await?;
            self.auth.delete_credentials(&mut tx, user_id).await?;
            self.auth.audit(&mut tx, user_id, AuditAction::SignupCompensated).await?;
            if profile_may_exist {
                sqlx::query("INSERT INTO saga.signup_compensations (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, archlab_kernel::Error>(())
        }
        .await;
        if let Err(e) = undone {
            // The credentials stay pending; recover_stale compensates them later.
            tracing::error!(%user_id, error = %e, "compensation could not remove the credentials; will retry");
            return false;
        }
        !profile_may_exist || self.remove_profile(user_id).await
    }

    /// Settle one owed profile delete; true when it is done.
    async fn remove_profile(&self, user_id: Uuid) -> bool {
        let outcome = self.users.delete_profile(user_id).await;
        let recorded = match &outcome {
            Ok(()) => {
                sqlx::query("DELETE FROM saga.signup_compensations WHERE user_id = $1")
                    .bind(user_id)
                    .execute(self.auth.pool())
                    .await
            }
            Err(e) => {
                tracing::warn!(%user_id, error = %e, "owed profile delete failed; will retry");
                sqlx::query(
                    "UPDATE saga.signup_compensations SET attempts = attempts + 1, last_error = $2 WHERE user_id = $1",
                )
                .bind(user_id)
                .bind(e.to_string())
                .execute(self.auth.pool())
                .await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(%user_id, error = %e, "could not record the compensation's progress");
        }
        outcome.is_ok()
    }

    /// Finish every compensation a crash or an outage left open: signups still `pending`
    /// after `older_than` (the process died mid-saga) are compensated, and every owed profile
    /// delete is retried. Returns how many compensations are now complete.
    pub async fn recover_stale(&self, older_than: Duration) -> Result<usize> {
        let stale = self.auth.stale_pending_signups(older_than).await?;
        let mut done = 0;
        for user_id in &stale {
            done += usize::from(self.compensate(*user_id, true).await);
        }
        let owed: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM saga.signup_compensations ORDER BY created_at")
            .fetch_all(self.auth.pool())
            .await?;
        for user_id in owed {
            done += usize::from(self.remove_profile(user_id).await);
        }
        Ok(done)
    }

    /// Run [`recover_stale`](Self::recover_stale) at once and then every
    /// `RECOVERY_INTERVAL` (60 s), for signups pending longer than `STALE_SIGNUP` (120 s),
    /// until `stop` is cancelled.
    pub fn spawn_recovery(self: Arc<Self>, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.recover_stale(STALE_SIGNUP).await {
                    tracing::warn!(error = %e, "signup recovery pass failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RECOVERY_INTERVAL) => {}
                }
            }
        })
    }

    /// Profile deletes still owed to users-service.
    pub async fn owed_profile_deletes(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM saga.signup_compensations").fetch_one(self.auth.pool()).await?)
    }
}
