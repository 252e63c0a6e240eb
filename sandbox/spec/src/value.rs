//! Parameter values: text conversions and type checks as the backend does them, but keeping
//! integers integral so that a list of ints stays a list of ints end to end.

use serde_json::{Number, Value};

use crate::ir::ParameterType;

/// How a value is written into a command line or a STRING input: strings as they are, everything
/// else as compact JSON, integral doubles without a fraction (as Go's `FormatFloat(.., 'f', -1)`).
pub fn value_to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        other => as_protojson(other).to_string(),
    }
}

/// `value` with its numbers as the launcher's protobuf JSON encoding writes them: a
/// parameter's numbers are doubles in the IR (`3.0`), but protojson prints a whole one as
/// `3`, so a component reading `{'n': 3}` gets an int, as on a cluster.
pub fn as_protojson(value: &Value) -> Value {
    match value {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                Value::from(f as i64)
            }
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(as_protojson).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), as_protojson(v)))
                .collect(),
        ),
        _ => value.clone(),
    }
}

fn number_text(n: &Number) -> String {
    match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => i.to_string(),
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => n.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct TypeMismatch {
    pub expected: &'static str,
    pub got: String,
}

/// Parse the text a component wrote to an output parameter file.
pub fn text_to_value(text: &str, ty: ParameterType) -> Result<Value, TypeMismatch> {
    let mismatch = || TypeMismatch {
        expected: ty.python_name(),
        got: format!("{:?}", truncate(text)),
    };
    let trimmed = text.trim();
    match ty {
        ParameterType::String | ParameterType::ParameterTypeEnumUnspecified => {
            Ok(Value::String(text.to_owned()))
        }
        ParameterType::NumberInteger => trimmed
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| mismatch()),
        ParameterType::NumberDouble => trimmed
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(mismatch),
        ParameterType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Ok(Value::Bool(true)),
            "false" | "0" | "f" => Ok(Value::Bool(false)),
            _ => Err(mismatch()),
        },
        ParameterType::List => match serde_json::from_str(trimmed) {
            Ok(v @ Value::Array(_)) => Ok(v),
            _ => Err(mismatch()),
        },
        ParameterType::Struct | ParameterType::TaskFinalStatus | ParameterType::TaskConfig => {
            match serde_json::from_str(trimmed) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(mismatch()),
            }
        }
    }
}

fn truncate(text: &str) -> String {
    if text.chars().count() > 60 {
        format!("{}...", text.chars().take(60).collect::<String>())
    } else {
        text.to_owned()
    }
}

/// 2^63: every double in `-2^63..2^63` converts to an `i64` exactly when it is integral.
const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;

/// Check a value against a declared type and bring it to canonical form: STRING inputs accept
/// anything (as JSON text, like the backend), integers are stored integral, doubles as doubles.
pub fn coerce(value: Value, ty: ParameterType) -> Result<Value, TypeMismatch> {
    let mismatch = |v: &Value| TypeMismatch {
        expected: ty.python_name(),
        got: describe(v),
    };
    match (ty, value) {
        (ParameterType::String, Value::String(s)) => Ok(Value::String(s)),
        (ParameterType::String, v) => Ok(Value::String(value_to_text(&v))),
        (ParameterType::NumberInteger, Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(Value::from(i)),
            // Beyond 64 bits a cast would clamp silently (1e40 would become i64::MAX).
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && (-I64_BOUND..I64_BOUND).contains(&f) => {
                    Ok(Value::from(f as i64))
                }
                _ => Err(TypeMismatch {
                    expected: "int (a 64-bit integer)",
                    got: describe(&Value::Number(n)),
                }),
            },
        },
        (ParameterType::NumberDouble, Value::Number(n)) => Ok(n
            .as_f64()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Number(n))),
        (ParameterType::Boolean, v @ Value::Bool(_)) => Ok(v),
        (ParameterType::List, v @ Value::Array(_)) => Ok(v),
        (
            ParameterType::Struct | ParameterType::TaskFinalStatus | ParameterType::TaskConfig,
            v @ Value::Object(_),
        ) => Ok(v),
        (ParameterType::ParameterTypeEnumUnspecified, v) => Ok(v),
        (_, v) => Err(mismatch(&v)),
    }
}

pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {:?}", truncate(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a struct".into(),
    }
}

/// Parse a `--param name=value` text for a declared type: strings are taken as they are, other
/// types as JSON (with `true`/`false` and plain numbers).
pub fn parse_cli_value(text: &str, ty: ParameterType) -> Result<Value, TypeMismatch> {
    match ty {
        ParameterType::String => Ok(Value::String(text.to_owned())),
        ParameterType::ParameterTypeEnumUnspecified => {
            Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())))
        }
        _ => text_to_value(text, ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_doubles_are_written_as_protojson_writes_them() {
        let compiled =
            serde_json::json!({"n": 3.0, "rate": 0.5, "sizes": [2.0, 4.5], "big": 1e300});
        assert_eq!(
            as_protojson(&compiled),
            serde_json::json!({"n": 3, "rate": 0.5, "sizes": [2, 4.5], "big": 1e300})
        );
        assert_eq!(value_to_text(&compiled["sizes"]), "[2,4.5]");
    }
    use serde_json::json;

    #[test]
    fn text_of_values_matches_the_backend() {
        assert_eq!(value_to_text(&json!(3.0)), "3");
        assert_eq!(value_to_text(&json!(2.5)), "2.5");
        assert_eq!(value_to_text(&json!([1, 2])), "[1,2]");
        assert_eq!(value_to_text(&json!(true)), "true");
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_not_clamped() {
        for too_big in [
            json!(1e40),
            json!(-1e40),
            json!(9_223_372_036_854_775_808.0),
        ] {
            let error = coerce(too_big.clone(), ParameterType::NumberInteger).unwrap_err();
            assert!(error.to_string().contains("64-bit"), "{too_big}: {error}");
        }
        assert_eq!(
            coerce(
                json!(-9_223_372_036_854_775_808.0),
                ParameterType::NumberInteger
            )
            .unwrap(),
            json!(i64::MIN)
        );
        assert_eq!(
            coerce(json!(i64::MAX), ParameterType::NumberInteger).unwrap(),
            json!(i64::MAX)
        );
    }

    #[test]
    fn coercion_keeps_integers_integral() {
        assert_eq!(
            coerce(json!(4.0), ParameterType::NumberInteger).unwrap(),
            json!(4)
        );
        assert!(coerce(json!(4.5), ParameterType::NumberInteger).is_err());
        assert_eq!(
            coerce(json!(4), ParameterType::NumberDouble).unwrap(),
            json!(4.0)
        );
        assert_eq!(
            coerce(json!({"a": 1}), ParameterType::String).unwrap(),
            json!("{\"a\":1}")
        );
        assert!(coerce(json!("x"), ParameterType::Boolean).is_err());
    }

    #[test]
    fn output_files_parse_per_type() {
        assert_eq!(
            text_to_value(" 12\n", ParameterType::NumberInteger).unwrap(),
            json!(12)
        );
        assert_eq!(
            text_to_value("[1,2]", ParameterType::List).unwrap(),
            json!([1, 2])
        );
        assert!(text_to_value("{", ParameterType::Struct).is_err());
    }
}
