//! Databases: created if missing, connected, and migrated one domain schema at a time.
//!
//! Each domain keeps its tables in its own PostgreSQL schema (`auth.*`, `users.*`, ...) and
//! records its migrations in its own table (`auth._sqlx_migrations`), so the monolith's one
//! database and the microservices' four databases run the very same migrations.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// Create database `name` on the server at `base_url` unless it exists.
pub async fn ensure_database(base_url: &str, name: &str) -> Result<(), sqlx::Error> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(sqlx::Error::Configuration(format!("invalid database name {name:?}").into()));
    }
    let mut admin = PgConnectOptions::from_str(base_url)?.database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        // Two processes may race to create it; losing that race is fine.
        if let Err(e) = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut admin).await {
            let raced = e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "42P04" || c == "23505");
            if !raced {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Create `name` if missing and open a pool of at most `max_connections` to it.
pub async fn connect(base_url: &str, name: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    ensure_database(base_url, name).await?;
    let options = PgConnectOptions::from_str(base_url)?.database(name);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Run one domain's migrations, tracked in `<schema>._sqlx_migrations`.
pub async fn migrate(
    pool: &PgPool,
    mut migrator: Migrator,
    schema: &'static str,
) -> Result<(), sqlx::migrate::MigrateError> {
    migrator.create_schema(schema);
    migrator.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
    migrator.run(pool).await
}
