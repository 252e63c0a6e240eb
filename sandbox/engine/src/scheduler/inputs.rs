//! A task's inputs, resolved from its parent's inputs, its upstream siblings and runtime
//! constants, then checked and converted against the component (as the backend's driver does).

use std::collections::HashMap;

use kfbox_spec::expr::select;
use kfbox_spec::ir::{ComponentSpec, InputParameter, ParameterType, TaskSpec};
use kfbox_spec::value::coerce;
use serde_json::{json, Value};

use crate::model::TaskState;

use super::context::{Inputs, Outcome, Run};

/// Resolve a task's inputs from its parent's inputs and its upstream siblings, then check and
/// convert them against the component's input definitions (as the backend's driver does).
pub(super) fn resolve_inputs(
    run: &Run,
    task: &TaskSpec,
    component: &ComponentSpec,
    scope: &Inputs,
    siblings: &HashMap<String, Outcome>,
) -> Result<Inputs, String> {
    let definitions = &component.input_definitions;
    let mut inputs = Inputs::default();
    for (name, spec) in &task.inputs.parameters {
        let definition = definitions.parameters.get(name);
        if definition.map(|d| d.parameter_type) == Some(ParameterType::TaskConfig) {
            continue;
        }
        let optional = definition.is_some_and(|d| d.is_optional);
        let value = source_value(run, task, spec, scope, siblings, optional)
            .map_err(|e| format!("input `{name}`: {e}"))?;
        let value = match (value, &spec.parameter_expression_selector) {
            (Some(v), Some(selector)) => {
                Some(select(selector, &v).map_err(|e| format!("input `{name}`: {e}"))?)
            }
            (v, _) => v,
        };
        if let Some(v) = value {
            inputs.parameters.insert(name.clone(), v);
        }
    }
    for (name, spec) in &task.inputs.artifacts {
        let found = if let Some(source) = &spec.component_input_artifact {
            scope.artifacts.get(source).cloned()
        } else if let Some(source) = &spec.task_output_artifact {
            siblings[&source.producer_task]
                .artifacts
                .get(&source.output_artifact_key)
                .cloned()
        } else {
            None
        };
        match found {
            Some(list) => {
                inputs.artifacts.insert(name.clone(), list);
            }
            None if definitions
                .artifacts
                .get(name)
                .is_some_and(|d| d.is_optional) => {}
            None => {
                return Err(format!(
                    "input artifact `{name}` has no value (its producer did not write it)"
                ))
            }
        }
    }
    // A nested pipeline sees its optional inputs' defaults, as with the root DAG.
    if component.dag.is_some() {
        for (name, definition) in &definitions.parameters {
            if !inputs.parameters.contains_key(name) {
                if let Some(default) = &definition.default_value {
                    inputs.parameters.insert(name.clone(), default.clone());
                }
            }
        }
    }
    let item_input = task
        .parameter_iterator
        .as_ref()
        .map(|it| it.item_input.as_str())
        .or(task
            .artifact_iterator
            .as_ref()
            .map(|it| it.item_input.as_str()));
    for (name, definition) in &definitions.parameters {
        if Some(name.as_str()) == item_input {
            continue;
        }
        match inputs.parameters.remove(name) {
            Some(value) => {
                let value = coerce(value, definition.parameter_type)
                    .map_err(|e| format!("input parameter `{name}`: {e}"))?;
                inputs.parameters.insert(name.clone(), value);
            }
            None if definition.is_optional || definition.default_value.is_some() => {}
            None => {
                return Err(format!(
                    "neither value nor default value provided for non-optional parameter `{name}`"
                ))
            }
        }
    }
    Ok(inputs)
}

/// The value an input parameter's source gives (before its selector), or none.
pub(super) fn source_value(
    run: &Run,
    task: &TaskSpec,
    spec: &InputParameter,
    scope: &Inputs,
    siblings: &HashMap<String, Outcome>,
    optional: bool,
) -> Result<Option<Value>, String> {
    let producer = |name: &String| {
        siblings
            .get(name)
            .ok_or_else(|| format!("task `{name}` has not run before this one"))
    };
    Ok(if let Some(source) = &spec.component_input_parameter {
        scope
            .parameters
            .get(source)
            .filter(|v| !v.is_null())
            .cloned()
    } else if let Some(source) = &spec.task_output_parameter {
        let producer = producer(&source.producer_task)?;
        match producer.parameters.get(&source.output_parameter_key) {
            Some(v) => Some(v.clone()),
            None if optional => None,
            None => {
                return Err(format!(
                    "task `{}` ({}) produced no output parameter `{}`",
                    source.producer_task,
                    producer.state.as_str(),
                    source.output_parameter_key
                ))
            }
        }
    } else if let Some(source) = &spec.runtime_value {
        match &source.constant {
            Some(Value::String(s)) => {
                Some(Value::String(run.runtime_constant(s, &task.task_info.name)))
            }
            other => other.clone(),
        }
    } else if let Some(source) = &spec.task_final_status {
        let producer = producer(&source.producer_task)?;
        // The backend reports the producer's MLMD execution state.
        let state = match producer.state {
            TaskState::Succeeded | TaskState::Skipped => "COMPLETE",
            TaskState::Cached => "CACHED",
            // A producer has ended before its dependents resolve inputs.
            TaskState::Running => "RUNNING",
            TaskState::Failed => "FAILED",
            TaskState::Canceled => "CANCELED",
        };
        let error = match &producer.error {
            Some(message) => json!({"code": 2, "message": message}),
            None => json!({}),
        };
        Some(json!({
            "state": state,
            "pipelineJobResourceName": run.resource_name,
            "pipelineTaskName": source.producer_task,
            "error": error,
        }))
    } else {
        None
    })
}
