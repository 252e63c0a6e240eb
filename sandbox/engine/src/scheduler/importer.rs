//! Importer tasks: an existing artifact, by URI, recorded as the task's output.

use std::collections::BTreeMap;

use kfbox_spec::ir::{ComponentSpec, TaskSpec};
use kfbox_spec::value::value_to_text;
use serde_json::{Map, Value};

use crate::ledger::Draft;
use crate::model::{RuntimeArtifact, TaskKind, TaskState};

use super::context::{ended_record, local_uri, now, Inputs, Outcome, Run};

pub(super) fn run_importer(
    run: &Run,
    task: &TaskSpec,
    component: &ComponentSpec,
    path: &str,
    inputs: &Inputs,
    draft: Draft,
) -> Outcome {
    let started_at = now();
    let label = component.executor_label.as_deref().unwrap_or_default();
    let importer = run.pipeline.spec.deployment_spec.executors[label]
        .importer
        .as_ref()
        .expect("importer kind checked");
    let uri = match (
        &importer.artifact_uri.constant,
        &importer.artifact_uri.runtime_parameter,
    ) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (_, Some(param)) => inputs.parameters.get(param).map(value_to_text),
        _ => None,
    };
    let mut outcome = match uri.filter(|u| !u.is_empty()) {
        None => Outcome::empty(
            TaskState::Failed,
            Some("importer has no artifact URI".into()),
        ),
        Some(uri) => {
            let metadata = match importer
                .metadata
                .as_ref()
                .map(|m| substitute_inputs(m, inputs))
            {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            let output = component
                .output_definitions
                .artifacts
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "artifact".into());
            let artifact = RuntimeArtifact {
                name: output.clone(),
                uri: local_uri(&uri),
                schema_title: importer.type_schema.schema_title.clone(),
                schema_version: importer.type_schema.schema_version.clone(),
                metadata,
                id: None,
            };
            Outcome {
                state: TaskState::Succeeded,
                parameters: Map::new(),
                artifacts: BTreeMap::from([(output, vec![artifact])]),
                error: None,
            }
        }
    };
    let record = ended_record(
        task,
        path,
        TaskKind::Importer,
        &outcome,
        Some(started_at),
        1,
    );
    run.record(draft, record, &mut outcome, Vec::new());
    outcome
}

/// Importer metadata may carry `{{$.inputs.parameters['x']}}` in keys and values.
pub(super) fn substitute_inputs(value: &Value, inputs: &Inputs) -> Value {
    let text = |s: &str| -> String {
        let mut out = s.to_owned();
        for (name, v) in &inputs.parameters {
            out = out.replace(
                &format!("{{{{$.inputs.parameters['{name}']}}}}"),
                &value_to_text(v),
            );
        }
        out
    };
    match value {
        Value::String(s) => {
            let replaced = text(s);
            // A whole-value placeholder keeps the parameter's type.
            inputs
                .parameters
                .iter()
                .find(|(name, _)| s == &format!("{{{{$.inputs.parameters['{name}']}}}}"))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::String(replaced))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute_inputs(v, inputs)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (text(k), substitute_inputs(v, inputs)))
                .collect(),
        ),
        other => other.clone(),
    }
}
