//! Signup in the monolith: ONE ACID transaction.
//!
//! Credentials (auth), profile and preferences (users), the audit entry and the welcome
//! event (outbox) commit together or not at all; a failure anywhere, or a crash before the
//! commit, leaves no row behind. Compare `microservices/auth-service/src/signup_saga.rs`,
//! where the same steps cross a network and need a saga with compensation.

use archlab_auth::{AuditAction, AuthService, CredentialStatus, SignedUp, Signup, SignupFlow};
use archlab_kernel::Result;
use archlab_users::{NewProfile, UsersService};
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

/// [`SignupFlow`] as one database transaction across the auth and users modules.
pub struct OneTransactionSignup {
    /// Credentials, sessions, audit.
    pub auth: Arc<AuthService>,
    /// Profiles.
    pub users: Arc<UsersService>,
}

#[async_trait]
impl SignupFlow for OneTransactionSignup {
    #[tracing::instrument(level = "debug", name = "auth.signup", skip_all, err)]
    async fn signup(&self, signup: Signup) -> Result<SignedUp> {
        let password_hash = self.auth.hash_password(&signup.password).await?;
        let user_id = Uuid::new_v4();
        let profile = NewProfile { user_id, email: signup.email.clone(), name: signup.name.clone() };

        let mut tx = self.auth.pool().begin().await?;
        self.auth.insert_credentials(&mut tx, user_id, &signup.email, &password_hash, CredentialStatus::Active).await?;
        self.users.create_profile_in(&mut tx, &profile).await?;
        self.auth.audit(&mut tx, user_id, AuditAction::Signup).await?;
        self.auth.enqueue_welcome(&mut tx, user_id, &signup.email, signup.name.as_str()).await?;
        let session = self.auth.issue_session(&mut tx, user_id).await?;
        tx.commit().await?;

        Ok(SignedUp { user_id, token: session.token })
    }
}
