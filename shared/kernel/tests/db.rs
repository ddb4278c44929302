//! `db::ensure_database` and `db::migrate` against the real PostgreSQL server.
//!
//! Covers: creating a database is idempotent (also when two callers race), names that are
//! not plain identifiers are refused before any SQL runs, and two domains migrated into one
//! database each keep their own `<schema>._sqlx_migrations` table, so a second run is a
//! no-op instead of a version clash.

use archlab_kernel::db;
use archlab_testkit::{database_url, fresh_database_name, fresh_pool};
use sqlx::PgPool;

#[tokio::test]
async fn ensure_database_creates_once_and_is_idempotent() {
    let url = database_url().await;
    let name = fresh_database_name("kernel_db");
    assert!(!database_exists(&url, &name).await);

    db::ensure_database(&url, &name).await.expect("first call creates it");
    assert!(database_exists(&url, &name).await, "database {name} was not created");
    db::ensure_database(&url, &name).await.expect("second call is a no-op");
    assert!(database_exists(&url, &name).await);
}

#[tokio::test]
async fn ensure_database_tolerates_a_concurrent_creator() {
    let url = database_url().await;
    let name = fresh_database_name("kernel_race");

    let (a, b) = tokio::join!(db::ensure_database(&url, &name), db::ensure_database(&url, &name));

    a.expect("first racer");
    b.expect("second racer");
    assert!(database_exists(&url, &name).await);
}

#[tokio::test]
async fn ensure_database_rejects_names_that_are_not_plain_identifiers() {
    let url = database_url().await;
    for bad in ["", "has-dash", "has space", "x\"; DROP DATABASE postgres; --", "dotted.name", "naïve"] {
        let err = db::ensure_database(&url, bad).await.expect_err(bad);
        assert!(matches!(err, sqlx::Error::Configuration(_)), "{bad:?} gave {err:?}");
    }
}

#[tokio::test]
async fn two_domains_keep_separate_migration_tables_and_a_rerun_is_a_no_op() {
    let pool = fresh_pool("kernel_migrate").await;

    migrate_auth_and_users(&pool).await;

    assert_eq!(versions(&pool, "auth").await, vec![1001]);
    assert_eq!(versions(&pool, "users").await, vec![2001]);
    let shared: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations')::text").fetch_one(&pool).await.unwrap();
    assert_eq!(shared, None, "migrations were recorded in a shared public table");
    // Each domain's tables live in its own schema.
    for table in ["auth.credentials", "auth.sessions", "auth.outbox", "users.profiles", "users.preferences"] {
        assert!(table_exists(&pool, table).await, "{table} missing after migrate");
    }

    // The second run sees every version applied and changes nothing.
    migrate_auth_and_users(&pool).await;
    assert_eq!(versions(&pool, "auth").await, vec![1001]);
    assert_eq!(versions(&pool, "users").await, vec![2001]);
}

// --- helpers ---

/// What `archlab_auth::migrate` and `archlab_users::migrate` do.
async fn migrate_auth_and_users(pool: &PgPool) {
    db::migrate(pool, sqlx::migrate!("../auth/migrations"), "auth").await.expect("auth migrations");
    archlab_kernel::outbox::create_table(pool, "auth").await.expect("auth outbox");
    db::migrate(pool, sqlx::migrate!("../users/migrations"), "users").await.expect("users migrations");
}

/// The successfully applied versions recorded in `<schema>._sqlx_migrations`.
async fn versions(pool: &PgPool, schema: &str) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {schema}._sqlx_migrations WHERE success ORDER BY version"
    )))
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("{schema}._sqlx_migrations: {e}"))
}

async fn table_exists(pool: &PgPool, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(pool).await.unwrap()
}

async fn database_exists(url: &str, name: &str) -> bool {
    let admin = archlab_kernel::db::connect(url, "postgres", 1).await.expect("connect to the postgres database");
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&admin)
        .await
        .unwrap()
}
