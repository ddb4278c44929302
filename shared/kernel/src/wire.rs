//! Wire names of plain enums, read back from their serde derive.
//!
//! A kind or a status is spelled once, by `#[serde(rename_all = "snake_case")]` on its enum.
//! [`name`] and [`parse`] read that very spelling, so SQL parameters, gRPC metadata and logs
//! use exactly the JSON names and no second table exists to drift from it.

use serde::de::DeserializeOwned;
use serde::de::value::{Error as NameError, StrDeserializer};
use serde::ser::{self, Impossible, Serialize};

/// The name serde writes for a unit variant: `"not_found"` for `ErrorKind::NotFound`.
///
/// # Panics
/// If `value` does not serialize as a unit variant (a bug in the caller's type).
pub fn name<T: Serialize>(value: &T) -> &'static str {
    match value.serialize(VariantName) {
        Ok(name) => name,
        Err(e) => panic!("{} has no wire name: {e}", std::any::type_name::<T>()),
    }
}

/// The unit variant serde reads from `name`, or an error naming the expected variants.
pub fn parse<T: DeserializeOwned>(name: &str) -> Result<T, UnknownName> {
    T::deserialize(StrDeserializer::<NameError>::new(name)).map_err(|e| UnknownName(e.to_string()))
}

/// A name that is none of the enum's variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownName(String);

/// A serializer that accepts only a unit variant and returns its name.
struct VariantName;

fn not_a_unit_variant() -> NameError {
    ser::Error::custom("not a unit enum variant")
}

macro_rules! refuse {
    ($($method:ident($($ty:ty),*);)*) => {$(
        fn $method(self, $(_: $ty),*) -> Result<Self::Ok, Self::Error> {
            Err(not_a_unit_variant())
        }
    )*};
}

impl ser::Serializer for VariantName {
    type Ok = &'static str;
    type Error = NameError;
    type SerializeSeq = Impossible<Self::Ok, Self::Error>;
    type SerializeTuple = Impossible<Self::Ok, Self::Error>;
    type SerializeTupleStruct = Impossible<Self::Ok, Self::Error>;
    type SerializeTupleVariant = Impossible<Self::Ok, Self::Error>;
    type SerializeMap = Impossible<Self::Ok, Self::Error>;
    type SerializeStruct = Impossible<Self::Ok, Self::Error>;
    type SerializeStructVariant = Impossible<Self::Ok, Self::Error>;

    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Self::Ok, Self::Error> {
        Ok(variant)
    }

    refuse! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32); serialize_i64(i64);
        serialize_u8(u8); serialize_u16(u16); serialize_u32(u32); serialize_u64(u64);
        serialize_f32(f32); serialize_f64(f64); serialize_char(char); serialize_str(&str);
        serialize_bytes(&[u8]); serialize_none(); serialize_unit(); serialize_unit_struct(&'static str);
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, _: &T) -> Result<Self::Ok, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Self::Error> {
        Err(not_a_unit_variant())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(not_a_unit_variant())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Light {
        Green,
        AmberFlashing,
    }

    #[test]
    fn names_are_the_serde_spelling_and_parse_back() {
        for light in [Light::Green, Light::AmberFlashing] {
            let json = serde_json::to_value(&light).unwrap();
            assert_eq!(name(&light), json.as_str().unwrap());
            assert_eq!(parse::<Light>(name(&light)).unwrap(), light);
        }
        assert_eq!(name(&Light::AmberFlashing), "amber_flashing");
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        let e = parse::<Light>("AmberFlashing").unwrap_err();
        assert!(e.to_string().contains("amber_flashing"), "{e}");
        assert!(parse::<Light>("").is_err());
    }

    #[test]
    #[should_panic(expected = "no wire name")]
    fn a_value_that_is_not_a_unit_variant_has_no_name() {
        name(&42);
    }
}
