//! ParallelFor: the items a loop runs over, each iteration's scope, and the fan-in
//! (`dsl.Collected`) of the iterations' outputs.

use kfbox_spec::ir::{DagSpec, TaskSpec};
use kfbox_spec::value::value_to_text;
use serde_json::{Map, Value};

use crate::model::RuntimeArtifact;

use super::context::{Artifacts, Inputs, Outcome};

/// One scope per iteration: the loop's inputs with the item bound to the iterator's input.
///
/// The list iterated over stays in each scope only when a task of the body reads it (a nested
/// loop over the same items, say): n copies of an n-item list, each recorded with its
/// iteration, would make a loop's memory and store quadratic in its length.
pub(super) fn loop_items(
    task: &TaskSpec,
    inputs: &Inputs,
    body: &DagSpec,
) -> Result<Vec<Inputs>, String> {
    if let Some(iterator) = &task.parameter_iterator {
        let raw = match (&iterator.items.raw, &iterator.items.input_parameter) {
            (Some(raw), _) => serde_json::from_str::<Value>(raw).map_err(|e| e.to_string()),
            (None, Some(input)) => match inputs.parameters.get(input) {
                Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                    .map_err(|e| format!("loop items `{input}` are not a JSON list: {e}")),
                Some(v) => Ok(v.clone()),
                None => Err(format!("loop items input `{input}` has no value")),
            },
            (None, None) => Err("parameterIterator has no items".into()),
        };
        raw.and_then(|v| match v {
            Value::Array(items) => Ok(items),
            other => Err(format!(
                "loop items are not a list: {}",
                value_to_text(&other)
            )),
        })
        .map(|items| {
            let mut base = inputs.clone();
            if let Some(input) = &iterator.items.input_parameter {
                if !body_reads_parameter(body, input) {
                    base.parameters.remove(input);
                }
            }
            items
                .into_iter()
                .map(|item| {
                    let mut scope = base.clone();
                    scope.parameters.insert(iterator.item_input.clone(), item);
                    scope
                })
                .collect()
        })
    } else if let Some(iterator) = &task.artifact_iterator {
        let list_name = &iterator.items.input_artifact;
        let mut base = inputs.clone();
        if !body_reads_artifact(body, list_name) {
            base.artifacts.remove(list_name);
        }
        match inputs.artifacts.get(list_name) {
            Some(list) => Ok(list
                .iter()
                .map(|artifact| {
                    let mut scope = base.clone();
                    scope
                        .artifacts
                        .insert(iterator.item_input.clone(), vec![artifact.clone()]);
                    scope
                })
                .collect()),
            None => Err(format!(
                "loop artifacts `{}` have no value",
                iterator.items.input_artifact
            )),
        }
    } else {
        Err("loop task without an iterator".into())
    }
}

fn body_reads_parameter(body: &DagSpec, name: &str) -> bool {
    body.tasks.values().any(|task| {
        task.inputs
            .parameters
            .values()
            .any(|p| p.component_input_parameter.as_deref() == Some(name))
    })
}

fn body_reads_artifact(body: &DagSpec, name: &str) -> bool {
    body.tasks.values().any(|task| {
        task.inputs
            .artifacts
            .values()
            .any(|a| a.component_input_artifact.as_deref() == Some(name))
    })
}

/// Each output of the loop's body becomes the list of the iterations' values, in order.
pub(super) fn fan_in(body: &DagSpec, ran: &[&Outcome]) -> (Map<String, Value>, Artifacts) {
    let mut parameters = Map::new();
    for name in body.outputs.parameters.keys() {
        let values: Vec<Value> = ran
            .iter()
            .filter_map(|o| o.parameters.get(name).cloned())
            .collect();
        parameters.insert(name.clone(), Value::Array(values));
    }
    let mut artifacts = Artifacts::new();
    for name in body.outputs.artifacts.keys() {
        let list: Vec<RuntimeArtifact> = ran
            .iter()
            .filter_map(|o| o.artifacts.get(name))
            .flatten()
            .cloned()
            .collect();
        artifacts.insert(name.clone(), list);
    }
    (parameters, artifacts)
}
