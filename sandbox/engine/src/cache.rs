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
    pvc_names: &[String],
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
        let mut names = Map::new();
        insert_unless_empty_list(&mut names, "artifactNames", ids?);
        input_artifacts.insert(name.clone(), Value::Object(names));
    }
    insert_unless_empty(&mut key, "inputArtifactNames", input_artifacts);
    let output_artifacts: Map<String, Value> = component
        .output_definitions
        .artifacts
        .iter()
        // The driver names each provisioned output artifact after its output.
        .map(|(name, spec)| {
            (
                name.clone(),
                json!({ "name": name, "type": spec.artifact_type }),
            )
        })
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
    insert_unless_empty_list(
        &mut container_spec,
        "cmdArgs",
        cmd_args
            .into_iter()
            .map(|a| Value::from(a.as_str()))
            .collect(),
    );
    key.insert("containerSpec".into(), Value::Object(container_spec));
    insert_unless_empty(&mut key, "inputParameterValues", parameters.clone());
    // The claims it mounts, as the driver adds them: files on a volume are inputs too, and a
    // fresh volume (CreatePVC's generated name) must not reuse an earlier run's result.
    insert_unless_empty_list(
        &mut key,
        "pvcNames",
        pvc_names.iter().map(|n| Value::from(n.as_str())).collect(),
    );
    let mut text = String::new();
    write_go_json(&Value::Object(key), &mut text);
    Some(hex(&Sha256::digest(text.as_bytes())))
}

/// protojson leaves empty maps and lists out.
fn insert_unless_empty(key: &mut Map<String, Value>, name: &str, map: Map<String, Value>) {
    if !map.is_empty() {
        key.insert(name.into(), Value::Object(map));
    }
}

fn insert_unless_empty_list(key: &mut Map<String, Value>, name: &str, list: Vec<Value>) {
    if !list.is_empty() {
        key.insert(name.into(), Value::Array(list));
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

    fn task(caching: Value) -> TaskSpec {
        serde_json::from_value(json!({
            "taskInfo": {"name": "stamp"},
            "componentRef": {"name": "comp-stamp"},
            "cachingOptions": caching,
        }))
        .unwrap()
    }

    fn fixture() -> (
        ComponentSpec,
        ContainerSpec,
        Map<String, Value>,
        BTreeMap<String, Vec<RuntimeArtifact>>,
    ) {
        let component: ComponentSpec = serde_json::from_value(json!({
            "executorLabel": "exec-stamp",
            "outputDefinitions": {
                "artifacts": {"data": {"artifactType": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}}},
                "parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}},
            },
        }))
        .unwrap();
        let container: ContainerSpec = serde_json::from_value(json!({
            "image": "python:3.11", "command": ["sh", "-c", "echo > x"], "args": ["--y"],
        }))
        .unwrap();
        let parameters = json!({"x": 5, "f": 0.5}).as_object().unwrap().clone();
        let artifact = RuntimeArtifact {
            name: "in".into(),
            uri: "/somewhere/in".into(),
            schema_title: "system.Dataset".into(),
            schema_version: String::new(),
            metadata: Map::new(),
            id: Some(7),
        };
        let artifacts = BTreeMap::from([
            ("in".to_owned(), vec![artifact]),
            ("none".to_owned(), vec![]),
        ]);
        (component, container, parameters, artifacts)
    }

    #[test]
    fn the_fingerprint_hashes_the_cache_key_as_the_driver_writes_it() {
        let (component, container, parameters, artifacts) = fixture();
        let task = task(json!({"enableCache": true}));
        // SHA-256 of the key as the driver writes it (computed with Python's hashlib):
        // {"containerSpec":{"cmdArgs":["sh","-c","echo \u003e x","--y"],"image":"python:3.11"},
        //  "inputArtifactNames":{"in":{"artifactNames":["7"]},"none":{}},
        //  "inputParameterValues":{"f":0.5,"x":5},
        //  "outputArtifactsSpec":{"data":{"name":"data","type":{"schemaTitle":"system.Dataset","schemaVersion":"0.0.1"}}},
        //  "outputParametersSpec":{"Output":"NUMBER_INTEGER"}}
        assert_eq!(
            fingerprint(&task, &component, &container, &parameters, &artifacts, &[]).as_deref(),
            Some("85e4a3c2a2b0619ea144307a978a6ca759bb6e7a811231c716dabdd6d204d4ed")
        );
        // A mounted claim is an input: another claim, another fingerprint.
        let on = |claim: &str| {
            fingerprint(
                &task,
                &component,
                &container,
                &parameters,
                &artifacts,
                &[claim.into()],
            )
        };
        assert_ne!(on("run-1-pvc"), on("run-2-pvc"));
        assert_ne!(
            on("run-1-pvc"),
            fingerprint(&task, &component, &container, &parameters, &artifacts, &[])
        );
        // An input artifact without a recorded id cannot be fingerprinted.
        let mut unrecorded = artifacts.clone();
        unrecorded.get_mut("in").unwrap()[0].id = None;
        assert_eq!(
            fingerprint(&task, &component, &container, &parameters, &unrecorded, &[]),
            None
        );
    }

    #[test]
    fn a_custom_cache_key_replaces_everything_else() {
        let (component, container, parameters, artifacts) = fixture();
        let task = task(json!({"enableCache": true, "cacheKey": "model-v1"}));
        // sha256(b"comp-stamp\x00model-v1")
        assert_eq!(
            fingerprint(&task, &component, &container, &parameters, &artifacts, &[]).as_deref(),
            Some("0d746a36664bdc87746af2c7f9671938fa3733ad7ab45672fbbb5d0888f1e694")
        );
    }

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
