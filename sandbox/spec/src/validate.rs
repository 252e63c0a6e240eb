//! Static checks run before anything executes, so that a broken pipeline fails whole and early.

use std::collections::{HashMap, HashSet};

use crate::expr::check_syntax;
use crate::ir::{ComponentSpec, DagSpec, PipelineSpec};
use crate::placeholder::{parse_arg, Reference};

/// One thing wrong with a pipeline, located by component, task and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

pub fn validate(spec: &PipelineSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |location: String, message: String| problems.push(Problem { location, message });
    if spec.pipeline_info.name.is_empty() {
        push("pipelineInfo.name".into(), "is empty".into());
    }
    if spec.root.dag.is_none() {
        push("root".into(), "has no `dag`".into());
    }
    let components = std::iter::once(("root", &spec.root))
        .chain(spec.components.iter().map(|(k, v)| (k.as_str(), v)));
    for (name, component) in components {
        match (&component.dag, &component.executor_label) {
            (Some(dag), _) => check_dag(spec, name, dag, &mut push),
            (None, Some(label)) => check_executor(spec, name, component, label, &mut push),
            (None, None) => push(
                format!("components.{name}"),
                "has neither `dag` nor `executorLabel`".into(),
            ),
        }
    }
    problems
}

fn check_dag(
    spec: &PipelineSpec,
    component: &str,
    dag: &DagSpec,
    push: &mut impl FnMut(String, String),
) {
    let mut edges: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (task_name, task) in &dag.tasks {
        let at = |field: &str| format!("component `{component}`, task `{task_name}`, {field}");
        let deps = edges.entry(task_name.as_str()).or_default();
        if spec.component(&task.component_ref.name).is_none() {
            push(
                at("componentRef.name"),
                format!("unknown component `{}`", task.component_ref.name),
            );
        }
        for dep in &task.dependent_tasks {
            if dag.tasks.contains_key(dep) {
                deps.insert(dep.as_str());
            } else {
                push(at("dependentTasks"), format!("unknown task `{dep}`"));
            }
        }
        for (input, param) in &task.inputs.parameters {
            let field = format!("inputs.parameters.{input}");
            let sources = [
                param.component_input_parameter.is_some(),
                param.task_output_parameter.is_some(),
                param.runtime_value.is_some(),
                param.task_final_status.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                push(at(&field), "needs exactly one value source".into());
            }
            if let Some(source) = &param.task_output_parameter {
                if dag.tasks.contains_key(&source.producer_task) {
                    deps.insert(source.producer_task.as_str());
                } else {
                    push(
                        at(&field),
                        format!("unknown producer task `{}`", source.producer_task),
                    );
                }
            }
            if let Some(source) = &param.task_final_status {
                if !dag.tasks.contains_key(&source.producer_task) {
                    push(
                        at(&field),
                        format!("unknown producer task `{}`", source.producer_task),
                    );
                }
            }
            if let Some(selector) = &param.parameter_expression_selector {
                if let Err(e) = check_syntax(selector) {
                    push(
                        at(&format!("{field}.parameterExpressionSelector")),
                        e.to_string(),
                    );
                }
            }
        }
        for (input, artifact) in &task.inputs.artifacts {
            let field = format!("inputs.artifacts.{input}");
            match (
                &artifact.component_input_artifact,
                &artifact.task_output_artifact,
            ) {
                (Some(_), None) => {}
                (None, Some(source)) => {
                    if dag.tasks.contains_key(&source.producer_task) {
                        deps.insert(source.producer_task.as_str());
                    } else {
                        push(
                            at(&field),
                            format!("unknown producer task `{}`", source.producer_task),
                        );
                    }
                }
                _ => push(at(&field), "needs exactly one artifact source".into()),
            }
        }
        if let Some(condition) = &task.trigger_policy.condition {
            if let Err(e) = check_syntax(condition) {
                push(at("triggerPolicy.condition"), e.to_string());
            }
        }
        if task.parameter_iterator.is_some() && task.artifact_iterator.is_some() {
            push(
                at("parameterIterator"),
                "parameterIterator and artifactIterator cannot both be set".into(),
            );
        }
        if let Some(raw) = task
            .parameter_iterator
            .as_ref()
            .and_then(|it| it.items.raw.as_ref())
        {
            if !matches!(serde_json::from_str(raw), Ok(serde_json::Value::Array(_))) {
                push(
                    at("parameterIterator.items.raw"),
                    format!("is not a JSON list: {raw}"),
                );
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        push(
            format!("component `{component}`"),
            format!("dependency cycle: {}", cycle.join(" -> ")),
        );
    }
    for (name, output) in &dag.outputs.parameters {
        let selectors = output.value_from_parameter.iter().chain(
            output
                .value_from_oneof
                .iter()
                .flat_map(|o| &o.parameter_selectors),
        );
        for selector in selectors {
            if !dag.tasks.contains_key(&selector.producer_subtask) {
                push(
                    format!("component `{component}`, dag.outputs.parameters.{name}"),
                    format!("unknown producer subtask `{}`", selector.producer_subtask),
                );
            }
        }
    }
    for (name, output) in &dag.outputs.artifacts {
        for selector in &output.artifact_selectors {
            if !dag.tasks.contains_key(&selector.producer_subtask) {
                push(
                    format!("component `{component}`, dag.outputs.artifacts.{name}"),
                    format!("unknown producer subtask `{}`", selector.producer_subtask),
                );
            }
        }
    }
}

fn find_cycle<'a>(edges: &HashMap<&'a str, HashSet<&'a str>>) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        edges: &HashMap<&'a str, HashSet<&'a str>>,
        marks: &mut HashMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Active) => {
                let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node);
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node, Mark::Active);
        stack.push(node);
        let mut next: Vec<_> = edges.get(node).into_iter().flatten().copied().collect();
        next.sort_unstable();
        for dep in next {
            if let Some(cycle) = visit(dep, edges, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = HashMap::new();
    let mut nodes: Vec<_> = edges.keys().copied().collect();
    nodes.sort_unstable();
    nodes
        .into_iter()
        .find_map(|n| visit(n, edges, &mut marks, &mut Vec::new()))
}

fn check_executor(
    spec: &PipelineSpec,
    component_name: &str,
    component: &ComponentSpec,
    label: &str,
    push: &mut impl FnMut(String, String),
) {
    let Some(executor) = spec.deployment_spec.executors.get(label) else {
        push(
            format!("components.{component_name}.executorLabel"),
            format!("unknown executor `{label}` (not in deploymentSpec.executors)"),
        );
        return;
    };
    let Some(container) = &executor.container else {
        if executor.importer.is_none() {
            push(
                format!("deploymentSpec.executors.{label}"),
                "only container and importer executors run locally".into(),
            );
        }
        return;
    };
    if let Err(e) = crate::resources::Resources::from_ir(container.resources.as_ref()) {
        push(
            format!("deploymentSpec.executors.{label}.container.resources"),
            e,
        );
    }
    let inputs = &component.input_definitions;
    let outputs = &component.output_definitions;
    let fields = container
        .command
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("command[{i}]"), a))
        .chain(
            container
                .args
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("args[{i}]"), a)),
        );
    for (field, text) in fields {
        let at = format!("deploymentSpec.executors.{label}.container.{field}");
        let arg = match parse_arg(text) {
            Ok(arg) => arg,
            Err(e) => {
                push(at, e.to_string());
                continue;
            }
        };
        for name in arg.if_present_inputs() {
            if !inputs.parameters.contains_key(name) && !inputs.artifacts.contains_key(name) {
                push(
                    at.clone(),
                    format!("IfPresent names unknown input `{name}`"),
                );
            }
        }
        for reference in arg.references() {
            let unknown = match reference {
                Reference::InputParameter(n) => (!inputs.parameters.contains_key(n)).then_some(n),
                Reference::InputArtifact(n, _) | Reference::InputArtifactList(n) => {
                    (!inputs.artifacts.contains_key(n)).then_some(n)
                }
                Reference::OutputParameterFile(n) => {
                    (!outputs.parameters.contains_key(n)).then_some(n)
                }
                Reference::OutputArtifact(n, _) => {
                    (!outputs.artifacts.contains_key(n)).then_some(n)
                }
                Reference::ExecutorInput | Reference::ExecutorOutputFile => None,
            };
            if let Some(name) = unknown {
                push(
                    at.clone(),
                    format!(
                        "placeholder names `{name}`, which component `{component_name}` does not declare"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_cycles_with_their_path() {
        let mut edges: HashMap<&str, HashSet<&str>> = HashMap::new();
        edges.entry("a").or_default().insert("b");
        edges.entry("b").or_default().insert("c");
        edges.entry("c").or_default().insert("a");
        let cycle = find_cycle(&edges).unwrap();
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
        edges.get_mut("c").unwrap().clear();
        assert!(find_cycle(&edges).is_none());
    }
}
