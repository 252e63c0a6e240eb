//! Static checks run before anything executes, so that a broken pipeline fails whole and early.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use kfbox_paths::check_name;

use crate::expr::check_syntax;
use crate::ir::{ComponentSpec, DagSpec, ParameterType, PipelineSpec};
use crate::limits::{MAX_NESTING, MAX_TASKS, MAX_WORD_BYTES};
use crate::placeholder::{parse_arg, Reference};
use crate::value::coerce;

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

/// A name as problems show it: names come from the file, and a hostile one may be megabytes.
fn short(name: &str) -> Cow<'_, str> {
    if name.chars().count() <= 80 {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("{}…", name.chars().take(80).collect::<String>()))
    }
}

pub fn validate(spec: &PipelineSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |location: String, message: String| problems.push(Problem { location, message });
    if spec.pipeline_info.name.is_empty() {
        push("pipelineInfo.name".into(), "is empty".into());
    }
    // The compiler of kfp 2 writes 2.1.0; a newer major version may mean anything.
    let version = &spec.schema_version;
    if !version.is_empty() && version.split('.').next() != Some("2") {
        push(
            "schemaVersion".into(),
            format!(
                "`{}` is not supported: kfbox runs PipelineSpec 2.x, as the kfp 2 compiler writes",
                short(version)
            ),
        );
    }
    if spec.root.dag.is_none() {
        push("root".into(), "has no `dag`".into());
    }
    let components = std::iter::once(("root", &spec.root))
        .chain(spec.components.iter().map(|(k, v)| (k.as_str(), v)));
    for (name, component) in components {
        check_defaults(name, component, &mut push);
        match (&component.dag, &component.executor_label) {
            (Some(dag), _) => check_dag(spec, name, dag, &mut push),
            (None, Some(label)) => check_executor(spec, name, component, label, &mut push),
            (None, None) => push(
                format!("components.{}", short(name)),
                "has neither `dag` nor `executorLabel`".into(),
            ),
        }
    }
    check_nesting(spec, &mut push);
    problems
}

/// Integer defaults must be integers that fit 64 bits: a cast would clamp them silently.
fn check_defaults(component: &str, spec: &ComponentSpec, push: &mut impl FnMut(String, String)) {
    for (name, parameter) in &spec.input_definitions.parameters {
        let Some(default @ serde_json::Value::Number(_)) = &parameter.default_value else {
            continue;
        };
        if parameter.parameter_type != ParameterType::NumberInteger {
            continue;
        }
        if let Err(e) = coerce(default.clone(), ParameterType::NumberInteger) {
            push(
                format!(
                    "components.{}.inputDefinitions.parameters.{}.defaultValue",
                    short(component),
                    short(name)
                ),
                e.to_string(),
            );
        }
    }
}

/// What the root DAG holds, nested pipelines expanded: how deep DAGs nest and how many tasks
/// there are. A component that contains itself (directly or through others) would nest without
/// end and is refused. Iterative, so a hostile file cannot exhaust the stack.
fn check_nesting(spec: &PipelineSpec, push: &mut impl FnMut(String, String)) {
    struct Frame<'a> {
        name: &'a str,
        children: Vec<&'a str>,
        next: usize,
        depth: usize,
        tasks: u64,
    }
    let dag_of = |name: &str| -> Option<&DagSpec> {
        if name == "root" {
            spec.root.dag.as_ref()
        } else {
            spec.component(name).and_then(|c| c.dag.as_ref())
        }
    };
    let frame = |name| {
        let dag = dag_of(name);
        Frame {
            name,
            children: dag
                .into_iter()
                .flat_map(|d| d.tasks.values())
                .map(|t| t.component_ref.name.as_str())
                .collect(),
            next: 0,
            depth: 0,
            tasks: dag.map_or(0, |d| d.tasks.len() as u64),
        }
    };
    // (depth, tasks) of each DAG component seen whole.
    let mut done: HashMap<&str, (usize, u64)> = HashMap::new();
    let mut stack = vec![frame("root")];
    let (depth, tasks) = loop {
        let Some(top) = stack.last_mut() else {
            unreachable!("the root frame is popped last");
        };
        if let Some(&child) = top.children.get(top.next) {
            top.next += 1;
            if let Some(&(depth, tasks)) = done.get(child) {
                top.depth = top.depth.max(depth);
                top.tasks = top.tasks.saturating_add(tasks);
            } else if let Some(start) = stack.iter().position(|f| f.name == child) {
                let mut path: Vec<&str> = stack[start..].iter().map(|f| f.name).collect();
                path.push(child);
                push(
                    format!("components.{}", short(child)),
                    format!(
                        "contains itself ({}), so it would nest without end",
                        path.iter()
                            .map(|p| short(p))
                            .collect::<Vec<_>>()
                            .join(" -> ")
                    ),
                );
                return;
            } else if dag_of(child).is_some() {
                stack.push(frame(child));
            }
            continue;
        }
        let finished = stack.pop().expect("a frame");
        let depth = finished.depth + 1;
        match stack.last_mut() {
            Some(parent) => {
                done.insert(finished.name, (depth, finished.tasks));
                parent.depth = parent.depth.max(depth);
                parent.tasks = parent.tasks.saturating_add(finished.tasks);
            }
            None => break (depth, finished.tasks),
        }
    };
    if depth > MAX_NESTING {
        push(
            "root".into(),
            format!("DAGs nest {depth} levels deep (nested pipelines, conditions, loops); kfbox runs at most {MAX_NESTING}"),
        );
    }
    if tasks > MAX_TASKS {
        push(
            "root".into(),
            format!("the pipeline has {tasks} tasks, counting a nested pipeline's tasks each time it is used; kfbox runs at most {MAX_TASKS}"),
        );
    }
}

fn check_dag(
    spec: &PipelineSpec,
    component: &str,
    dag: &DagSpec,
    push: &mut impl FnMut(String, String),
) {
    let mut edges: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (task_name, task) in &dag.tasks {
        let at = |field: &str| {
            format!(
                "component `{}`, task `{}`, {field}",
                short(component),
                short(task_name)
            )
        };
        // Task names become directories and log files of the run.
        if let Err(e) = check_name(task_name) {
            push(at("name"), format!("cannot name a file: {e}"));
        }
        let deps = edges.entry(task_name.as_str()).or_default();
        if spec.component(&task.component_ref.name).is_none() {
            push(
                at("componentRef.name"),
                format!("unknown component `{}`", short(&task.component_ref.name)),
            );
        }
        for dep in &task.dependent_tasks {
            if dag.tasks.contains_key(dep) {
                deps.insert(dep.as_str());
            } else {
                push(
                    at("dependentTasks"),
                    format!("unknown task `{}`", short(dep)),
                );
            }
        }
        for (input, param) in &task.inputs.parameters {
            let field = format!("inputs.parameters.{}", short(input));
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
                        format!("unknown producer task `{}`", short(&source.producer_task)),
                    );
                }
            }
            if let Some(source) = &param.task_final_status {
                if !dag.tasks.contains_key(&source.producer_task) {
                    push(
                        at(&field),
                        format!("unknown producer task `{}`", short(&source.producer_task)),
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
            let field = format!("inputs.artifacts.{}", short(input));
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
                            format!("unknown producer task `{}`", short(&source.producer_task)),
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
            format!("component `{}`", short(component)),
            format!(
                "dependency cycle: {}",
                cycle
                    .iter()
                    .map(|t| short(t))
                    .collect::<Vec<_>>()
                    .join(" -> ")
            ),
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
                    format!(
                        "component `{}`, dag.outputs.parameters.{}",
                        short(component),
                        short(name)
                    ),
                    format!(
                        "unknown producer subtask `{}`",
                        short(&selector.producer_subtask)
                    ),
                );
            }
        }
    }
    for (name, output) in &dag.outputs.artifacts {
        for selector in &output.artifact_selectors {
            if !dag.tasks.contains_key(&selector.producer_subtask) {
                push(
                    format!(
                        "component `{}`, dag.outputs.artifacts.{}",
                        short(component),
                        short(name)
                    ),
                    format!(
                        "unknown producer subtask `{}`",
                        short(&selector.producer_subtask)
                    ),
                );
            }
        }
    }
}

/// A dependency cycle among a DAG's tasks, as the path that closes it. Iterative: a chain of
/// tens of thousands of tasks is an ordinary file, not a reason to exhaust the stack.
fn find_cycle<'a>(edges: &HashMap<&'a str, HashSet<&'a str>>) -> Option<Vec<&'a str>> {
    let sorted = |node: &'a str| -> Vec<&'a str> {
        let mut next: Vec<&'a str> = edges.get(node).into_iter().flatten().copied().collect();
        next.sort_unstable();
        next
    };
    let mut done: HashSet<&'a str> = HashSet::new();
    let mut nodes: Vec<&'a str> = edges.keys().copied().collect();
    nodes.sort_unstable();
    for start in nodes {
        if done.contains(start) {
            continue;
        }
        // The path being walked, each node with the dependencies it has left to visit.
        let mut path: Vec<(&'a str, Vec<&'a str>)> = vec![(start, sorted(start))];
        let mut on_path: HashSet<&'a str> = HashSet::from([start]);
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            match next.pop() {
                Some(dep) if on_path.contains(dep) => {
                    let from = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let mut cycle: Vec<&'a str> = path[from..].iter().map(|(n, _)| *n).collect();
                    cycle.push(dep);
                    return Some(cycle);
                }
                Some(dep) if !done.contains(dep) => {
                    on_path.insert(dep);
                    let mut deps = sorted(dep);
                    deps.reverse();
                    path.push((dep, deps));
                }
                Some(_) => {}
                None => {
                    done.insert(node);
                    on_path.remove(node);
                    path.pop();
                }
            }
        }
    }
    None
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
            format!("components.{}.executorLabel", short(component_name)),
            format!(
                "unknown executor `{}` (not in deploymentSpec.executors)",
                short(label)
            ),
        );
        return;
    };
    let Some(container) = &executor.container else {
        if executor.importer.is_none() {
            push(
                format!("deploymentSpec.executors.{}", short(label)),
                "only container and importer executors run locally".into(),
            );
        }
        return;
    };
    if let Err(e) = kfbox_resources::Resources::from_ir(container.resources.as_ref()) {
        push(
            format!(
                "deploymentSpec.executors.{}.container.resources",
                short(label)
            ),
            e,
        );
    }
    let inputs = &component.input_definitions;
    let outputs = &component.output_definitions;
    // Output names become files and directories of the step.
    let names = outputs
        .parameters
        .keys()
        .map(|n| ("parameters", n))
        .chain(outputs.artifacts.keys().map(|n| ("artifacts", n)));
    for (kind, name) in names {
        if let Err(e) = check_name(name) {
            push(
                format!(
                    "components.{}.outputDefinitions.{kind}.{}",
                    short(component_name),
                    short(name)
                ),
                format!("cannot name a file: {e}"),
            );
        }
    }
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
        let at = format!(
            "deploymentSpec.executors.{}.container.{field}",
            short(label)
        );
        if text.len() > MAX_WORD_BYTES {
            push(
                at,
                format!(
                    "is {} KiB; one command-line word is at most {} KiB (Linux refuses longer ones)\nhint: pass large values as input artifacts",
                    text.len() >> 10,
                    MAX_WORD_BYTES >> 10
                ),
            );
            continue;
        }
        if text.contains('\0') {
            push(
                at,
                "contains a NUL byte, which no command line can carry".into(),
            );
            continue;
        }
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
                    format!("IfPresent names unknown input `{}`", short(name)),
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
                        "placeholder names `{}`, which component `{}` does not declare",
                        short(name),
                        short(component_name)
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PipelineSpec {
        serde::Deserialize::deserialize(value).unwrap()
    }

    /// A pipeline whose components are `dags` (name -> [(task, component)]) plus one executor
    /// component `comp-step`; the root runs `root`.
    fn with_dags(root: &[(&str, &str)], dags: &[(&str, Vec<(String, String)>)]) -> PipelineSpec {
        let dag = |tasks: Vec<(String, String)>| {
            let tasks: serde_json::Map<String, serde_json::Value> = tasks
                .into_iter()
                .map(|(t, c)| {
                    (
                        t,
                        json!({"taskInfo": {"name": "x"}, "componentRef": {"name": c}}),
                    )
                })
                .collect();
            json!({"dag": {"tasks": tasks}})
        };
        let mut components = serde_json::Map::new();
        components.insert("comp-step".into(), json!({"executorLabel": "exec"}));
        for (name, tasks) in dags {
            components.insert((*name).to_owned(), dag(tasks.clone()));
        }
        let root_tasks = root
            .iter()
            .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
            .collect();
        spec(json!({
            "pipelineInfo": {"name": "p"},
            "root": dag(root_tasks),
            "components": components,
            "deploymentSpec": {"executors": {"exec": {"container": {"image": "i", "command": ["true"]}}}},
        }))
    }

    fn messages(spec: &PipelineSpec) -> String {
        validate(spec)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn long_chains_are_checked_without_deep_recursion() {
        let mut edges: HashMap<&str, HashSet<&str>> = HashMap::new();
        let names: Vec<String> = (0..200_000).map(|i| format!("t{i}")).collect();
        for pair in names.windows(2) {
            edges.entry(&pair[1]).or_default().insert(&pair[0]);
        }
        edges.entry(&names[0]).or_default();
        // A thread with a small stack: recursion one frame per task would overflow it.
        let found = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn_scoped(scope, || find_cycle(&edges).is_some())
                .unwrap()
                .join()
                .unwrap()
        });
        assert!(!found);
        edges.get_mut("t0").unwrap().insert("t199999");
        let cycle = find_cycle(&edges).expect("the closing edge makes a cycle");
        assert_eq!(cycle.len(), 200_001);
    }

    #[test]
    fn a_component_that_contains_itself_is_refused() {
        let direct = with_dags(
            &[("a", "comp-a")],
            &[("comp-a", vec![("again".into(), "comp-a".into())])],
        );
        assert!(messages(&direct).contains("contains itself (comp-a -> comp-a)"));
        let mutual = with_dags(
            &[("a", "comp-a")],
            &[
                ("comp-a", vec![("b".into(), "comp-b".into())]),
                (
                    "comp-b",
                    vec![
                        ("s".into(), "comp-step".into()),
                        ("a".into(), "comp-a".into()),
                    ],
                ),
            ],
        );
        assert!(messages(&mutual).contains("comp-a -> comp-b -> comp-a"));
    }

    /// `count` DAG components `comp-l0`.. each running the next `width` times; the last runs
    /// `comp-step`.
    fn levels(count: usize, width: usize) -> PipelineSpec {
        let dags: Vec<(String, Vec<(String, String)>)> = (0..count)
            .map(|l| {
                let inner = if l + 1 == count {
                    "comp-step".to_owned()
                } else {
                    format!("comp-l{}", l + 1)
                };
                let tasks = (0..width).map(|i| (format!("t{i}"), inner.clone()));
                (format!("comp-l{l}"), tasks.collect())
            })
            .collect();
        let dags: Vec<(&str, Vec<(String, String)>)> =
            dags.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        with_dags(&[("start", "comp-l0")], &dags)
    }

    #[test]
    fn nesting_and_expanded_tasks_are_limited() {
        // Twelve levels, each running the next ten times: 10^12 tasks once expanded, counted
        // without expanding them.
        let text = messages(&levels(12, 10));
        assert!(
            text.contains("the pipeline has 1111111111111 tasks"),
            "{text}"
        );
        assert!(!text.contains("levels deep"), "{text}");
        let mut deep = levels(40, 1);

        assert!(messages(&deep).contains("DAGs nest 41 levels deep"));
        // Started nine levels down, the same components nest 32 deep: the most allowed.
        deep.root.dag.as_mut().unwrap().tasks["start"]
            .component_ref
            .name = "comp-l9".into();
        assert_eq!(messages(&deep), "");
    }

    #[test]
    fn names_that_become_paths_are_checked_up_front() {
        let mut spec = with_dags(&[("../up", "comp-step")], &[]);
        spec.components["comp-step"]
            .output_definitions
            .parameters
            .insert("/etc/passwd".into(), Default::default());
        let text = messages(&spec);
        assert!(
            text.contains("task `../up`, name: cannot name a file"),
            "{text}"
        );
        assert!(
            text.contains("outputDefinitions.parameters./etc/passwd: cannot name a file"),
            "{text}"
        );
    }

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
