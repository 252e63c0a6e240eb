//! Cache fingerprints, computed as the backend's driver computes them.
//!
//! The driver fills a `CacheKey` message (input artifact ids, resolved input parameter values,
//! output artifact types without URIs, output parameter types, image, the unresolved command
//! and args), marshals it with protojson, re-marshals that through Go's `encoding/json` (sorted
//! keys, Go number and string formatting) and hashes it with SHA-256. A custom `cacheKey`
//! replaces all of that with the hash of the component name, a NUL byte and the key.

use std::collections::BTreeMap;

use kfbox_spec::ir::{ComponentSpec, ContainerSpec, TaskSpec};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::model::RuntimeArtifact;

/// The fingerprint of a container task, or `None` when an input artifact has no recorded id
/// (then the task cannot be matched against earlier executions).
pub(crate) fn fingerprint(
    task: &TaskSpec,
    component: &ComponentSpec,
    container: &ContainerSpec,
    parameters: &Map<String, Value>,
    artifacts: &BTreeMap<String, Vec<RuntimeArtifact>>,
) -> Option<String> {
    if let Some(key) = task
        .caching_options
        .cache_key
        .as_deref()
        .filter(|k| !k.is_empty())
    {
        let mut hash = Sha256::new();
        if !task.component_ref.name.is_empty() {
            hash.update(task.component_ref.name.as_bytes());
            hash.update([0u8]);
        }
        hash.update(key.as_bytes());
        return Some(hex(&hash.finalize()));
    }
    let mut key = Map::new();
    let mut input_artifacts = Map::new();
    for (name, list) in artifacts {
        let ids: Option<Vec<Value>> = list
            .iter()
            .map(|a| a.id.map(|id| Value::String(id.to_string())))
            .collect();
        input_artifacts.insert(name.clone(), json!({ "artifactNames": ids? }));
    }
    insert_unless_empty(&mut key, "inputArtifactNames", input_artifacts);
    let output_artifacts: Map<String, Value> = component
        .output_definitions
        .artifacts
        .iter()
        .map(|(name, spec)| (name.clone(), json!({ "type": spec.artifact_type })))
        .collect();
    insert_unless_empty(&mut key, "outputArtifactsSpec", output_artifacts);
    let output_parameters: Map<String, Value> = component
        .output_definitions
        .parameters
        .iter()
        .map(|(name, spec)| (name.clone(), Value::from(spec.parameter_type.name())))
        .collect();
    insert_unless_empty(&mut key, "outputParametersSpec", output_parameters);
    let cmd_args: Vec<&String> = container.command.iter().chain(&container.args).collect();
    let mut container_spec = Map::new();
    if !container.image.is_empty() {
        container_spec.insert("image".into(), container.image.clone().into());
    }
    if !cmd_args.is_empty() {
        container_spec.insert("cmdArgs".into(), json!(cmd_args));
    }
    key.insert("containerSpec".into(), Value::Object(container_spec));
    insert_unless_empty(&mut key, "inputParameterValues", parameters.clone());
    let mut text = String::new();
    write_go_json(&Value::Object(key), &mut text);
    Some(hex(&Sha256::digest(text.as_bytes())))
}

/// protojson leaves empty maps out.
fn insert_unless_empty(key: &mut Map<String, Value>, name: &str, map: Map<String, Value>) {
    if !map.is_empty() {
        key.insert(name.into(), Value::Object(map));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON as Go's `encoding/json` writes a decoded value: compact, object keys sorted, numbers
/// as float64, `<`, `>` and `&` escaped.
fn write_go_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&go_float(n.as_f64().unwrap_or_default())),
        Value::String(s) => write_go_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(key, out);
                out.push(':');
                write_go_json(&map[key], out);
            }
            out.push('}');
        }
    }
}

/// Go's float64 JSON form: shortest round-trip digits, exponent only below 1e-6 or from 1e21.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{f}")
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_go_prints_float64() {
        assert_eq!(go_float(3.0), "3");
        assert_eq!(go_float(0.1), "0.1");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(1.5e21), "1.5e+21");
        assert_eq!(go_float(123456789.0), "123456789");
    }

    #[test]
    fn strings_and_keys_are_escaped_and_sorted_as_go_does() {
        let mut out = String::new();
        write_go_json(&json!({"b": "<a & b>", "a": [1, 2.5, "x\n"]}), &mut out);
        assert_eq!(out, r#"{"a":[1,2.5,"x\n"],"b":"\u003ca \u0026 b\u003e"}"#);
    }
}
