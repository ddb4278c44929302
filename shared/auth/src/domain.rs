//! Auth's values and rules.

use archlab_kernel::{Email, Error};
use archlab_users::DisplayName;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A password that meets the length rules (8 to 128 characters; the upper bound keeps
/// hashing cost bounded). Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Shortest accepted password.
    pub const MIN_CHARS: usize = 8;
    /// Longest accepted password.
    pub const MAX_CHARS: usize = 128;

    /// Check the length rules.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let n = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&n) {
            return Err(Error::validation(format!(
                "password must be {} to {} characters",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Its OpenAPI schema: the length rules.
    pub fn schema() -> utoipa::openapi::Object {
        archlab_kernel::openapi::text(Self::MIN_CHARS, Self::MAX_CHARS).build()
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// The body of `POST /api/auth/signup`, as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Address to log in with: trimmed and lower-cased; one `@`, a domain with a dot.
    #[schema(schema_with = Email::schema)]
    pub email: String,
    /// Plain password (hashed before it is stored).
    #[schema(schema_with = Password::schema)]
    pub password: String,
    /// Display name for the profile: trimmed, no control characters.
    #[schema(schema_with = DisplayName::schema)]
    pub name: String,
}

/// A validated signup: every rule checked before anything is written.
#[derive(Debug, Clone)]
pub struct Signup {
    /// Normalised email.
    pub email: Email,
    /// Checked password.
    pub password: Password,
    /// Checked display name.
    pub name: DisplayName,
}

impl Signup {
    /// Check every field of a signup request.
    pub fn parse(req: SignupRequest) -> Result<Self, Error> {
        Ok(Self {
            email: Email::parse(&req.email)?,
            password: Password::parse(&req.password)?,
            name: DisplayName::parse(&req.name)?,
        })
    }
}

/// The answer to a successful signup.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedUp {
    /// The new user's id.
    pub user_id: Uuid,
    /// A session token, so the client is logged in at once.
    pub token: String,
}

/// A new session's token, shown to the client once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// Bearer token.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A verified, live session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Whose session.
    pub user_id: Uuid,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Whether credentials may log in yet; stored in `auth.credentials.status` under its serde name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    /// Written by the first step of a saga; cannot log in.
    Pending,
    /// A complete account.
    Active,
}

impl CredentialStatus {
    /// The stored name: `pending` or `active`.
    pub fn as_str(self) -> &'static str {
        archlab_kernel::wire::name(&self)
    }
}

/// What an audit-trail entry records; stored in `auth.audit_log.action` under its serde name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// An account was created (both builds).
    Signup,
    /// A saga reserved the email with pending credentials (microservices).
    SignupStarted,
    /// A saga undid its pending credentials (microservices).
    SignupCompensated,
}

impl AuditAction {
    /// The stored name, e.g. `signup_started`.
    pub fn as_str(self) -> &'static str {
        archlab_kernel::wire::name(&self)
    }
}

/// 256 random bits, hex-encoded.
pub(crate) fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What the database stores instead of the token.
pub(crate) fn token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Tokens we issue are 64 lower-case hex characters; anything else is refused before any
/// lookup.
pub(crate) fn is_token_shaped(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_length_rules() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert_eq!(format!("{:?}", Password::parse("secret-pass").unwrap()), "Password(..)");
    }

    #[test]
    fn stored_names_match_the_migration() {
        // 1001_auth.sql allows exactly these in `credentials.status`.
        assert_eq!(CredentialStatus::Pending.as_str(), "pending");
        assert_eq!(CredentialStatus::Active.as_str(), "active");
        assert_eq!(AuditAction::SignupCompensated.as_str(), "signup_compensated");
    }

    #[test]
    fn tokens_are_random_and_shaped() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(is_token_shaped(&a));
        assert!(!is_token_shaped("not-a-token"));
        assert_eq!(token_digest(&a).len(), 32);
    }
}
