//! The users domain: profiles and preferences.
//!
//! Read top to bottom: [`domain`] (the values and rules), [`UsersApi`] (the port other domains
//! call: the monolith binds it to [`UsersService`] in-process, the microservices to a remote
//! client), [`UsersService`] (the application service and its store), [`http::router`] (the
//! public routes under `/api/users`). Tables live in the `users` schema, created by
//! [`migrate`].

pub mod domain;
pub mod http;
mod service;

pub use domain::{DisplayName, NewProfile, Preferences, PreferencesPatch, Profile, ProfilePatch, UserStatus};
pub use service::UsersService;

use archlab_kernel::Result;
use async_trait::async_trait;
use uuid::Uuid;

/// The schema that holds this domain's tables.
pub const SCHEMA: &str = "users";

/// The error codes users answers (the generic ones are in `archlab_kernel::codes`).
pub mod codes {
    archlab_kernel::error_codes! {
        /// 409: a create for a user id that already has a profile with another email.
        PROFILE_EXISTS = "profile_exists";
    }
}

/// Users' fault points (see `archlab_kernel::Faults`).
pub mod faults {
    use archlab_kernel::faults::points;
    /// Fails creating a profile, after its rows are written and before they commit.
    pub const CREATE_PROFILE: &str = points::USERS_CREATE_PROFILE.name;
    /// Fails or slows reading a profile, before the read.
    pub const GET_PROFILE: &str = points::USERS_GET_PROFILE.name;
    /// Every fault point of this domain: what a process hosting it reaches.
    pub const ALL: &[&str] = &[CREATE_PROFILE, GET_PROFILE];
}

/// What other domains may ask of users.
#[async_trait]
pub trait UsersApi: Send + Sync + 'static {
    /// Create a profile with default preferences; repeating the same call is a no-op.
    async fn create_profile(&self, new: NewProfile) -> Result<Profile>;
    /// A user's profile, or `not_found`.
    async fn get_profile(&self, user_id: Uuid) -> Result<Profile>;
    /// Remove a profile and its preferences; removing one that does not exist is a no-op.
    async fn delete_profile(&self, user_id: Uuid) -> Result<()>;
}

/// Create the `users` schema's tables (tracked in `users._sqlx_migrations`).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    archlab_kernel::db::migrate(pool, sqlx::migrate!("./migrations"), SCHEMA).await
}
