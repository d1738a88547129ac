//! The field names of a payload struct, read from its derived `Deserialize`
//! (which hands its field list to `deserialize_struct`), so the list the
//! docs are checked against can never drift from the struct itself.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The top-level fields of `T`, a struct with a derived `Deserialize`; empty for anything else.
pub(super) fn of<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    let mut reader = FieldReader(None);
    let _ = T::deserialize(&mut reader);
    reader.0.map(<[_]>::to_vec).unwrap_or_default()
}

struct FieldReader(Option<&'static [&'static str]>);

/// Ends the deserialisation as soon as the field list is known.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names read")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for &mut FieldReader {
    type Error = Stop;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        self.0 = Some(fields);
        Err(Stop)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        first: u64,
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        optional: Option<String>,
    }

    #[test]
    fn reads_the_serialized_names_in_order() {
        assert_eq!(super::of::<Sample>(), ["first", "type", "optional"]);
    }

    #[test]
    fn anything_but_a_struct_has_no_fields() {
        assert!(super::of::<u64>().is_empty());
        assert!(super::of::<std::collections::BTreeMap<String, u64>>().is_empty());
    }
}
