//! The users application service and its store (the only code that touches `users.*`).

use crate::domain::{DisplayName, NewProfile, Profile, ProfilePatch, ProfileRow};
use crate::{UsersApi, codes, faults};
use archlab_kernel::{Error, Faults, Result};
use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;
use uuid::Uuid;

const SELECT_PROFILE: &str =
    "SELECT p.user_id, p.email, p.name, p.status, f.email_receipts, f.marketing_emails, p.created_at
     FROM users.profiles p JOIN users.preferences f USING (user_id) WHERE p.user_id = $1";

/// Profiles and preferences over the `users` schema.
#[derive(Clone)]
pub struct UsersService {
    pool: PgPool,
    faults: Faults,
}

impl UsersService {
    /// A service over `pool`, with fault point [`faults::CREATE_PROFILE`].
    pub fn new(pool: PgPool, faults: Faults) -> Self {
        Self { pool, faults }
    }

    /// Create a profile on the caller's connection, inside the caller's transaction: the
    /// monolith's signup uses this to make credentials and profile one atomic write.
    #[tracing::instrument(level = "debug", name = "users.create_profile", skip_all, fields(user_id = %new.user_id), err)]
    pub async fn create_profile_in(&self, conn: &mut PgConnection, new: &NewProfile) -> Result<Profile> {
        let inserted = sqlx::query(
            "INSERT INTO users.profiles (user_id, email, name) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(new.user_id)
        .bind(new.email.as_str())
        .bind(new.name.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            sqlx::query("INSERT INTO users.preferences (user_id) VALUES ($1)")
                .bind(new.user_id)
                .execute(&mut *conn)
                .await?;
        }
        self.faults.check(faults::CREATE_PROFILE).await?;
        let profile: Profile =
            sqlx::query_as::<_, ProfileRow>(SELECT_PROFILE).bind(new.user_id).fetch_one(&mut *conn).await?.into();
        // A retried create must describe the same person, not silently keep another.
        if profile.email != new.email.as_str() {
            return Err(Error::conflict(codes::PROFILE_EXISTS, "a different profile exists for this user id"));
        }
        Ok(profile)
    }

    /// Apply a partial update to one's own profile.
    #[tracing::instrument(level = "debug", name = "users.update_profile", skip_all, fields(%user_id), err)]
    pub async fn update_profile(&self, user_id: Uuid, patch: ProfilePatch) -> Result<Profile> {
        let name = patch.name.as_deref().map(DisplayName::parse).transpose()?;
        let prefs = patch.preferences.unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        let found =
            sqlx::query("UPDATE users.profiles SET name = COALESCE($2, name), updated_at = now() WHERE user_id = $1")
                .bind(user_id)
                .bind(name.as_ref().map(DisplayName::as_str))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if found == 0 {
            return Err(Error::not_found("user"));
        }
        sqlx::query(
            "UPDATE users.preferences SET email_receipts = COALESCE($2, email_receipts),
             marketing_emails = COALESCE($3, marketing_emails) WHERE user_id = $1",
        )
        .bind(user_id)
        .bind(prefs.email_receipts)
        .bind(prefs.marketing_emails)
        .execute(&mut *tx)
        .await?;
        let profile = sqlx::query_as::<_, ProfileRow>(SELECT_PROFILE).bind(user_id).fetch_one(&mut *tx).await?.into();
        tx.commit().await?;
        Ok(profile)
    }
}

#[async_trait]
impl UsersApi for UsersService {
    async fn create_profile(&self, new: NewProfile) -> Result<Profile> {
        let mut tx = self.pool.begin().await?;
        let profile = self.create_profile_in(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(profile)
    }

    #[tracing::instrument(level = "debug", name = "users.get_profile", skip_all, fields(%user_id), err)]
    async fn get_profile(&self, user_id: Uuid) -> Result<Profile> {
        self.faults.check(faults::GET_PROFILE).await?;
        sqlx::query_as::<_, ProfileRow>(SELECT_PROFILE)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .instrument(archlab_kernel::trace::db_span("SELECT", "users.profiles"))
            .await?
            .map(Profile::from)
            .ok_or_else(|| Error::not_found("user"))
    }

    #[tracing::instrument(level = "debug", name = "users.delete_profile", skip_all, fields(%user_id), err)]
    async fn delete_profile(&self, user_id: Uuid) -> Result<()> {
        // Preferences go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM users.profiles WHERE user_id = $1").bind(user_id).execute(&self.pool).await?;
        Ok(())
    }
}
