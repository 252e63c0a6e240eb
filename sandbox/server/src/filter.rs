//! List parameters as the API takes them: `filter` (a JSON-serialized `Filter` protocol
//! buffer), `sort_by` (`"field"` or `"field desc"`), `page_size`, `page_token`.

use chrono::DateTime;
use kfbox_store::{Condition, ListQuery, Op, Operand};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Query parameters. A parameter given empty (`?page_size=`) counts as not given, as the
/// upstream gateway reads it; one that does not parse is refused in the API's error shape.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let given: Vec<&str> = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
            .collect();
        let uri: axum::http::Uri = format!("/?{}", given.join("&"))
            .parse()
            .map_err(|e| crate::error::ApiError::invalid(format!("query parameters: {e}")))?;
        axum::extract::Query::try_from_uri(&uri)
            .map(|axum::extract::Query(params)| Params(params))
            .map_err(|e| crate::error::ApiError::invalid(e.body_text()))
    }
}

/// Query parameters every list call takes.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    pub page_token: Option<String>,
    /// An int32, as upstream.
    pub page_size: Option<i32>,
    pub sort_by: Option<String>,
    pub filter: Option<String>,
    pub experiment_id: Option<String>,
}

/// A page holds at most this many items, whatever the client asks.
const MAX_PAGE_SIZE: i64 = 1000;
/// The page size when none is asked for.
const DEFAULT_PAGE_SIZE: i64 = 20;

impl ListParams {
    /// The query, limited to `experiment_id` when one is given (runs, recurring runs).
    pub fn query_in_experiment(&self) -> ApiResult<ListQuery> {
        let mut query = self.query()?;
        if let Some(experiment) = self.experiment_id.as_deref().filter(|e| !e.is_empty()) {
            query.conditions.push(Condition {
                field: "experiment_id".into(),
                op: Op::Equals,
                operand: Operand::Text(experiment.to_owned()),
            });
        }
        Ok(query)
    }

    pub fn query(&self) -> ApiResult<ListQuery> {
        let mut query = ListQuery {
            page_size: match self.page_size {
                None | Some(0) => DEFAULT_PAGE_SIZE,
                Some(n) if n < 0 => {
                    return Err(ApiError::invalid(format!(
                        "page_size {n}: must not be negative"
                    )))
                }
                Some(n) => i64::from(n).min(MAX_PAGE_SIZE),
            } as usize,
            page_token: self.page_token.clone().filter(|t| !t.is_empty()),
            ..ListQuery::default()
        };
        if let Some(sort) = self.sort_by.as_deref().filter(|s| !s.trim().is_empty()) {
            let mut words = sort.split_whitespace();
            let field = words.next().unwrap_or_default();
            query.descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(ApiError::invalid(format!(
                        "sort_by `{sort}`: `{other}` is neither `asc` nor `desc`"
                    )))
                }
            };
            query.sort_by = Some(field.to_owned());
        }
        if let Some(filter) = self.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            query.conditions = parse_filter(filter)?;
        }
        Ok(query)
    }
}

/// Parse a `Filter`: `{"predicates": [{"key", "operation", "<kind>_value"}]}`. Operations are
/// names or their numbers; field names are snake_case or camelCase, as protobuf's JSON reader
/// accepts them.
pub fn parse_filter(text: &str) -> ApiResult<Vec<Condition>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid(format!("filter is not JSON: {e}: {text}")))?;
    let predicates = match value.get("predicates") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ApiError::invalid("filter.predicates must be a list")),
    };
    predicates
        .iter()
        .enumerate()
        .map(|(i, p)| {
            predicate(p).map_err(|e| ApiError::invalid(format!("filter.predicates[{i}]: {e}")))
        })
        .collect()
}

fn field<'a>(object: &'a Value, snake: &str, camel: &str) -> Option<&'a Value> {
    object
        .get(snake)
        .or_else(|| object.get(camel))
        .filter(|v| !v.is_null())
}

fn predicate(p: &Value) -> Result<Condition, String> {
    let key = field(p, "key", "key")
        .and_then(Value::as_str)
        .ok_or("`key` is missing")?;
    let operation = field(p, "operation", "operation")
        .or_else(|| p.get("op"))
        .ok_or("`operation` is missing")?;
    let op = match operation {
        Value::String(name) => match name.as_str() {
            "EQUALS" => Op::Equals,
            "NOT_EQUALS" => Op::NotEquals,
            "GREATER_THAN" => Op::GreaterThan,
            "GREATER_THAN_EQUALS" => Op::GreaterThanEquals,
            "LESS_THAN" => Op::LessThan,
            "LESS_THAN_EQUALS" => Op::LessThanEquals,
            "IN" => Op::In,
            "IS_SUBSTRING" => Op::IsSubstring,
            other => return Err(format!("unknown operation `{other}`")),
        },
        Value::Number(n) => match n.as_i64() {
            Some(1) => Op::Equals,
            Some(2) => Op::NotEquals,
            Some(3) => Op::GreaterThan,
            Some(5) => Op::GreaterThanEquals,
            Some(6) => Op::LessThan,
            Some(7) => Op::LessThanEquals,
            Some(8) => Op::In,
            Some(9) => Op::IsSubstring,
            _ => return Err(format!("unknown operation {n}")),
        },
        other => return Err(format!("operation {other} is neither a name nor a number")),
    };
    let integer = |v: &Value| -> Result<i64, String> {
        match v {
            Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
            // Protobuf's JSON writes 64-bit integers as strings.
            Value::String(s) => s.parse().map_err(|_| format!("`{s}` is not an integer")),
            other => Err(format!("{other} is not an integer")),
        }
    };
    let list = |v: &Value| -> Vec<Value> {
        v.get("values")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let operand = if let Some(v) = field(p, "string_value", "stringValue") {
        Operand::Text(
            v.as_str()
                .ok_or("string_value must be a string")?
                .to_owned(),
        )
    } else if let Some(v) =
        field(p, "int_value", "intValue").or(field(p, "long_value", "longValue"))
    {
        Operand::Int(integer(v)?)
    } else if let Some(v) = field(p, "double_value", "doubleValue") {
        // kfbox's own, for `parameters.NAME` and `metrics.NAME` (the upstream API has no such
        // fields, and no doubles).
        Operand::Double(
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or("double_value must be a number")?,
        )
    } else if let Some(v) = field(p, "timestamp_value", "timestampValue") {
        let text = v
            .as_str()
            .ok_or("timestamp_value must be an RFC 3339 string")?;
        let time = DateTime::parse_from_rfc3339(text)
            .map_err(|e| format!("timestamp_value `{text}`: {e}"))?;
        Operand::Time(time.timestamp_millis())
    } else if let Some(v) = field(p, "string_values", "stringValues") {
        Operand::Texts(
            list(v)
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_owned)
                        .ok_or("string_values holds a non-string")
                })
                .collect::<Result<_, _>>()?,
        )
    } else if let Some(v) =
        field(p, "int_values", "intValues").or(field(p, "long_values", "longValues"))
    {
        Operand::Ints(list(v).iter().map(integer).collect::<Result<_, _>>()?)
    } else {
        return Err(format!(
            "predicate on `{key}` has no value (string_value, int_value, long_value, double_value, timestamp_value, or a *_values list)"
        ));
    };
    Ok(Condition {
        field: key.to_owned(),
        op,
        operand,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_by_name_or_number_and_both_field_spellings() {
        let conditions = parse_filter(
            r#"{"predicates": [
                {"key": "display_name", "operation": "EQUALS", "string_value": "a"},
                {"key": "created_at", "operation": 5, "timestampValue": "2026-01-02T03:04:05Z"},
                {"key": "state", "operation": "IN", "string_values": {"values": ["FAILED", "CANCELED"]}},
                {"key": "created_at", "op": 6, "long_value": "1700000000"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(conditions[0].op, Op::Equals);
        assert_eq!(conditions[0].operand, Operand::Text("a".into()));
        assert_eq!(conditions[1].op, Op::GreaterThanEquals);
        assert_eq!(conditions[1].operand, Operand::Time(1_767_323_045_000));
        assert_eq!(
            conditions[2].operand,
            Operand::Texts(vec!["FAILED".into(), "CANCELED".into()])
        );
        assert_eq!(conditions[3].operand, Operand::Int(1_700_000_000));
    }

    #[test]
    fn bad_filters_name_the_predicate_and_the_problem() {
        let error = parse_filter(
            r#"{"predicates": [{"key": "x", "operation": "LIKE", "string_value": "a"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "filter.predicates[0]: unknown operation `LIKE`"
        );
        let error = parse_filter("{not json").unwrap_err();
        assert!(
            error.message.starts_with("filter is not JSON"),
            "{}",
            error.message
        );
        let error = parse_filter(r#"{"predicates": [{"key": "x", "operation": 1}]}"#).unwrap_err();
        assert!(error.message.contains("has no value"), "{}", error.message);
    }

    #[test]
    fn sort_and_page_size() {
        let params = ListParams {
            sort_by: Some("created_at desc".into()),
            page_size: Some(5000),
            ..ListParams::default()
        };
        let query = params.query().unwrap();
        assert_eq!(query.sort_by.as_deref(), Some("created_at"));
        assert!(query.descending);
        assert_eq!(query.page_size, 1000);
        let params = ListParams {
            sort_by: Some("name sideways".into()),
            ..ListParams::default()
        };
        assert!(params.query().is_err());
    }
}
