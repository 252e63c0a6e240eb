//! A retry policy set on a task that runs a pipeline (`set_retry` on a nested pipeline's task)
//! applies to the tasks inside it: KFP's backend compiler hands it down while it walks the
//! spec (backend/src/v2/compiler/visitor.go), and kfbox reproduces that walk exactly: depth
//! first from the root, a DAG's tasks in name order, each component visited once (so a DAG
//! used by several tasks takes the policy of the first one reached), a task's own policy kept.
//! The DAG task itself is not retried as a whole; its steps are.

use std::collections::HashSet;

use kfbox_spec::ir::{DagSpec, PipelineSpec, RetryPolicy};

/// The spec with inherited policies written into the inner tasks; None when nothing changes.
pub(super) fn with_inherited_retry_policies(spec: &PipelineSpec) -> Option<PipelineSpec> {
    let mut spec = spec.clone();
    let mut visited = HashSet::new();
    let mut changed = false;
    visit(&mut spec, None, None, &mut visited, &mut changed);
    changed.then_some(spec)
}

fn dag_of<'a>(spec: &'a mut PipelineSpec, component: Option<&str>) -> Option<&'a mut DagSpec> {
    match component {
        None => spec.root.dag.as_mut(),
        Some(name) => spec.components.get_mut(name)?.dag.as_mut(),
    }
}

/// `component` is None for the root; `inherited` is the policy of the task that runs it.
fn visit(
    spec: &mut PipelineSpec,
    component: Option<&str>,
    inherited: Option<RetryPolicy>,
    visited: &mut HashSet<Option<String>>,
    changed: &mut bool,
) {
    if !visited.insert(component.map(str::to_owned)) {
        return;
    }
    let Some(dag) = dag_of(spec, component) else {
        return;
    };
    let mut names: Vec<String> = dag.tasks.keys().cloned().collect();
    names.sort();
    for name in names {
        let Some(task) = dag_of(spec, component).and_then(|dag| dag.tasks.get_mut(&name)) else {
            continue;
        };
        if task.retry_policy.is_none() && inherited.is_some() {
            task.retry_policy = inherited.clone();
            *changed = true;
        }
        let child = task.component_ref.name.clone();
        let policy = task.retry_policy.clone();
        visit(spec, Some(&child), policy, visited, changed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// root: `outer` (retry 3) runs comp-mid; comp-mid: `a` (own retry 1) and `b` (none), and
    /// `deeper` running comp-leaf whose `c` has none; `plain` (no retry) runs comp-mid again.
    fn spec() -> PipelineSpec {
        let task = |component: &str, retries: Option<u32>| {
            let retry = retries
                .map(|n| format!(r#", "retryPolicy": {{"maxRetryCount": {n}}}"#))
                .unwrap_or_default();
            format!(
                r#"{{"componentRef": {{"name": "{component}"}}, "taskInfo": {{"name": "x"}}{retry}}}"#
            )
        };
        let text = format!(
            r#"{{"pipelineInfo": {{"name": "p"}}, "schemaVersion": "2.1.0", "sdkVersion": "kfp-2.17.0",
            "root": {{"dag": {{"tasks": {{"outer": {}, "plain": {}}}}}}},
            "components": {{
              "comp-mid": {{"dag": {{"tasks": {{"a": {}, "b": {}, "deeper": {}}}}}}},
              "comp-leaf": {{"dag": {{"tasks": {{"c": {}}}}}}},
              "comp-step": {{"executorLabel": "exec-step"}}
            }},
            "deploymentSpec": {{"executors": {{}}}}}}"#,
            task("comp-mid", Some(3)),
            task("comp-mid", None),
            task("comp-step", Some(1)),
            task("comp-step", None),
            task("comp-leaf", None),
            task("comp-step", None),
        );
        serde_json::from_str(&text).unwrap()
    }

    fn retries(spec: &PipelineSpec, component: &str, task: &str) -> Option<u32> {
        spec.components[component].dag.as_ref().unwrap().tasks[task]
            .retry_policy
            .as_ref()
            .map(|p| p.max_retry_count)
    }

    #[test]
    fn a_nested_pipelines_policy_reaches_every_step_inside_it_unless_they_have_their_own() {
        let inherited = with_inherited_retry_policies(&spec()).expect("policies change");
        assert_eq!(
            retries(&inherited, "comp-mid", "a"),
            Some(1),
            "its own is kept"
        );
        assert_eq!(retries(&inherited, "comp-mid", "b"), Some(3));
        assert_eq!(retries(&inherited, "comp-mid", "deeper"), Some(3));
        assert_eq!(
            retries(&inherited, "comp-leaf", "c"),
            Some(3),
            "and further down"
        );
    }

    #[test]
    fn nothing_changes_without_a_policy_on_a_dag_task() {
        let mut plain = spec();
        plain.root.dag.as_mut().unwrap().tasks["outer"].retry_policy = None;
        assert!(with_inherited_retry_policies(&plain).is_none());
    }
}
