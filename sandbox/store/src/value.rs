//! Property values as MLMD stores them, and JSON conversions.
//!
//! MLMD keeps a struct in `string_value` as `mlmd-struct::` followed by the base64 of a
//! serialized `google.protobuf.Struct`; numbers inside a struct are doubles. Artifact metadata
//! follows the backend's conversion: booleans become ints, lists and structs are wrapped as
//! `{"list": [...]}` and `{"struct": {...}}`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use prost::Message;
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

const STRUCT_PREFIX: &str = "mlmd-struct::";

/// One property value, in the column MLMD reads it from.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    Int(i64),
    Double(f64),
    Text(String),
    Struct(Map<String, Value>),
}

impl Prop {
    /// The value as JSON: structs as objects, numbers as numbers.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Int(i) => Value::from(*i),
            Self::Double(d) => number(*d),
            Self::Text(s) => Value::String(s.clone()),
            Self::Struct(map) => Value::Object(map.clone()),
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_struct(&self) -> Option<&Map<String, Value>> {
        match self {
            Self::Struct(map) => Some(map),
            _ => None,
        }
    }

    /// Columns `(int_value, double_value, string_value)` for an INSERT.
    pub(crate) fn columns(&self) -> (Option<i64>, Option<f64>, Option<String>) {
        match self {
            Self::Int(i) => (Some(*i), None, None),
            Self::Double(d) => (None, Some(*d), None),
            Self::Text(s) => (None, None, Some(s.clone())),
            Self::Struct(map) => (None, None, Some(encode_struct(map))),
        }
    }

    /// Read back from the columns MLMD writes (bools land in `bool_value` when MLMD writes).
    pub(crate) fn from_columns(
        int: Option<i64>,
        double: Option<f64>,
        text: Option<String>,
        boolean: Option<bool>,
    ) -> Option<Self> {
        if let Some(text) = text {
            return Some(match text.strip_prefix(STRUCT_PREFIX) {
                Some(encoded) => Self::Struct(decode_struct(encoded).unwrap_or_default()),
                None => Self::Text(text),
            });
        }
        int.map(Self::Int)
            .or(double.map(Self::Double))
            .or(boolean.map(|b| Self::Int(b as i64)))
    }

    /// An artifact metadata entry, converted as the backend's launcher converts it.
    pub fn from_metadata(value: &Value) -> Option<Self> {
        Some(match value {
            Value::Null => return None,
            Value::Bool(b) => Self::Int(*b as i64),
            Value::Number(n) => Self::Double(n.as_f64().unwrap_or_default()),
            Value::String(s) => Self::Text(s.clone()),
            Value::Array(_) => Self::Struct(Map::from_iter([("list".to_owned(), value.clone())])),
            Value::Object(_) => {
                Self::Struct(Map::from_iter([("struct".to_owned(), value.clone())]))
            }
        })
    }

    /// The metadata entry a launcher-converted property stands for.
    pub fn to_metadata(&self) -> Value {
        if let Self::Struct(map) = self {
            if map.len() == 1 {
                if let Some(inner) = map.get("list").or_else(|| map.get("struct")) {
                    return inner.clone();
                }
            }
        }
        self.to_json()
    }
}

/// A JSON number from a protobuf double: integral values print as integers, as JSON readers of
/// the backend's data expect (`3`, not `3.0`).
fn number(d: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if d.fract() == 0.0 && d.abs() < EXACT {
        Value::from(d as i64)
    } else {
        Number::from_f64(d).map_or(Value::Null, Value::Number)
    }
}

pub fn encode_struct(map: &Map<String, Value>) -> String {
    let message = to_proto_struct(map);
    format!(
        "{STRUCT_PREFIX}{}",
        STANDARD.encode(message.encode_to_vec())
    )
}

fn decode_struct(encoded: &str) -> Option<Map<String, Value>> {
    let bytes = STANDARD.decode(encoded).ok()?;
    let message = prost_types::Struct::decode(bytes.as_slice()).ok()?;
    Some(from_proto_struct(&message))
}

fn to_proto_struct(map: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), to_proto_value(v)))
            .collect(),
    }
}

fn to_proto_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_proto_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_proto_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn from_proto_struct(message: &prost_types::Struct) -> Map<String, Value> {
    let mut fields: Vec<(&String, &prost_types::Value)> = message.fields.iter().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    fields
        .into_iter()
        .map(|(k, v)| (k.clone(), from_proto_value(v)))
        .collect()
}

fn from_proto_value(value: &prost_types::Value) -> Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(d)) => number(*d),
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.iter().map(from_proto_value).collect())
        }
        Some(Kind::StructValue(s)) => Value::Object(from_proto_struct(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structs_round_trip_through_the_mlmd_encoding() {
        let map = json!({"a": 1, "s": "x", "l": [1, 2.5, true, null], "o": {"k": "v"}});
        let map = map.as_object().unwrap();
        let encoded = encode_struct(map);
        assert!(encoded.starts_with("mlmd-struct::"));
        let back = Prop::from_columns(None, None, Some(encoded), None).unwrap();
        assert_eq!(back.to_json(), Value::Object(map.clone()));
    }

    #[test]
    fn the_encoding_matches_what_mlmd_itself_wrote() {
        // Written by ml-metadata 1.17.1 for struct {"a": 1, "s": "x", "l": [1, 2]}.
        let written =
            "Cg4KAWESCREAAAAAAADwPwodCgFsEhgyFgoJEQAAAAAAAPA/CgkRAAAAAAAAAEAKCAoBcxIDGgF4";
        let decoded = decode_struct(written).unwrap();
        assert_eq!(
            Value::Object(decoded),
            json!({"a": 1, "l": [1, 2], "s": "x"})
        );
    }

    #[test]
    fn metadata_follows_the_launcher_conversion() {
        assert_eq!(Prop::from_metadata(&json!(true)), Some(Prop::Int(1)));
        assert_eq!(Prop::from_metadata(&json!(0.5)), Some(Prop::Double(0.5)));
        let list = Prop::from_metadata(&json!([1, 2])).unwrap();
        assert_eq!(list.to_json(), json!({"list": [1, 2]}));
        assert_eq!(list.to_metadata(), json!([1, 2]));
        assert_eq!(Prop::from_metadata(&Value::Null), None);
    }
}
