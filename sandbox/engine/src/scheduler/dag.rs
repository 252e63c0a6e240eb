//! Walking a DAG: a task starts once its upstream tasks ended; fail-fast; loops fanned out
//! over their items (with `parallelismLimit`) and back in; nested DAGs and their outputs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use kfbox_spec::condition_text::readable_condition;
use kfbox_spec::expr::evaluate_condition;
use kfbox_spec::ir::{DagSpec, TaskSpec};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use kfbox_store::props;
use kfbox_store::value::Prop;

use crate::ledger::{Draft, Placement};
use crate::model::{TaskKind, TaskRecord, TaskState};
use crate::recorded::ExecutionKind;

use super::container::run_container;
use super::context::{ended_record, join_path, now, Artifacts, BoxedOutcome, Inputs, Outcome, Run};
use super::importer::run_importer;
use super::inputs::resolve_inputs;
use super::loops::{fan_in, loop_items};
use super::pod_volumes::{name_volumes, NamedVolumes};
use super::step_input::artifacts_json;

/// Every task this DAG waits for: explicit `dependentTasks` and the producers of its inputs.
pub(super) fn upstream_of(task: &TaskSpec) -> Vec<String> {
    let mut deps: Vec<String> = Vec::new();
    let mut add = |name: &String| {
        if !deps.contains(name) {
            deps.push(name.clone());
        }
    };
    task.dependent_tasks.iter().for_each(&mut add);
    for p in task.inputs.parameters.values() {
        if let Some(t) = &p.task_output_parameter {
            add(&t.producer_task);
        }
        if let Some(t) = &p.task_final_status {
            add(&t.producer_task);
        }
    }
    for a in task.inputs.artifacts.values() {
        if let Some(t) = &a.task_output_artifact {
            add(&t.producer_task);
        }
    }
    deps
}

/// Which tasks of a DAG may start: each waits for a count of upstream tasks to end, and an
/// ending task releases only its own dependants, so a DAG of n tasks is walked in O(n + edges)
/// however it is shaped (a 10,000-step chain rescanned on every end was quadratic).
struct ReadyTasks<'a> {
    upstream: HashMap<&'a str, Vec<String>>,
    dependants: HashMap<&'a str, Vec<&'a str>>,
    waiting_on: HashMap<&'a str, usize>,
    ready: VecDeque<&'a str>,
}

impl<'a> ReadyTasks<'a> {
    fn new(dag: &'a DagSpec) -> Self {
        let upstream: HashMap<&str, Vec<String>> = dag
            .tasks
            .iter()
            .map(|(name, task)| (name.as_str(), upstream_of(task)))
            .collect();
        let mut dependants: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut waiting_on = HashMap::new();
        let mut ready = VecDeque::new();
        // In the DAG's own order, so tasks ready together start as they are written.
        for name in dag.tasks.keys() {
            let deps = &upstream[name.as_str()];
            // An upstream name the DAG does not have never ends, so its dependant never
            // starts (validation refuses such a DAG before it runs).
            for dep in deps {
                if let Some((dep, _)) = dag.tasks.get_key_value(dep.as_str()) {
                    dependants
                        .entry(dep.as_str())
                        .or_default()
                        .push(name.as_str());
                }
            }
            if deps.is_empty() {
                ready.push_back(name.as_str());
            } else {
                waiting_on.insert(name.as_str(), deps.len());
            }
        }
        Self {
            upstream,
            dependants,
            waiting_on,
            ready,
        }
    }

    fn next(&mut self) -> Option<&'a str> {
        self.ready.pop_front()
    }

    fn upstream(&self, name: &str) -> &[String] {
        &self.upstream[name]
    }

    /// `name` ended (ran, was skipped or failed): its dependants wait for one task fewer.
    fn ended(&mut self, name: &str) {
        let Some(dependants) = self.dependants.get(name) else {
            return;
        };
        for &dependant in dependants {
            let waiting = self
                .waiting_on
                .get_mut(dependant)
                .expect("a dependant waits on its upstream");
            *waiting -= 1;
            if *waiting == 0 {
                self.ready.push_back(dependant);
            }
        }
    }
}

/// Run a DAG's tasks; `execution` is the DAG's own execution in the store (their parent).
pub(super) fn run_dag(
    run: Arc<Run>,
    component: Option<String>,
    path: String,
    inputs: Inputs,
    execution: i64,
) -> BoxedOutcome {
    Box::pin(async move {
        let dag = run.dag(component.as_deref());
        let mut ready = ReadyTasks::new(dag);
        let mut outcomes: HashMap<String, Outcome> = HashMap::new();
        let mut first_failure: Option<String> = None;
        let mut running = JoinSet::new();
        loop {
            while let Some(name) = ready.next() {
                let task = &dag.tasks[name];
                let deps = ready.upstream(name);
                let task_path = join_path(&path, name);
                let not_run = if run.cancel.is_cancelled() {
                    Some((
                        TaskState::Canceled,
                        "the run was canceled before it started".to_owned(),
                    ))
                } else if task.trigger_policy.runs_after_any_outcome() {
                    None
                } else if let Some(up) = deps
                    .iter()
                    .find(|d| !outcomes[*d].state.lets_dependents_run())
                {
                    Some((
                        TaskState::Skipped,
                        format!("upstream task `{up}` ended {}", outcomes[up].state.as_str()),
                    ))
                } else {
                    first_failure.as_ref().map(|f| {
                        (
                            TaskState::Skipped,
                            format!("not started: task `{f}` failed earlier in this DAG"),
                        )
                    })
                };
                if let Some((state, reason)) = not_run {
                    let outcome = run.record_unrun(
                        task,
                        &task_path,
                        execution,
                        Outcome::empty(state, None),
                        Some(reason),
                    );
                    outcomes.insert(name.to_owned(), outcome);
                    ready.ended(name);
                    continue;
                }
                let siblings: HashMap<String, Outcome> = deps
                    .iter()
                    .map(|d| (d.clone(), outcomes[d].clone()))
                    .collect();
                let run = run.clone();
                let component = component.clone();
                let scope = inputs.clone();
                let name = name.to_owned();
                running.spawn(async move {
                    let outcome = run_task(
                        run,
                        component,
                        name.clone(),
                        task_path,
                        scope,
                        siblings,
                        execution,
                    )
                    .await;
                    (name, outcome)
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (name, outcome) = joined.unwrap_or_else(|e| {
                (
                    String::new(),
                    Outcome::empty(TaskState::Failed, Some(format!("internal error: {e}"))),
                )
            });
            if outcome.state == TaskState::Failed && first_failure.is_none() {
                first_failure = Some(name.clone());
            }
            ready.ended(&name);
            outcomes.insert(name, outcome);
        }
        let state = if outcomes.values().any(|o| o.state == TaskState::Failed) {
            TaskState::Failed
        } else if outcomes.values().any(|o| o.state == TaskState::Canceled) {
            TaskState::Canceled
        } else {
            TaskState::Succeeded
        };
        let (parameters, artifacts) = dag_outputs(dag, &outcomes);
        Outcome {
            state,
            parameters,
            artifacts,
            error: first_failure.map(|f| format!("task `{}` failed", join_path(&path, &f))),
        }
    })
}

/// A DAG's outputs from its subtasks; for `OneOf`, the first selector whose producer has it.
pub(super) fn dag_outputs(
    dag: &DagSpec,
    outcomes: &HashMap<String, Outcome>,
) -> (Map<String, Value>, Artifacts) {
    let mut parameters = Map::new();
    for (name, spec) in &dag.outputs.parameters {
        let selectors = spec.value_from_parameter.iter().chain(
            spec.value_from_oneof
                .iter()
                .flat_map(|o| &o.parameter_selectors),
        );
        let found = selectors.into_iter().find_map(|s| {
            outcomes
                .get(&s.producer_subtask)
                .and_then(|o| o.parameters.get(&s.output_parameter_key))
        });
        if let Some(v) = found {
            parameters.insert(name.clone(), v.clone());
        }
    }
    let mut artifacts = Artifacts::new();
    for (name, spec) in &dag.outputs.artifacts {
        let found = spec.artifact_selectors.iter().find_map(|s| {
            outcomes
                .get(&s.producer_subtask)
                .and_then(|o| o.artifacts.get(&s.output_artifact_key))
                .filter(|list| !list.is_empty())
        });
        if let Some(list) = found {
            artifacts.insert(name.clone(), list.clone());
        }
    }
    (parameters, artifacts)
}

pub(super) async fn run_task(
    run: Arc<Run>,
    parent: Option<String>,
    name: String,
    path: String,
    scope: Inputs,
    siblings: HashMap<String, Outcome>,
    parent_execution: i64,
) -> Outcome {
    let task = &run.dag(parent.as_deref()).tasks[&name];
    let kind = run.kind_of(task);
    let component = run.component(Some(&task.component_ref.name));
    let fail = |error: String| {
        run.record_unrun(
            task,
            &path,
            parent_execution,
            Outcome::empty(TaskState::Failed, Some(error)),
            None,
        )
    };
    let inputs = match resolve_inputs(&run, task, component, &scope, &siblings) {
        Ok(inputs) => inputs,
        Err(e) => return fail(format!("resolving inputs: {e}")),
    };
    if let Some(condition) = &task.trigger_policy.condition {
        let artifacts = Value::Object(artifacts_json(&inputs.artifacts));
        match evaluate_condition(condition, &inputs.parameters, artifacts) {
            Ok(true) => {}
            Ok(false) => {
                return run.record_unrun(
                    task,
                    &path,
                    parent_execution,
                    Outcome::empty(TaskState::Skipped, None),
                    Some(format!(
                        "condition is false: {}",
                        readable_condition(condition, &task.inputs)
                    )),
                );
            }
            Err(e) => return fail(e.to_string()),
        }
    }
    // Names in the pod's volume settings resolve as inputs do, from the same scope.
    let volumes = match (kind, component.executor_label.as_deref()) {
        (TaskKind::Container, Some(label)) => {
            match name_volumes(&run, task, label, &scope, &siblings) {
                Ok(volumes) => volumes,
                Err(e) => return fail(e),
            }
        }
        _ => NamedVolumes::default(),
    };
    let mut draft = run.draft(task, &path, kind, parent_execution, &inputs);
    match kind {
        TaskKind::Loop => run_loop(run.clone(), task, path, inputs, draft).await,
        TaskKind::Dag => {
            let started_at = now();
            run.ledger.open(&mut draft);
            let mut outcome = run_dag(
                run.clone(),
                Some(task.component_ref.name.clone()),
                path.clone(),
                inputs,
                draft.id(),
            )
            .await;
            let record = ended_record(task, &path, kind, &outcome, Some(started_at), 0);
            run.record(draft, record, &mut outcome, Vec::new());
            outcome
        }
        TaskKind::Importer => run_importer(&run, task, component, &path, &inputs, draft),
        TaskKind::Container => {
            run_container(&run, task, component, &path, inputs, volumes, draft).await
        }
    }
}

pub(super) async fn run_loop(
    run: Arc<Run>,
    task: &TaskSpec,
    path: String,
    inputs: Inputs,
    mut draft: Draft,
) -> Outcome {
    let started_at = now();
    let body = run.dag(Some(&task.component_ref.name));
    let items = loop_items(task, &inputs, body);
    let items = match items {
        Ok(items) => items,
        Err(e) => {
            let mut outcome = Outcome::empty(TaskState::Failed, Some(e));
            let record = ended_record(task, &path, TaskKind::Loop, &outcome, None, 0);
            run.record(draft, record, &mut outcome, Vec::new());
            return outcome;
        }
    };
    run.ledger.open(&mut draft);
    let loop_execution = draft.id();
    let count = items.len();
    let limit = match task.iterator_policy.parallelism_limit {
        0 => count.max(1),
        n => n as usize,
    };
    let gate = Arc::new(Semaphore::new(limit));
    let stop = CancellationToken::new();
    let mut running = JoinSet::new();
    for (index, scope) in items.into_iter().enumerate() {
        let run = run.clone();
        let gate = gate.clone();
        let stop = stop.clone();
        let component = task.component_ref.name.clone();
        let iteration_path = format!("{path}/iteration-{index}");
        let task = task.clone();
        running.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("loop gate open");
            if stop.is_cancelled() || run.cancel.is_cancelled() {
                return (index, None);
            }
            let started_at = now();
            let at = Placement {
                task_name: &task.task_info.name,
                display_name: &format!("{}-iteration-{index}", task.task_info.name),
                path: &iteration_path,
                kind: ExecutionKind::Iteration,
                parent: loop_execution,
            };
            let mut iteration = run.ledger.draft(&at, &scope.parameters, &scope.artifacts);
            iteration.set(props::ITERATION_INDEX, Prop::Int(index as i64));
            run.ledger.open(&mut iteration);
            let id = iteration.id();
            let mut outcome = run_dag(
                run.clone(),
                Some(component),
                iteration_path.clone(),
                scope,
                id,
            )
            .await;
            let record = ended_record(
                &task,
                &iteration_path,
                TaskKind::Dag,
                &outcome,
                Some(started_at),
                0,
            );
            let parameters = outcome.parameters.clone();
            run.ledger.close(
                iteration,
                &record,
                &parameters,
                &mut outcome.artifacts,
                Vec::new(),
            );
            if outcome.state == TaskState::Failed {
                stop.cancel();
            }
            (index, Some(outcome))
        });
    }
    let mut results: Vec<Option<Outcome>> = vec![None; count];
    while let Some(joined) = running.join_next().await {
        if let Ok((index, outcome)) = joined {
            results[index] = outcome;
        }
    }
    let ran: Vec<&Outcome> = results.iter().flatten().collect();
    let state = if ran.iter().any(|o| o.state == TaskState::Failed) {
        TaskState::Failed
    } else if run.cancel.is_cancelled() || ran.iter().any(|o| o.state == TaskState::Canceled) {
        TaskState::Canceled
    } else {
        TaskState::Succeeded
    };
    let (parameters, artifacts) = fan_in(body, &ran);
    let error = (state == TaskState::Failed).then(|| {
        let failed: Vec<String> = results
            .iter()
            .enumerate()
            .filter(|(_, o)| o.as_ref().is_some_and(|o| o.state == TaskState::Failed))
            .map(|(i, _)| i.to_string())
            .collect();
        format!("iteration(s) {} failed", failed.join(", "))
    });
    let mut outcome = Outcome {
        state,
        parameters,
        artifacts,
        error,
    };
    let record = TaskRecord {
        iterations: Some(count),
        ..ended_record(task, &path, TaskKind::Loop, &outcome, Some(started_at), 0)
    };
    run.record(draft, record, &mut outcome, Vec::new());
    outcome
}
