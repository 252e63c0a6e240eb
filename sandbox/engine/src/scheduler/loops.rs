//! ParallelFor: the items a loop runs over, each iteration's scope, and the fan-in
//! (`dsl.Collected`) of the iterations' outputs.

use kfbox_spec::ir::{DagSpec, TaskSpec};
use kfbox_spec::value::value_to_text;
use serde_json::{Map, Value};

use crate::model::RuntimeArtifact;

use super::context::{Artifacts, Inputs, Outcome};

/// One scope per iteration: the loop's inputs with the item bound to the iterator's input.
pub(super) fn loop_items(task: &TaskSpec, inputs: &Inputs) -> Result<Vec<Inputs>, String> {
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
            items
                .into_iter()
                .map(|item| {
                    // The items stay visible: a nested loop may iterate over them again.
                    let mut scope = inputs.clone();
                    scope.parameters.insert(iterator.item_input.clone(), item);
                    scope
                })
                .collect()
        })
    } else if let Some(iterator) = &task.artifact_iterator {
        match inputs.artifacts.get(&iterator.items.input_artifact) {
            Some(list) => Ok(list
                .iter()
                .map(|artifact| {
                    let mut scope = inputs.clone();
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
