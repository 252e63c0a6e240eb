//! A pipeline file from nowhere: whatever the bytes, loading and validating them, then expanding
//! every command placeholder of a pipeline that passed, ends in a value or an error: never a
//! panic, an abort (a stack overflow) or a hang.
#![no_main]

use std::path::Path;

use kfbox_spec::expr::{evaluate_condition, select};
use kfbox_spec::placeholder::{parse_arg, PlaceholderError, Reference, Resolver};
use libfuzzer_sys::fuzz_target;

/// Answers every reference with a short value, as a step's inputs would.
struct Anything;

impl Resolver for Anything {
    fn resolve(&self, reference: &Reference) -> Result<String, PlaceholderError> {
        Ok(format!("{reference:?}").chars().take(32).collect())
    }

    fn is_present(&self, input: &str) -> bool {
        input.len() % 2 == 0
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pipeline) = kfbox_spec::parse_pipeline(Path::new("fuzz.yaml"), text) else {
        return;
    };
    // The executors components use: validation checks those (the others never run).
    let spec = &pipeline.spec;
    let used = spec
        .components
        .values()
        .filter_map(|c| c.executor_label.as_ref())
        .filter_map(|label| spec.deployment_spec.executors.get(label));
    for executor in used {
        let Some(container) = &executor.container else {
            continue;
        };
        for word in container.command.iter().chain(&container.args) {
            // Validation parsed every word already; expansion must not fail on a parsed one
            // for a reason other than a missing value.
            let arg = parse_arg(word).expect("validation accepted this word");
            let _ = arg.expand(&Anything);
        }
    }
    // Conditions and selectors passed their syntax check; evaluating them must end too.
    let dags = std::iter::once(&pipeline.spec.root)
        .chain(pipeline.spec.components.values())
        .filter_map(|c| c.dag.as_ref());
    for task in dags.flat_map(|d| d.tasks.values()) {
        if let Some(condition) = &task.trigger_policy.condition {
            let _ = evaluate_condition(condition, &serde_json::Map::new(), serde_json::json!({}));
        }
        for input in task.inputs.parameters.values() {
            if let Some(selector) = &input.parameter_expression_selector {
                let _ = select(selector, &serde_json::json!({"a": [1, "x"]}));
            }
        }
    }
    let _ = pipeline.source.to_string();
});
