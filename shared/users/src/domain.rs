//! Users' values and rules.

use archlab_kernel::{Email, Error};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A person's display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl<'de> Deserialize<'de> for DisplayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        DisplayName::parse(&String::deserialize(d)?).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl DisplayName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Exactly what [`DisplayName::parse`] accepts, as a JSON Schema pattern (so no
    /// `maxLength`: the limit counts the trimmed name). Optional white space (Rust's
    /// `char::is_whitespace`, spelled out: regex engines' `\s` differ), then 1 to 100
    /// characters without a control character (`char::is_control`) that neither begin nor end
    /// with white space, then optional white space.
    pub const PATTERN: &str = concat!(
        r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
        r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]",
        r"(?:[^\u0000-\u001f\u007f-\u009f]{0,98}",
        r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f])?",
        r"[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
    );

    fn schema_builder() -> utoipa::openapi::ObjectBuilder {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .min_length(Some(1))
            .pattern(Some(Self::PATTERN))
    }

    /// Its OpenAPI schema: the length and character rules, as [`DisplayName::PATTERN`].
    pub fn schema() -> utoipa::openapi::Object {
        Self::schema_builder().build()
    }

    /// [`DisplayName::schema`] or `null`, for a field that may be left out.
    pub fn optional_schema() -> utoipa::openapi::Object {
        archlab_kernel::openapi::nullable(Self::schema_builder())
    }

    /// Trim and check a name.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(Error::validation("name must not be empty"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(Error::validation(format!("name must be at most {} characters", Self::MAX_CHARS)));
        }
        if s.chars().any(char::is_control) {
            return Err(Error::validation("name must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a user may buy; stored in `users.profiles.status` under its serde name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// May use everything.
    Active,
    /// Blocked from purchases.
    Suspended,
}

impl UserStatus {
    /// The stored name: `active` or `suspended`.
    pub fn as_str(self) -> &'static str {
        archlab_kernel::wire::name(&self)
    }

    /// The status stored as `s`; a name this build does not know may not buy.
    fn from_db(s: &str) -> Self {
        archlab_kernel::wire::parse(s).unwrap_or(UserStatus::Suspended)
    }
}

/// What a user wants to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Preferences {
    /// Email a receipt for each purchase (default on).
    pub email_receipts: bool,
    /// Marketing emails (default off).
    pub marketing_emails: bool,
}

/// A user's profile as every caller sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    /// Same id as the user's credentials.
    pub user_id: Uuid,
    /// Contact address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the user may buy.
    pub status: UserStatus,
    /// What the user wants to receive.
    pub preferences: Preferences,
    /// When the profile was created.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ProfileRow {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub status: String,
    pub email_receipts: bool,
    pub marketing_emails: bool,
    pub created_at: DateTime<Utc>,
}

impl From<ProfileRow> for Profile {
    fn from(r: ProfileRow) -> Self {
        Profile {
            user_id: r.user_id,
            email: r.email,
            name: r.name,
            status: UserStatus::from_db(&r.status),
            preferences: Preferences { email_receipts: r.email_receipts, marketing_emails: r.marketing_emails },
            created_at: r.created_at,
        }
    }
}

/// A profile to create at signup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewProfile {
    /// The id the credentials were created with.
    pub user_id: Uuid,
    /// Normalised email.
    pub email: Email,
    /// Display name.
    pub name: DisplayName,
}

/// A partial update of one's own profile (`PATCH /api/users/me`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// New display name (same rules as at signup).
    #[schema(schema_with = DisplayName::optional_schema)]
    pub name: Option<String>,
    /// Preferences to change.
    pub preferences: Option<PreferencesPatch>,
}

/// Preferences to change; absent fields stay as they are.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesPatch {
    /// See [`Preferences::email_receipts`].
    pub email_receipts: Option<bool>,
    /// See [`Preferences::marketing_emails`].
    pub marketing_emails: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_pattern_accepts_exactly_what_parse_accepts() {
        let pattern = regex::Regex::new(DisplayName::PATTERN).expect("the pattern compiles");
        let max = DisplayName::MAX_CHARS;
        let mut samples: Vec<String> = ["Ada", "  Ada  ", "\tAda\n", "Ada Lovelace", "名前", "\u{85}Ada\u{3000}", ""]
            .into_iter()
            .chain(["   ", "\t", "Ada\u{7}", "\u{1c}Ada", "A\u{85}B", "\u{0}", "Ada\u{9f}"])
            .map(str::to_owned)
            .chain([format!(" {} ", "a".repeat(max)), "a".repeat(max + 1), format!("a{}a", " ".repeat(max - 2))])
            .collect();
        // And random ones, over an alphabet of the characters the rules tell apart.
        let alphabet = ['a', 'é', ' ', '\t', '\n', '\u{1c}', '\u{7f}', '\u{85}', '\u{a0}', '\u{2028}', '\u{3000}'];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..3000 {
            let len = [next(4), max - 2 + next(5)][next(2)];
            samples.push((0..len).map(|_| alphabet[next(alphabet.len())]).collect());
        }
        for s in samples {
            assert_eq!(pattern.is_match(&s), DisplayName::parse(&s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn stored_statuses_match_the_migration() {
        // 2001_profiles.sql allows exactly these in `profiles.status`, `active` by default.
        for (status, stored) in [(UserStatus::Active, "active"), (UserStatus::Suspended, "suspended")] {
            assert_eq!(status.as_str(), stored);
            assert_eq!(UserStatus::from_db(stored), status);
        }
        assert_eq!(UserStatus::from_db("banned"), UserStatus::Suspended, "unknown must not buy");
    }
}
