//! A call in MessagePack for a server that has no JSON: the arguments a person wrote in JSON
//! made into MessagePack, and the reply shown as JSON would have shown it.
//!
//! A server built without prpc's `json` feature answers a JSON call with `invalid_argument`,
//! "format json is not enabled in this build" (docs/PROTOCOL.md §9.2, row 14). Every serde
//! server has MessagePack, so `prpc call` asks again in it. The two formats carry the same
//! values but for byte strings (§5.1): JSON writes them as base64 strings, MessagePack as
//! `bin`, where a `str` means its own UTF-8 bytes. So an argument the method describes as
//! bytes, given as a string, is decoded from base64 here; and a `bin` in the reply is shown as
//! the base64 string a JSON reply would have held.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prpc::reflection::{MethodDescription, Shape};
use prpc::{Code, Error};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Number, Value};

/// What a server without JSON answers a JSON call (PROTOCOL.md §9.2, row 14).
const NO_JSON: &str = "format json is not enabled in this build";

/// Whether `error` is a server's answer that it was built without JSON.
pub(crate) fn json_not_built_in(error: &Error) -> bool {
    error.status().is_some_and(|status| {
        status.code() == Code::InvalidArgument && status.message().starts_with(NO_JSON)
    })
}

/// The arguments object as MessagePack will carry it: each argument that `method` describes
/// as bytes (or optional bytes) and that is given as a string is decoded from base64, as a
/// JSON server would have. Without a description, strings stay strings.
pub(crate) fn arguments<'a>(
    object: &'a Map<String, Value>,
    method: Option<&MethodDescription>,
) -> Result<MsgPackArguments<'a>, String> {
    let byte_strings: HashSet<&str> = method
        .map(|method| {
            method
                .arguments
                .iter()
                .filter(|argument| !argument.stream && is_bytes(&argument.shape))
                .map(|argument| argument.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut decoded = Vec::new();
    for (name, value) in object {
        if let (true, Value::String(text)) = (byte_strings.contains(name.as_str()), value) {
            let bytes = STANDARD.decode(text).map_err(|error| {
                format!("argument {name} is bytes, so a string is base64, and this is not: {error}")
            })?;
            decoded.push((name.as_str(), bytes));
        }
    }
    Ok(MsgPackArguments { object, decoded })
}

fn is_bytes(shape: &Shape) -> bool {
    match shape {
        Shape::Bytes => true,
        Shape::Optional { inner } => is_bytes(inner),
        _ => false,
    }
}

/// The arguments object with the byte strings decoded: serialized as a map, the decoded
/// arguments as bytes.
pub(crate) struct MsgPackArguments<'a> {
    object: &'a Map<String, Value>,
    decoded: Vec<(&'a str, Vec<u8>)>,
}

impl Serialize for MsgPackArguments<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// Bytes serialized as bytes (MessagePack `bin`), not as a sequence.
        struct Bin<'b>(&'b [u8]);
        impl Serialize for Bin<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        let mut map = serializer.serialize_map(Some(self.object.len()))?;
        for (name, value) in self.object {
            match self.decoded.iter().find(|(decoded, _)| *decoded == name) {
                Some((_, bytes)) => map.serialize_entry(name, &Bin(bytes))?,
                None => map.serialize_entry(name, value)?,
            }
        }
        map.end()
    }
}

/// A value read from any serde format as JSON shows it: byte strings as base64 strings, map
/// keys that are numbers, booleans or nil written as JSON text (`1`, `true`, `null`; keys that
/// are arrays or maps are refused, as serde_json refuses to write them), floats JSON cannot
/// hold (NaN, the infinities) as `null`.
pub(crate) struct AsJson(pub(crate) Value);

impl<'de> Deserialize<'de> for AsJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(AsJson)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_bytes<E>(self, value: &[u8]) -> Result<Value, E> {
        Ok(Value::String(STANDARD.encode(value)))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(AsJson(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some((AsJson(key), AsJson(value))) = map.next_entry()? {
            let key = match key {
                Value::String(key) => key,
                // A key that is an array or a map has no JSON form (serde_json refuses to
                // write one too); written as text, keys within keys would be escaped again
                // at every level, doubling in size each time.
                Value::Array(_) | Value::Object(_) => {
                    return Err(de::Error::custom("a map key that is an array or a map"));
                }
                scalar => scalar.to_string(),
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("an enum where a value was expected"))
    }
}

#[cfg(test)]
mod tests {
    use prpc::Format;
    use serde_json::json;

    use super::*;

    fn method(arguments: &[(&str, Shape)]) -> MethodDescription {
        arguments
            .iter()
            .fold(MethodDescription::new("m"), |method, (name, shape)| {
                method.argument(*name, shape.clone())
            })
    }

    fn round_trip(value: &impl Serialize) -> Value {
        let body = Format::MsgPack.encode(value).unwrap();
        Format::MsgPack.decode::<AsJson>(&body).unwrap().0
    }

    #[test]
    fn byte_arguments_given_in_base64_travel_as_bin() {
        let object = json!({"payload": "AAEC", "name": "AAEC", "maybe": "/w==", "n": 7});
        let described = method(&[
            ("payload", Shape::Bytes),
            ("name", Shape::String),
            (
                "maybe",
                Shape::Optional {
                    inner: Box::new(Shape::Bytes),
                },
            ),
            ("n", Shape::Integer),
        ]);
        let arguments = arguments(object.as_object().unwrap(), Some(&described)).unwrap();
        let body = Format::MsgPack.encode(&arguments).unwrap();
        // The bytes arguments are `bin` (c4), the string stays a `str` (a4).
        let text = body.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert!(text.contains("c403000102"), "{text}");
        assert!(text.contains("c401ff"), "{text}");
        assert!(text.contains("a441414543"), "{text}");
        // Shown back as JSON shows them.
        assert_eq!(
            round_trip(&arguments),
            json!({"payload": "AAEC", "name": "AAEC", "maybe": "/w==", "n": 7})
        );
    }

    #[test]
    fn a_bytes_argument_that_is_not_base64_is_refused_by_name() {
        let object = json!({"payload": "not base64!"});
        let described = method(&[("payload", Shape::Bytes)]);
        let error = arguments(object.as_object().unwrap(), Some(&described))
            .err()
            .unwrap();
        assert!(error.starts_with("argument payload is bytes"), "{error}");
    }

    #[test]
    fn without_a_description_the_arguments_are_sent_as_written() {
        let object = json!({"payload": "AAEC", "list": [1, 2], "nested": {"a": null}});
        let arguments = arguments(object.as_object().unwrap(), None).unwrap();
        assert_eq!(round_trip(&arguments), object);
    }

    #[test]
    fn replies_read_as_json_shows_them() {
        let mut keyed = std::collections::BTreeMap::new();
        keyed.insert(1u8, "one");
        assert_eq!(round_trip(&keyed), json!({"1": "one"}));
        // Keys within keys, nested: refused, not escaped again at every level (a body of a
        // few dozen bytes made gigabytes of text that way).
        // Each level a one-entry map whose key is the next level and whose value is nil.
        let mut body = vec![0x81u8; 40];
        body.extend([0xc0; 41]);
        let error = Format::MsgPack.decode::<AsJson>(&body).err().unwrap();
        assert!(
            error
                .to_string()
                .contains("a map key that is an array or a map"),
            "{error}"
        );
        assert_eq!(round_trip(&f64::NAN), Value::Null);
        assert_eq!(round_trip(&Some(-3i64)), json!(-3));
        assert_eq!(round_trip(&(u64::MAX, 1.5f64)), json!([u64::MAX, 1.5]));
    }
}
