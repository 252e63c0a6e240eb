//! CEL as the Kubeflow Pipelines backend evaluates it: `triggerPolicy.condition` against the
//! task's resolved inputs, and `parameterExpressionSelector` against one `protobuf.Value`, both
//! with the backend's `parseJson` function.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, ExecutionError, Program, Value as Cel};
use serde_json::{Map as JsonMap, Value};

use crate::value::value_to_text;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("CEL expression `{expr}` does not parse: {message}")]
    Parse { expr: String, message: String },
    #[error("CEL expression `{expr}` failed: {message}")]
    Eval { expr: String, message: String },
    #[error("CEL condition `{expr}` returned {got}, not a boolean")]
    NotBool { expr: String, got: String },
}

pub fn check_syntax(expr: &str) -> Result<(), ExprError> {
    compile(expr).map(|_| ())
}

fn compile(expr: &str) -> Result<Program, ExprError> {
    Program::compile(expr).map_err(|e| ExprError::Parse {
        expr: expr.to_owned(),
        message: e.to_string(),
    })
}

fn context_with_parse_json() -> Context<'static, 'static> {
    let mut context = Context::default();
    context
        .add_function("parseJson", parse_json)
        .expect("parseJson is not a CEL standard function");
    context
}

fn parse_json(text: Arc<String>) -> Result<Cel, ExecutionError> {
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        ExecutionError::function_error("parseJson", format!("failed to unmarshal JSON: {e}"))
    })?;
    Ok(json_to_cel(&value))
}

/// Evaluate a trigger condition. `parameter_values` are the task's resolved input parameters.
pub fn evaluate_condition(
    expr: &str,
    parameter_values: &JsonMap<String, Value>,
    artifacts: Value,
) -> Result<bool, ExprError> {
    let program = compile(expr)?;
    let mut context = context_with_parse_json();
    let mut inputs = JsonMap::new();
    inputs.insert(
        "parameter_values".into(),
        Value::Object(parameter_values.clone()),
    );
    inputs.insert("artifacts".into(), artifacts);
    context.add_variable_from_value("inputs", json_to_cel(&Value::Object(inputs)));
    match execute(&program, &context, expr)? {
        Cel::Bool(b) => Ok(b),
        other => Err(ExprError::NotBool {
            expr: expr.to_owned(),
            got: format!("{other:?}"),
        }),
    }
}

/// Evaluate a `parameterExpressionSelector` on one value. As in the backend, the fields of
/// `protobuf.Value` that are set are variables, and `string_value` always holds the JSON text.
pub fn select(expr: &str, value: &Value) -> Result<Value, ExprError> {
    let program = compile(expr)?;
    let mut context = context_with_parse_json();
    let field = match value {
        Value::Null => "null_value",
        Value::Bool(_) => "bool_value",
        Value::Number(_) => "number_value",
        Value::String(_) => "string_value",
        Value::Array(_) => "list_value",
        Value::Object(_) => "struct_value",
    };
    context.add_variable_from_value(field, json_to_cel(value));
    context.add_variable_from_value("string_value", Cel::String(Arc::new(value_to_text(value))));
    let result = execute(&program, &context, expr)?;
    Ok(cel_to_json(&result))
}

fn execute(program: &Program, context: &Context, expr: &str) -> Result<Cel, ExprError> {
    program.execute(context).map_err(|e| ExprError::Eval {
        expr: expr.to_owned(),
        message: e.to_string(),
    })
}

/// JSON to CEL the way cel-go sees a `protobuf.Value`: every number is a double.
fn json_to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Value::Object(map) => {
            let entries: HashMap<Key, Cel> = map
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), json_to_cel(v)))
                .collect();
            Cel::Map(Map::from(entries))
        }
    }
}

fn cel_to_json(value: &Cel) -> Value {
    match value {
        Cel::Null => Value::Null,
        Cel::Bool(b) => Value::Bool(*b),
        Cel::Int(i) => Value::from(*i),
        Cel::UInt(u) => Value::from(*u),
        Cel::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Cel::String(s) => Value::String(s.to_string()),
        Cel::List(items) => Value::Array(items.iter().map(cel_to_json).collect()),
        Cel::Map(map) => Value::Object(
            map.map
                .iter()
                .map(|(k, v)| (key_text(k), cel_to_json(v)))
                .collect(),
        ),
        other => Value::String(format!("{other:?}")),
    }
}

fn key_text(key: &Key) -> String {
    match key {
        Key::String(s) => s.to_string(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> JsonMap<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn conditions_as_the_compiler_writes_them() {
        let p =
            params(json!({"pipelinechannel--flip-coin-Output": "heads", "pipelinechannel--n": 7}));
        let artifacts = json!({});
        assert!(evaluate_condition(
            "inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads'",
            &p,
            artifacts.clone()
        )
        .unwrap());
        assert!(!evaluate_condition(
            "!(inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads')",
            &p,
            artifacts.clone()
        )
        .unwrap());
        assert!(evaluate_condition(
            "int(inputs.parameter_values['pipelinechannel--n']) > 5",
            &p,
            artifacts.clone()
        )
        .unwrap());
        assert!(matches!(
            evaluate_condition(
                "inputs.parameter_values['pipelinechannel--n']",
                &p,
                artifacts
            ),
            Err(ExprError::NotBool { .. })
        ));
    }

    #[test]
    fn selector_reads_struct_fields_through_parse_json() {
        let item = json!({"A_a": "1", "B_b": 2});
        assert_eq!(
            select("parseJson(string_value)[\"A_a\"]", &item).unwrap(),
            json!("1")
        );
        assert_eq!(
            select("parseJson(string_value)[\"B_b\"]", &item).unwrap(),
            json!(2.0)
        );
    }
}
