//! Reading a request's JSON into its type, where an object means an object.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON array of its fields in
//! order, so `PATCH /api/users/me` with `[null, null]` would be read as `{}` and answered 200,
//! though the contract (docs/api.md) says the body is an object. [`from_value`] reads a
//! [`Value`] like `serde_json::from_value`, except that a struct, at any depth, accepts only
//! an object.

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde_json::{Error, Map, Value};

/// `serde_json::from_value`, refusing an array where a struct is expected.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(Strict(value))
}

/// A JSON value whose structs must be objects, and so must those inside it.
struct Strict(Value);

fn kind(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields { entries: map.into_iter(), next: None }),
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(kind(&other), &"a JSON object")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// An object's entries, each value read strictly too.
struct Fields {
    entries: <Map<String, Value> as IntoIterator>::IntoIter,
    next: Option<Value>,
}

impl<'de> de::MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else { return Ok(None) };
        self.next = Some(value);
        let key: StringDeserializer<Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self.next.take().ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        seed.deserialize(Strict(value))
    }
}

/// An array's items, each read strictly too.
struct Items(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|item| seed.deserialize(Strict(item))).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        flag: Option<bool>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: Option<String>,
        inner: Option<Inner>,
        #[serde(default)]
        tags: Vec<u32>,
    }

    #[test]
    fn objects_read_as_serde_json_reads_them() {
        let v = json!({"name": "a", "inner": {"flag": true}, "tags": [1, 2]});
        let strict: Outer = from_value(v.clone()).unwrap();
        assert_eq!(strict, serde_json::from_value::<Outer>(v).unwrap());
        let empty: Outer = from_value(json!({"inner": null})).unwrap();
        assert_eq!(empty, Outer { name: None, inner: None, tags: vec![] });
    }

    #[test]
    fn an_array_is_not_a_struct_at_any_depth() {
        assert!(serde_json::from_value::<Outer>(json!([null, null])).is_ok(), "serde alone accepts this");
        for refused in [json!([null, null]), json!({"inner": [true]}), json!("x"), json!(3)] {
            let err = from_value::<Outer>(refused.clone()).expect_err(&refused.to_string());
            assert!(err.to_string().contains("expected a JSON object"), "{refused}: {err}");
        }
        assert!(from_value::<Outer>(json!({"nope": 1})).unwrap_err().to_string().contains("unknown field"));
    }
}
