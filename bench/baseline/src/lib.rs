//! The baseline: `GET /api/users/me` written by hand, the floor the monolith is judged
//! against ("the monolith reaches at least 0.9x the baseline's throughput").
//!
//! It runs exactly the two statements the monolith runs for that route with Redis off —
//! auth's session lookup (shared/auth/src/service.rs, `verify_session`) and users' profile
//! read (shared/users/src/service.rs, `SELECT_PROFILE`) — on a pool opened the same way
//! (`archlab_kernel::config::DatabaseArgs`: the same variables, the same default size, the
//! same sqlx features), and answers the same JSON. What it leaves out is what the monolith
//! is measured for: ports, `Arc<dyn Trait>` calls, the authenticator extension, tower layers,
//! spans and logs.
//!
//! It owns no schema: it reads the database the monolith created, migrated and was seeded
//! through (`MONOLITH_DATABASE`), and refuses to start on one without the monolith's tables.
//!
//! It is a plain `main` over [`Baseline::build`] and [`Baseline::run_until_stopped`] rather
//! than an `archlab_kernel::Server`: it has no handle, no background task and no entry in
//! `archlab_kernel::processes`, which that trait would ask for.

use anyhow::Context;
use archlab_kernel::Error;
use archlab_kernel::config::DatabaseArgs;
use archlab_kernel::http::BearerToken;
use archlab_kernel::processes::MONOLITH;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use uuid::Uuid;

const DATABASE: (&str, &str) = MONOLITH.database.expect("the monolith has a database");

/// Where the baseline listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8070";

/// auth's session lookup, as `AuthService::verify_session` runs it.
const SELECT_SESSION: &str =
    "SELECT user_id, expires_at FROM auth.sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()";

/// users' profile read, as `UsersService::get_profile` runs it.
const SELECT_PROFILE: &str =
    "SELECT p.user_id, p.email, p.name, p.status, f.email_receipts, f.marketing_emails, p.created_at
     FROM users.profiles p JOIN users.preferences f USING (user_id) WHERE p.user_id = $1";

/// Its command line and environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "archlab-baseline", about = "GET /api/users/me by hand: the floor the monolith is judged against")]
pub struct Config {
    /// Where to listen; loopback addresses only.
    #[arg(long, env = "BASELINE_ADDR", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// The monolith's database, created, migrated and seeded by the monolith.
    #[arg(long, env = DATABASE.0, default_value = DATABASE.1)]
    pub database: String,
    /// PostgreSQL server and pool size, as the monolith reads them.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// A bound baseline, its pool open.
pub struct Baseline {
    listener: TcpListener,
    pool: PgPool,
}

impl Baseline {
    /// Open the pool, check the monolith's tables are there and bind; nothing is served yet.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if !config.addr.ip().is_loopback() {
            anyhow::bail!("the baseline listens on loopback only; {} is not a loopback address", config.addr);
        }
        let pool = config
            .db
            .open(&config.database)
            .await
            .with_context(|| format!("opening database {} on {}", config.database, config.db.database_url))?;
        let seeded: bool = sqlx::query_scalar(
            "SELECT to_regclass('auth.sessions') IS NOT NULL AND to_regclass('users.profiles') IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .context("looking for the monolith's tables")?;
        if !seeded {
            anyhow::bail!(
                "database {} has no auth.sessions or users.profiles: start the monolith on it first, it creates them",
                config.database
            );
        }
        let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
        Ok(Self { listener, pool })
    }

    /// The address actually bound.
    pub fn addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener.local_addr().context("reading the bound address")
    }

    /// Serve until `shutdown` completes.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        axum::serve(self.listener, router(self.pool)).with_graceful_shutdown(shutdown).await.context("serving HTTP")
    }
}

/// The route, `GET /api/users/me`, over `pool`; and `GET /health` (200, no body), which the
/// harness polls before it sends load.
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/api/users/me", axum::routing::get(me))
        .route("/health", axum::routing::get(|| async {}))
        .with_state(pool)
}

/// The profile as the monolith answers it (`archlab_users::Profile`'s JSON).
#[derive(Serialize)]
struct Profile {
    user_id: Uuid,
    email: String,
    name: String,
    status: String,
    preferences: Preferences,
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct Preferences {
    email_receipts: bool,
    marketing_emails: bool,
}

type ProfileRow = (Uuid, String, String, String, bool, bool, DateTime<Utc>);

async fn me(State(pool): State<PgPool>, headers: HeaderMap) -> Response {
    match profile(&pool, &headers).await {
        Ok(profile) => axum::Json(profile).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn profile(pool: &PgPool, headers: &HeaderMap) -> Result<Profile, Error> {
    let refused = || Error::unauthorized("the token is unknown, expired or revoked");
    let BearerToken(token) = BearerToken::from_headers(headers)?;
    // The shape auth issues (64 lower-case hex): anything else is refused before any lookup.
    if token.len() != 64 || !token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(refused());
    }
    let digest = Sha256::digest(token.as_bytes()).to_vec();
    let session: Option<(Uuid, DateTime<Utc>)> =
        sqlx::query_as(SELECT_SESSION).bind(&digest).fetch_optional(pool).await?;
    let (user_id, _expires_at) = session.ok_or_else(refused)?;
    let row: Option<ProfileRow> = sqlx::query_as(SELECT_PROFILE).bind(user_id).fetch_optional(pool).await?;
    let (user_id, email, name, status, email_receipts, marketing_emails, created_at) =
        row.ok_or_else(|| Error::not_found("user"))?;
    Ok(Profile {
        user_id,
        email,
        name,
        status,
        preferences: Preferences { email_receipts, marketing_emails },
        created_at,
    })
}
