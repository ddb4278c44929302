//! The auth domain: credentials, sessions, the audit trail and signup.
//!
//! Read top to bottom: [`domain`] (passwords, tokens, the validated [`Signup`]), the ports
//! ([`AuthApi`] for other domains, [`SignupFlow`] for the signup route), [`AuthService`]
//! (argon2id hashing, sessions stored hashed, an optional Redis cache-aside in [`SessionCache`]),
//! [`SessionAuthenticator`] (bearer token → caller), [`http::router`], and [`limits`]: the
//! per-account and per-address rate limits and the cap on concurrent password hashes.
//!
//! Signup spans two domains (credentials here, the profile in users). How the two writes are
//! made one is the distribution concern, so it is not here: the monolith implements
//! [`SignupFlow`] as one ACID transaction, the microservices as a saga with compensation.
//! Both use the building blocks [`AuthService`] exposes.

mod cache;
pub mod domain;
mod hashing;
pub mod http;
pub mod limits;
mod service;

pub use cache::SessionCache;
pub use domain::{AuditAction, CredentialStatus, IssuedToken, Password, Session, SignedUp, Signup, SignupRequest};
pub use limits::{AccountLimit, AddressLimit, HashGate};
pub use service::{AuthService, SessionAuthenticator};

use archlab_kernel::Result;
use async_trait::async_trait;

/// The schema that holds this domain's tables.
pub const SCHEMA: &str = "auth";

/// The error codes auth answers (the generic ones are in `archlab_kernel::codes`).
pub mod codes {
    archlab_kernel::error_codes! {
        /// 409: signup with an email already registered.
        EMAIL_TAKEN = "email_taken";
        /// 401: login with an unknown email or a wrong password.
        INVALID_CREDENTIALS = "invalid_credentials";
        /// 429: too many signups or logins from one address or for one account (`Retry-After`).
        RATE_LIMITED = "rate_limited";
        /// 503: every password-hashing slot stayed busy for the whole wait (`Retry-After`).
        OVERLOADED = "overloaded";
    }
}

/// Auth's fault points (see `archlab_kernel::Faults`).
pub mod faults {
    use archlab_kernel::faults::points;
    /// Refuses a credentials write: the first write of a signup, in both builds.
    pub const CREATE_CREDENTIALS: &str = points::AUTH_CREATE_CREDENTIALS.name;
    /// Every fault point of this domain: what a process hosting it reaches.
    pub const ALL: &[&str] = &[CREATE_CREDENTIALS];
}

/// What other domains may ask of auth.
#[async_trait]
pub trait AuthApi: Send + Sync + 'static {
    /// The live session behind a bearer token, or `unauthorized`.
    async fn verify_session(&self, token: &str) -> Result<Session>;
}

/// Creates an account across auth and users; bound differently in each build.
#[async_trait]
pub trait SignupFlow: Send + Sync + 'static {
    /// Create credentials, profile, audit entry and welcome notification, all or nothing.
    async fn signup(&self, signup: Signup) -> Result<SignedUp>;
}

/// Create the `auth` schema's tables, the outbox its events leave by included.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    archlab_kernel::db::migrate(pool, sqlx::migrate!("./migrations"), SCHEMA).await?;
    archlab_kernel::outbox::create_table(pool, SCHEMA).await?;
    Ok(())
}
