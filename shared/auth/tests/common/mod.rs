//! Helpers shared by the auth tests: a service on a fresh database, accounts made from the
//! same building blocks both builds' signup flows use.

#![allow(dead_code)]

use archlab_auth::{AuthService, CredentialStatus, Password, SessionCache};
use archlab_kernel::{Email, Faults, Result};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// The password every test account has.
pub const PASSWORD: &str = "correct horse battery";

/// An `AuthService` (sessions live an hour) over a fresh, migrated database.
pub async fn service(cache: Option<SessionCache>) -> (AuthService, PgPool) {
    let pool = archlab_testkit::fresh_pool("auth").await;
    archlab_auth::migrate(&pool).await.expect("auth migrations");
    (AuthService::new(pool.clone(), cache, Duration::from_secs(3600), Faults::default()), pool)
}

/// Credentials for a new user with [`PASSWORD`]; returns the user id.
pub async fn create_account(auth: &AuthService, email: &str, status: CredentialStatus) -> Uuid {
    let user_id = Uuid::new_v4();
    try_create_account(auth, user_id, email, status).await.expect("create credentials");
    user_id
}

/// Credentials for `user_id`, or the service's refusal.
pub async fn try_create_account(
    auth: &AuthService,
    user_id: Uuid,
    email: &str,
    status: CredentialStatus,
) -> Result<()> {
    let hash = auth.hash_password(&Password::parse(PASSWORD).unwrap()).await?;
    let mut conn = auth.pool().acquire().await.unwrap();
    auth.insert_credentials(&mut conn, user_id, &Email::parse(email).unwrap(), &hash, status).await
}

/// `SELECT count(*) ...` as a number.
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await.unwrap()
}

/// Move every session of `user_id` one second into the past.
pub async fn expire_sessions(pool: &PgPool, user_id: Uuid) {
    sqlx::query("UPDATE auth.sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await
        .expect("expire sessions");
}
