//! Validated values, parsed once at the edge so the inside never re-checks.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A normalised (trimmed, lower-cased) email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Longest accepted address, in characters.
    pub const MAX_CHARS: usize = 254;

    /// Its OpenAPI schema: the length rule; the shape rules are in docs/api.md.
    pub fn schema() -> utoipa::openapi::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .max_length(Some(Self::MAX_CHARS))
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Email)))
            .build()
    }

    /// Trim, lower-case and check the shape of an address.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        let s = raw.trim().to_lowercase();
        let bad = |why: &str| Err(Error::validation(format!("email {why}")));
        if s.is_empty() {
            return bad("must not be empty");
        }
        if s.chars().count() > Self::MAX_CHARS {
            return bad(&format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("must not contain spaces or control characters");
        }
        let Some((local, domain)) = s.split_once('@') else { return bad("must contain '@'") };
        if local.is_empty() || domain.contains('@') {
            return bad("must have exactly one '@' and a local part");
        }
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return bad("must have a domain with a dot");
        }
        Ok(Self(s))
    }

    /// Wrap a value that was validated before it was stored.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Email::parse(&String::deserialize(d)?).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The currencies the lab's SaaS sells in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Currency {
    /// US dollar.
    USD,
    /// Euro.
    EUR,
    /// Pound sterling.
    GBP,
}

impl Currency {
    /// Every supported currency.
    pub const ALL: [Currency; 3] = [Currency::USD, Currency::EUR, Currency::GBP];

    /// Its OpenAPI schema: one of the ISO codes of [`Currency::ALL`].
    pub fn schema() -> utoipa::openapi::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(Self::ALL.map(Currency::code)))
            .build()
    }

    /// Parse an exact upper-case ISO code from the supported list.
    pub fn parse(raw: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|c| c.code() == raw)
            .ok_or_else(|| Error::validation("currency must be one of USD, EUR, GBP"))
    }

    /// The ISO code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::USD => "USD",
            Currency::EUR => "EUR",
            Currency::GBP => "GBP",
        }
    }
}

/// A positive amount in minor units of a supported currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Minor units (cents), 1 ..= [`Money::MAX_CENTS`].
    pub amount_cents: i64,
    /// Its currency.
    pub currency: Currency,
}

impl Money {
    /// One million in major units: the largest single purchase.
    pub const MAX_CENTS: i64 = 100_000_000;

    /// The OpenAPI schema of an amount in minor units: 1 to [`Money::MAX_CENTS`].
    pub fn amount_schema() -> utoipa::openapi::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(Self::MAX_CENTS))
            .build()
    }

    /// Check the amount's range and the currency.
    pub fn parse(amount_cents: i64, currency: &str) -> Result<Self, Error> {
        if !(1..=Self::MAX_CENTS).contains(&amount_cents) {
            return Err(Error::validation(format!("amount_cents must be between 1 and {}", Self::MAX_CENTS)));
        }
        Ok(Self { amount_cents, currency: Currency::parse(currency)? })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} {}", self.amount_cents / 100, self.amount_cents % 100, self.currency.code())
    }
}

/// Read an `i64` from any JSON number without a fractional part, as JSON Schema's `integer`
/// allows: `616.0` is 616, `616.5` is refused. For `#[serde(deserialize_with = ...)]` on a
/// request field whose schema says `integer`, so a client the contract allows is not refused.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::{Unexpected, Visitor};
    struct Whole;
    impl Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            // Every f64 in this range with no fraction converts exactly.
            let in_range = (-9.007_199_254_740_992e15..=9.007_199_254_740_992e15).contains(&v);
            if v.fract() == 0.0 && in_range { Ok(v as i64) } else { Err(E::invalid_value(Unexpected::Float(v), &self)) }
        }
    }
    d.deserialize_any(Whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_number_may_be_written_as_a_float_but_not_have_a_fraction() {
        #[derive(Deserialize)]
        struct N {
            #[serde(deserialize_with = "whole_number")]
            n: i64,
        }
        let read = |json: &str| serde_json::from_str::<N>(json).map(|v| v.n);
        assert_eq!(read(r#"{"n": 616}"#).unwrap(), 616);
        assert_eq!(read(r#"{"n": 616.0}"#).unwrap(), 616);
        assert_eq!(read(r#"{"n": 6.16e2}"#).unwrap(), 616);
        assert_eq!(read(r#"{"n": -3}"#).unwrap(), -3);
        for refused in [r#"{"n": 616.5}"#, r#"{"n": "616"}"#, r#"{"n": 1e300}"#, r#"{"n": 18446744073709551615}"#] {
            assert!(read(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn email_is_normalised() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn bad_emails_are_rejected() {
        for raw in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@.com",
            "ada@example..com",
        ] {
            let e = Email::parse(raw).unwrap_err();
            assert_eq!(e.code, "validation_failed", "{raw:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn money_bounds() {
        assert!(Money::parse(0, "USD").is_err());
        assert!(Money::parse(-5, "USD").is_err());
        assert!(Money::parse(Money::MAX_CENTS + 1, "USD").is_err());
        assert!(Money::parse(Money::MAX_CENTS, "EUR").is_ok());
        assert!(Money::parse(100, "usd").is_err());
        assert!(Money::parse(100, "XYZ").is_err());
        assert_eq!(Money::parse(1234, "GBP").unwrap().to_string(), "12.34 GBP");
    }
}
