//! The scheduler: walks DAGs, resolves inputs, evaluates conditions, fans loops out and in, and
//! hands container steps to the executor.
//!
//! Failure follows the backend on Argo: inside one DAG, once a task fails no new task starts
//! (fail-fast) except those with `ALL_UPSTREAM_TASKS_COMPLETED` (exit handlers, ignore upstream
//! failure); a DAG fails when any of its tasks failed; running tasks are never interrupted by a
//! sibling's failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use kfbox_spec::expr::{evaluate_condition, select};
use kfbox_spec::ir::{ComponentSpec, DagSpec, ParameterType, TaskSpec};
use kfbox_spec::placeholder::{parse_arg, ArtifactField, PlaceholderError, Reference, Resolver};
use kfbox_spec::value::{coerce, text_to_value, value_to_text};
use kfbox_spec::LoadedPipeline;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use kfbox_store::value::Prop;
use kfbox_store::{props, RunHandle, Store};

use crate::events::{EventSink, RunEvent};
use crate::executor::{Executor, ExecutorError, Mount, Step, StepExit};
use crate::ledger::{execution_type, kind_label, Draft, Ledger, Placement};
use crate::model::{
    ArtifactRef, RunState, RunSummary, RuntimeArtifact, TaskKind, TaskOutputs, TaskRecord,
    TaskState,
};
use kfbox_gpu::{Admission, GpuPlan};
use kfbox_paths::{check_under, join_name, join_names, UnsafeName};
use kfbox_spec::resources::Resources;

/// Everything a run needs besides the pipeline and the executor.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    /// The run's display name, `{{$.pipeline_job_name}}`.
    pub run_name: String,
    /// The run's own directory: artifacts, logs and step scratch space live under it.
    pub run_dir: PathBuf,
    /// Root parameters, already checked by [`crate::resolve_root_parameters`].
    pub parameters: Map<String, Value>,
    /// Root input artifacts, from [`crate::resolve_root_artifacts`].
    pub artifacts: BTreeMap<String, Vec<RuntimeArtifact>>,
    /// Slots for steps running at once; runs that share one share the limit (the server's
    /// runs share one).
    pub step_slots: Arc<Semaphore>,
    /// Where the run is recorded, and its records there (see [`Store::begin_run`]).
    pub store: Arc<Store>,
    pub record: RunHandle,
    /// Reuse earlier executions with the same cache fingerprint. Off, executions still record
    /// their fingerprints, so later runs can reuse them.
    pub reuse_cache: bool,
    /// A retry of this run: steps that succeeded in its earlier attempts are reused, whatever
    /// their caching options, and only the others run again.
    pub retry: bool,
    /// The GPUs steps may ask for, and what happens to requests on a machine without them.
    pub gpus: GpuPlan,
}

type Artifacts = BTreeMap<String, Vec<RuntimeArtifact>>;

#[derive(Debug, Clone, Default)]
struct Inputs {
    parameters: Map<String, Value>,
    artifacts: Artifacts,
}

#[derive(Debug, Clone)]
struct Outcome {
    state: TaskState,
    parameters: Map<String, Value>,
    artifacts: Artifacts,
    error: Option<String>,
}

impl Outcome {
    fn empty(state: TaskState, error: Option<String>) -> Self {
        Self {
            state,
            parameters: Map::new(),
            artifacts: Artifacts::new(),
            error,
        }
    }
}

struct Run {
    pipeline: Arc<LoadedPipeline>,
    executor: Arc<dyn Executor>,
    events: EventSink,
    cancel: CancellationToken,
    options: RunOptions,
    create_time: String,
    /// Like the Argo workflow name on a cluster: the pipeline name and a short suffix.
    resource_name: String,
    records: Mutex<Vec<TaskRecord>>,
    ledger: Ledger,
}

type BoxedOutcome = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A run's name as a cluster would give its workflow: the pipeline name and the run id's first
/// eight characters (`{{$.pipeline_job_resource_name}}`, the run context's `resource_name`).
pub fn resource_name(pipeline_name: &str, run_id: &str) -> String {
    format!(
        "{pipeline_name}-{}",
        run_id.chars().take(8).collect::<String>()
    )
}

/// Run a pipeline to its end. Never fails as a whole: every problem lands in a task record.
pub async fn execute(
    pipeline: Arc<LoadedPipeline>,
    options: RunOptions,
    executor: Arc<dyn Executor>,
    events: EventSink,
    cancel: CancellationToken,
) -> RunSummary {
    let started_at = now();
    // Stops the run as a cancel does, also when recording it fails.
    let cancel = cancel.child_token();
    let run = Arc::new(Run {
        executor,
        events: events.clone(),
        cancel: cancel.clone(),
        create_time: started_at.clone(),
        resource_name: resource_name(&pipeline.spec.pipeline_info.name, &options.run_id),
        records: Mutex::new(Vec::new()),
        ledger: Ledger::new(
            options.store.clone(),
            options.record.clone(),
            events.clone(),
            cancel,
        ),
        options,
        pipeline,
    });
    warn_about_platform_settings(&run);
    let inputs = Inputs {
        parameters: run.options.parameters.clone(),
        artifacts: run.options.artifacts.clone(),
    };
    let root_id = run.ledger.root_execution_id();
    let root = run_dag(run.clone(), None, String::new(), inputs, root_id).await;
    let recording_failed = run.ledger.failure();
    let state = if recording_failed.is_some() {
        RunState::Failed
    } else if run.cancel.is_cancelled() {
        RunState::Canceled
    } else {
        match root.state {
            TaskState::Failed => RunState::Failed,
            TaskState::Canceled => RunState::Canceled,
            _ => RunState::Succeeded,
        }
    };
    let mut outputs = root.parameters.clone();
    for (name, list) in &root.artifacts {
        let refs: Vec<ArtifactRef> = list.iter().map(ArtifactRef::from).collect();
        outputs.insert(name.clone(), serde_json::to_value(refs).unwrap_or_default());
    }
    let mut tasks = std::mem::take(&mut *run.records.lock().expect("records lock"));
    tasks.sort_by(|a, b| {
        let key = |t: &TaskRecord| t.started_at.clone().or(t.finished_at.clone());
        key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
    });
    let error = match (state, recording_failed) {
        (_, Some(failure)) => Some(format!("{failure}; kfbox stopped the run")),
        (RunState::Failed, None) => tasks
            .iter()
            .find(|t| t.state == TaskState::Failed && t.kind != TaskKind::Dag)
            .or_else(|| tasks.iter().find(|t| t.state == TaskState::Failed))
            .map(|t| match &t.error {
                Some(e) => format!("task `{}` failed: {e}", t.path),
                None => format!("task `{}` failed", t.path),
            }),
        (RunState::Canceled, None) => Some("the run was canceled".into()),
        (RunState::Succeeded | RunState::Running, None) => None,
    };
    run.ledger.finish_run(
        state.as_str(),
        error.clone(),
        &root.parameters,
        &root.artifacts,
    );
    RunSummary {
        run_id: run.options.run_id.clone(),
        pipeline: run.pipeline.spec.pipeline_info.name.clone(),
        state,
        outputs,
        tasks,
        started_at,
        finished_at: now(),
        run_dir: run.options.run_dir.display().to_string(),
        error,
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

impl Run {
    fn component(&self, name: Option<&str>) -> &ComponentSpec {
        match name {
            None => &self.pipeline.spec.root,
            Some(n) => self
                .pipeline
                .spec
                .component(n)
                .expect("component references are validated at load"),
        }
    }

    fn dag(&self, component: Option<&str>) -> &DagSpec {
        static EMPTY: std::sync::OnceLock<DagSpec> = std::sync::OnceLock::new();
        self.component(component)
            .dag
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(DagSpec::default))
    }

    /// Record an ended task in the store (new output artifacts get their ids) and the summary.
    fn record(
        &self,
        draft: Draft,
        record: TaskRecord,
        outcome: &mut Outcome,
        extra: Vec<(&'static str, Prop)>,
    ) {
        self.ledger.close(
            draft,
            &record,
            &outcome.parameters,
            &mut outcome.artifacts,
            extra,
        );
        self.events.send(RunEvent::TaskFinished {
            path: record.path.clone(),
            state: record.state,
        });
        self.records.lock().expect("records lock").push(record);
    }

    /// The store draft of a task's execution.
    fn draft(
        &self,
        task: &TaskSpec,
        path: &str,
        kind: TaskKind,
        parent: i64,
        inputs: &Inputs,
    ) -> Draft {
        let at = Placement {
            task_name: &task.task_info.name,
            display_name: &task.task_info.name,
            path,
            kind: kind_label(kind),
            parent,
        };
        self.ledger.draft(
            execution_type(kind),
            &at,
            &inputs.parameters,
            &inputs.artifacts,
        )
    }

    /// Record a task that ended without running a step.
    fn record_unrun(
        &self,
        task: &TaskSpec,
        path: &str,
        parent: i64,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Outcome {
        let kind = self.kind_of(task);
        let draft = self.draft(task, path, kind, parent, &Inputs::default());
        let record = TaskRecord {
            reason,
            ..ended_record(task, path, kind, &outcome, None, 0)
        };
        let mut outcome = outcome;
        self.record(draft, record, &mut outcome, Vec::new());
        outcome
    }

    fn kind_of(&self, task: &TaskSpec) -> TaskKind {
        let component = self.component(Some(&task.component_ref.name));
        if component.dag.is_some() {
            if task.parameter_iterator.is_some() || task.artifact_iterator.is_some() {
                TaskKind::Loop
            } else {
                TaskKind::Dag
            }
        } else {
            let label = component.executor_label.as_deref().unwrap_or_default();
            match self.pipeline.spec.deployment_spec.executors.get(label) {
                Some(e) if e.importer.is_some() => TaskKind::Importer,
                _ => TaskKind::Container,
            }
        }
    }

    fn runtime_constant(&self, text: &str, task_name: &str) -> String {
        let replacements = [
            ("{{$.pipeline_job_name}}", self.options.run_name.as_str()),
            (
                "{{$.pipeline_job_resource_name}}",
                self.resource_name.as_str(),
            ),
            ("{{$.pipeline_job_uuid}}", self.options.run_id.as_str()),
            ("{{$.pipeline_task_name}}", task_name),
            (
                "{{$.pipeline_job_create_time_utc}}",
                self.create_time.as_str(),
            ),
            (
                "{{$.pipeline_job_schedule_time_utc}}",
                self.create_time.as_str(),
            ),
        ];
        let mut out = text.to_owned();
        for (from, to) in replacements {
            out = out.replace(from, to);
        }
        if out.contains("{{$.pipeline_task_uuid}}") {
            out = out.replace(
                "{{$.pipeline_task_uuid}}",
                &uuid::Uuid::new_v4().to_string(),
            );
        }
        if out.contains("{{$.workspace_path}}") {
            let workspace = self.options.run_dir.join("workspace");
            out = out.replace("{{$.workspace_path}}", &workspace.display().to_string());
        }
        out
    }
}

/// Every task this DAG waits for: explicit `dependentTasks` and the producers of its inputs.
fn upstream_of(task: &TaskSpec) -> Vec<String> {
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

/// Run a DAG's tasks; `execution` is the DAG's own execution in the store (their parent).
fn run_dag(
    run: Arc<Run>,
    component: Option<String>,
    path: String,
    inputs: Inputs,
    execution: i64,
) -> BoxedOutcome {
    Box::pin(async move {
        let dag = run.dag(component.as_deref());
        let upstream: HashMap<&str, Vec<String>> = dag
            .tasks
            .iter()
            .map(|(name, task)| (name.as_str(), upstream_of(task)))
            .collect();
        let mut outcomes: HashMap<String, Outcome> = HashMap::new();
        let mut started: HashSet<&str> = HashSet::new();
        let mut first_failure: Option<String> = None;
        let mut running = JoinSet::new();
        loop {
            let mut progressed = true;
            while progressed {
                progressed = false;
                for (name, task) in &dag.tasks {
                    if started.contains(name.as_str()) {
                        continue;
                    }
                    let deps = &upstream[name.as_str()];
                    if !deps.iter().all(|d| outcomes.contains_key(d)) {
                        continue;
                    }
                    started.insert(name);
                    progressed = true;
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
                        outcomes.insert(name.clone(), outcome);
                        continue;
                    }
                    let siblings: HashMap<String, Outcome> = deps
                        .iter()
                        .map(|d| (d.clone(), outcomes[d].clone()))
                        .collect();
                    let run = run.clone();
                    let component = component.clone();
                    let scope = inputs.clone();
                    let name = name.clone();
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
fn dag_outputs(
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

async fn run_task(
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
                    Some(format!("condition is false: {condition}")),
                );
            }
            Err(e) => return fail(e.to_string()),
        }
    }
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
        TaskKind::Container => run_container(&run, task, component, &path, inputs, draft).await,
    }
}

/// The record of an ended task; callers add what is specific to their kind.
fn ended_record(
    task: &TaskSpec,
    path: &str,
    kind: TaskKind,
    outcome: &Outcome,
    started_at: Option<String>,
    attempts: u32,
) -> TaskRecord {
    TaskRecord {
        name: task.task_info.name.clone(),
        path: path.to_owned(),
        kind,
        state: outcome.state,
        attempts,
        started_at,
        finished_at: Some(now()),
        outputs: summary_outputs(outcome),
        error: outcome.error.clone(),
        reason: None,
        iterations: None,
        log: None,
    }
}

fn summary_outputs(outcome: &Outcome) -> TaskOutputs {
    TaskOutputs {
        parameters: outcome.parameters.clone(),
        artifacts: outcome
            .artifacts
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(ArtifactRef::from).collect()))
            .collect(),
    }
}

/// Resolve a task's inputs from its parent's inputs and its upstream siblings, then check and
/// convert them against the component's input definitions (as the backend's driver does).
fn resolve_inputs(
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
        let value = if let Some(source) = &spec.component_input_parameter {
            scope
                .parameters
                .get(source)
                .filter(|v| !v.is_null())
                .cloned()
        } else if let Some(source) = &spec.task_output_parameter {
            let producer = &siblings[&source.producer_task];
            match producer.parameters.get(&source.output_parameter_key) {
                Some(v) => Some(v.clone()),
                None if definition.is_some_and(|d| d.is_optional) => None,
                None => {
                    return Err(format!(
                        "input `{name}`: task `{}` ({}) produced no output parameter `{}`",
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
            let producer = &siblings[&source.producer_task];
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
        };
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

async fn run_loop(
    run: Arc<Run>,
    task: &TaskSpec,
    path: String,
    inputs: Inputs,
    mut draft: Draft,
) -> Outcome {
    let started_at = now();
    let items: Result<Vec<Inputs>, String> = if let Some(iterator) = &task.parameter_iterator {
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
    };
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
                kind: "iteration",
                parent: loop_execution,
            };
            let mut iteration = run.ledger.draft(
                kfbox_store::ExecutionType::Dag,
                &at,
                &scope.parameters,
                &scope.artifacts,
            );
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
    let body = run.dag(Some(&task.component_ref.name));
    let ran: Vec<&Outcome> = results.iter().flatten().collect();
    let state = if ran.iter().any(|o| o.state == TaskState::Failed) {
        TaskState::Failed
    } else if run.cancel.is_cancelled() || ran.iter().any(|o| o.state == TaskState::Canceled) {
        TaskState::Canceled
    } else {
        TaskState::Succeeded
    };
    // Fan-in (`dsl.Collected`): each output becomes the list of the iterations' values.
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

fn run_importer(
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

/// `file://` URIs name local paths; kfbox passes local artifacts by plain absolute path, as the
/// SDK's local runner does, so `.path` equals `.uri`.
fn local_uri(uri: &str) -> String {
    uri.strip_prefix("file://").unwrap_or(uri).to_owned()
}

/// Importer metadata may carry `{{$.inputs.parameters['x']}}` in keys and values.
fn substitute_inputs(value: &Value, inputs: &Inputs) -> Value {
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

/// Where a task keeps its files inside the run directory.
struct TaskDirs {
    task_dir: PathBuf,
    artifacts_dir: PathBuf,
    log_path: PathBuf,
}

impl TaskDirs {
    /// The directories of the task at `path` (names from the spec, checked on the way).
    fn new(run_dir: &Path, path: &str) -> Result<Self, UnsafeName> {
        let mut log_path = join_names(&run_dir.join("logs"), path)?.into_os_string();
        log_path.push(".log");
        Ok(Self {
            task_dir: join_names(&run_dir.join("tasks"), path)?,
            artifacts_dir: join_names(&run_dir.join("artifacts"), path)?,
            log_path: log_path.into(),
        })
    }

    fn output_parameter_file(&self, name: &str) -> Result<PathBuf, UnsafeName> {
        join_name(&self.task_dir.join("outputs"), name)
    }

    fn output_artifact(&self, name: &str) -> Result<PathBuf, UnsafeName> {
        join_name(&self.artifacts_dir, name)
    }

    fn executor_output_file(&self) -> PathBuf {
        self.task_dir.join("executor_output.json")
    }

    fn process_file(&self) -> PathBuf {
        self.task_dir.join("process")
    }
}

/// Artifacts in the protojson shape of ExecutorInput (`{"name": {"artifacts": [...]}}`), which
/// is also what CEL conditions see as `inputs.artifacts`.
fn artifacts_json(artifacts: &Artifacts) -> Map<String, Value> {
    artifacts
        .iter()
        .map(|(name, list)| {
            let items: Vec<Value> = list.iter().map(RuntimeArtifact::to_executor_json).collect();
            (name.clone(), json!({ "artifacts": items }))
        })
        .collect()
}

struct ExecutorInput<'a> {
    inputs: &'a Inputs,
    with_defaults: Map<String, Value>,
    /// Inputs the task received a value for (what `IfPresent` tests).
    present: HashSet<String>,
    outputs: Artifacts,
    output_parameters: Vec<(String, PathBuf)>,
    output_file: PathBuf,
}

impl ExecutorInput<'_> {
    fn to_json(&self) -> Value {
        let parameters: Map<String, Value> = self
            .output_parameters
            .iter()
            .map(|(k, p)| (k.clone(), json!({"outputFile": p.display().to_string()})))
            .collect();
        json!({
            "inputs": {
                "parameterValues": self.with_defaults,
                "artifacts": artifacts_json(&self.inputs.artifacts),
            },
            "outputs": {
                "parameters": parameters,
                "artifacts": artifacts_json(&self.outputs),
                "outputFile": self.output_file.display().to_string(),
            }
        })
    }
}

impl Resolver for ExecutorInput<'_> {
    fn resolve(&self, reference: &Reference) -> Result<String, PlaceholderError> {
        let missing = || PlaceholderError::Unknown(format!("{reference:?} has no value"));
        let artifact_field = |a: &RuntimeArtifact, field: ArtifactField| match field {
            ArtifactField::Uri | ArtifactField::Path => a.uri.clone(),
            ArtifactField::Metadata => Value::Object(a.metadata.clone()).to_string(),
        };
        Ok(match reference {
            Reference::ExecutorInput => self.to_json().to_string(),
            Reference::ExecutorOutputFile => self.output_file.display().to_string(),
            Reference::InputParameter(name) => {
                value_to_text(self.with_defaults.get(name).ok_or_else(missing)?)
            }
            Reference::InputArtifact(name, field) => self
                .inputs
                .artifacts
                .get(name)
                .and_then(|l| l.first())
                .map(|a| artifact_field(a, *field))
                .ok_or_else(missing)?,
            Reference::InputArtifactList(name) => Value::Array(
                self.inputs
                    .artifacts
                    .get(name)
                    .ok_or_else(missing)?
                    .iter()
                    .map(RuntimeArtifact::to_executor_json)
                    .collect(),
            )
            .to_string(),
            Reference::OutputParameterFile(name) => self
                .output_parameters
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.display().to_string())
                .ok_or_else(missing)?,
            Reference::OutputArtifact(name, field) => self
                .outputs
                .get(name)
                .and_then(|l| l.first())
                .map(|a| artifact_field(a, *field))
                .ok_or_else(missing)?,
        })
    }

    fn is_present(&self, input: &str) -> bool {
        self.present.contains(input)
    }
}

async fn run_container(
    run: &Run,
    task: &TaskSpec,
    component: &ComponentSpec,
    path: &str,
    inputs: Inputs,
    mut draft: Draft,
) -> Outcome {
    let label = component.executor_label.as_deref().unwrap_or_default();
    let container = run.pipeline.spec.deployment_spec.executors[label]
        .container
        .as_ref()
        .expect("container kind checked");
    draft.set(props::IMAGE, Prop::Text(container.image.clone()));
    let not_started = |draft: Draft, error: String| {
        let mut outcome = Outcome::empty(TaskState::Failed, Some(error));
        let record = ended_record(task, path, TaskKind::Container, &outcome, None, 0);
        run.record(draft, record, &mut outcome, Vec::new());
        outcome
    };
    if container.image.starts_with("argostub/") {
        return not_started(
            draft,
            format!(
                "`{}` is a Kubernetes-only step (kfp-kubernetes volume operations); it needs a cluster",
                container.image
            ),
        );
    }
    let dirs = match TaskDirs::new(&run.options.run_dir, path) {
        Ok(dirs) => dirs,
        Err(e) => return not_started(draft, format!("task path `{path}`: {e}")),
    };
    let mut with_defaults = inputs.parameters.clone();
    for (name, definition) in &component.input_definitions.parameters {
        if let (false, Some(default)) =
            (with_defaults.contains_key(name), &definition.default_value)
        {
            // Compilers write integer defaults as doubles (`5.0`); the component wants an int.
            let default = coerce(default.clone(), definition.parameter_type)
                .unwrap_or_else(|_| default.clone());
            with_defaults.insert(name.clone(), default);
        }
    }
    let present: HashSet<String> = inputs
        .parameters
        .keys()
        .chain(inputs.artifacts.keys())
        .cloned()
        .collect();
    let outputs: Result<Artifacts, UnsafeName> = component
        .output_definitions
        .artifacts
        .iter()
        .map(|(name, spec)| {
            let artifact = RuntimeArtifact {
                name: name.clone(),
                uri: dirs.output_artifact(name)?.display().to_string(),
                schema_title: spec.artifact_type.schema_title.clone(),
                schema_version: spec.artifact_type.schema_version.clone(),
                metadata: Map::new(),
                id: None,
            };
            Ok((name.clone(), vec![artifact]))
        })
        .collect();
    let output_parameters: Result<Vec<(String, PathBuf)>, UnsafeName> = component
        .output_definitions
        .parameters
        .keys()
        .map(|name| Ok((name.clone(), dirs.output_parameter_file(name)?)))
        .collect();
    let (outputs, output_parameters) = match (outputs, output_parameters) {
        (Ok(outputs), Ok(parameters)) => (outputs, parameters),
        (Err(e), _) | (_, Err(e)) => return not_started(draft, format!("an output: {e}")),
    };
    let executor_input = ExecutorInput {
        inputs: &inputs,
        with_defaults,
        present,
        outputs,
        output_parameters,
        output_file: dirs.executor_output_file(),
    };
    let expand = |texts: &[String]| -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        for text in texts {
            let expanded = parse_arg(text).and_then(|arg| arg.expand(&executor_input));
            words.extend(expanded.map_err(|e| e.to_string())?);
        }
        Ok(words)
    };
    let (command, args) = match (expand(&container.command), expand(&container.args)) {
        (Ok(command), Ok(args)) => (command, args),
        (Err(e), _) | (_, Err(e)) => return not_started(draft, e),
    };
    if run.options.retry {
        if let Some(done) = run.ledger.find_succeeded(path) {
            return reuse_cached(run, task, component, path, draft, done);
        }
    }
    if task.caching_options.enable_cache {
        let fingerprint = crate::cache::fingerprint(
            task,
            component,
            container,
            &executor_input.with_defaults,
            &inputs.artifacts,
        );
        if let Some(fingerprint) = fingerprint {
            draft.set(props::CACHE_FINGERPRINT, Prop::Text(fingerprint.clone()));
            if run.options.reuse_cache {
                if let Some(hit) = run.ledger.find_cached(&fingerprint) {
                    return reuse_cached(run, task, component, path, draft, hit);
                }
            }
        }
    }
    let env: Vec<(String, String)> = container
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    // Checked by validation; a placeholder-valued setting reads as unset.
    let resources = Resources::from_ir(container.resources.as_ref()).unwrap_or_default();
    let mounts = step_mounts(&inputs, &executor_input, &dirs);
    let retry = task.retry_policy.clone().unwrap_or_default();
    let max_attempts = retry.max_retry_count + 1;
    let started_at = now();
    // Known from the start, so `kfbox logs --follow` finds a running step's log.
    draft.set(props::LOG, Prop::Text(dirs.log_path.display().to_string()));
    draft.set(
        props::PROCESS_FILE,
        Prop::Text(dirs.process_file().display().to_string()),
    );
    run.ledger.open(&mut draft);
    run.events.send(RunEvent::TaskStarted {
        path: path.to_owned(),
    });
    let mut attempt = 0;
    let (state, result, error) = loop {
        attempt += 1;
        let step = Step {
            task_path: path.to_owned(),
            run_id: run.options.run_id.clone(),
            image: container.image.clone(),
            command: command.clone(),
            args: args.clone(),
            env: env.clone(),
            work_dir: dirs.task_dir.join(format!("attempt-{attempt}")),
            log_path: dirs.log_path.clone(),
            process_file: dirs.process_file(),
            mounts: mounts.clone(),
            resources: resources.clone(),
            gpus: None,
        };
        let attempt_result = run_attempt(run, &step, &executor_input, component).await;
        match attempt_result {
            Ok(outputs) => break (TaskState::Succeeded, Some(outputs), None),
            Err(AttemptError::Canceled) => {
                break (TaskState::Canceled, None, Some("canceled".to_owned()))
            }
            Err(AttemptError::Final(e)) => break (TaskState::Failed, None, Some(e)),
            Err(AttemptError::Retriable(e)) if attempt < max_attempts => {
                run.events.send(RunEvent::TaskRetrying {
                    path: path.to_owned(),
                    attempt,
                    error: e.clone(),
                });
                let delay = backoff_delay(&retry, attempt);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = run.cancel.cancelled() => break (TaskState::Canceled, None, Some("canceled".to_owned())),
                }
            }
            Err(AttemptError::Retriable(e)) => break (TaskState::Failed, None, Some(e)),
        }
    };
    let mut outcome = match result {
        Some((parameters, artifacts)) => Outcome {
            state,
            parameters,
            artifacts,
            error: None,
        },
        None => Outcome::empty(state, error),
    };
    let record = TaskRecord {
        reason: (state == TaskState::Canceled).then(|| "the run was canceled".to_owned()),
        log: Some(dirs.log_path.display().to_string()),
        ..ended_record(
            task,
            path,
            TaskKind::Container,
            &outcome,
            Some(started_at),
            attempt,
        )
    };
    run.record(draft, record, &mut outcome, Vec::new());
    outcome
}

/// A cache hit: the earlier execution's outputs and artifacts (the same files, not copies),
/// recorded as a CACHED execution that points at it.
fn reuse_cached(
    run: &Run,
    task: &TaskSpec,
    component: &ComponentSpec,
    path: &str,
    draft: Draft,
    hit: kfbox_store::CachedExecution,
) -> Outcome {
    let started_at = now();
    let mut parameters = Map::new();
    for (name, definition) in &component.output_definitions.parameters {
        if let Some(value) = hit.outputs.get(name) {
            // The store keeps numbers as doubles, as MLMD does; the declared type restores ints.
            let value =
                coerce(value.clone(), definition.parameter_type).unwrap_or_else(|_| value.clone());
            parameters.insert(name.clone(), value);
        }
    }
    let mut artifacts = Artifacts::new();
    for (name, rows) in hit.artifacts {
        let declared = component.output_definitions.artifacts.get(&name);
        let list = rows
            .into_iter()
            .map(|row| {
                let mut metadata = row.metadata.clone();
                metadata.remove(props::STORE_SESSION_INFO);
                if row.display_name() == name {
                    metadata.remove(props::DISPLAY_NAME);
                }
                RuntimeArtifact {
                    name: name.clone(),
                    uri: row.uri,
                    schema_title: row.type_name,
                    schema_version: declared
                        .map(|d| d.artifact_type.schema_version.clone())
                        .unwrap_or_default(),
                    metadata,
                    id: Some(row.id),
                }
            })
            .collect();
        artifacts.insert(name, list);
    }
    let mut outcome = Outcome {
        state: TaskState::Cached,
        parameters,
        artifacts,
        error: None,
    };
    // The run's short id, as `kfbox runs` lists it; `kfbox runs get` takes it.
    let from = match &hit.run_id {
        Some(run_id) => format!(
            "execution {} of run {}",
            hit.execution_id,
            run_id.get(..8).unwrap_or(run_id)
        ),
        None => format!("execution {}", hit.execution_id),
    };
    let record = TaskRecord {
        reason: Some(format!("cache hit: reused {from}")),
        ..ended_record(
            task,
            path,
            TaskKind::Container,
            &outcome,
            Some(started_at),
            0,
        )
    };
    let extra = vec![(
        props::CACHED_EXECUTION_ID,
        Prop::Text(hit.execution_id.to_string()),
    )];
    run.record(draft, record, &mut outcome, extra);
    outcome
}

enum AttemptError {
    Canceled,
    Retriable(String),
    Final(String),
}

fn backoff_delay(retry: &kfbox_spec::ir::RetryPolicy, attempt: u32) -> Duration {
    let parse = |s: &Option<String>, default: f64| -> f64 {
        s.as_deref()
            .and_then(|d| d.trim_end_matches('s').parse::<f64>().ok())
            .unwrap_or(default)
    };
    let base = parse(&retry.backoff_duration, 0.0);
    let cap = parse(&retry.backoff_max_duration, 3600.0);
    let factor = retry.backoff_factor.unwrap_or(2.0).max(1.0);
    let seconds = (base * factor.powi(attempt as i32 - 1)).min(cap).max(0.0);
    Duration::from_secs_f64(seconds)
}

/// What a step reads and writes: its input artifacts (read-only), its output artifacts
/// directory, and its task directory (output parameter files, executor output, the attempts'
/// work directories). Non-local URIs (`gs://`...) are not paths and are left to the step.
fn step_mounts(inputs: &Inputs, input: &ExecutorInput<'_>, dirs: &TaskDirs) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for artifact in inputs.artifacts.values().flatten() {
        let path = PathBuf::from(&artifact.uri);
        if path.is_absolute() && !mounts.iter().any(|m| m.path == path) {
            mounts.push(Mount {
                path,
                writable: false,
            });
        }
    }
    if !input.outputs.is_empty() {
        mounts.push(Mount {
            path: dirs.artifacts_dir.clone(),
            writable: true,
        });
    }
    mounts.push(Mount {
        path: dirs.task_dir.clone(),
        writable: true,
    });
    mounts
}

async fn run_attempt(
    run: &Run,
    step: &Step,
    input: &ExecutorInput<'_>,
    component: &ComponentSpec,
) -> Result<(Map<String, Value>, Artifacts), AttemptError> {
    let io = |path: &Path, e: std::io::Error| {
        AttemptError::Final(format!("preparing {}: {e}", path.display()))
    };
    // Stale outputs of a failed attempt must not pass for this attempt's.
    for (_, file) in &input.output_parameters {
        let _ = fs_err::remove_file(file);
        if let Some(dir) = file.parent() {
            fs_err::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
    }
    let _ = fs_err::remove_file(&input.output_file);
    for list in input.outputs.values() {
        for artifact in list {
            let path = Path::new(&artifact.uri);
            if let Some(dir) = path.parent() {
                fs_err::create_dir_all(dir).map_err(|e| io(dir, e))?;
            }
        }
    }
    for dir in [
        step.work_dir.as_path(),
        step.log_path.parent().unwrap_or(Path::new(".")),
    ] {
        fs_err::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut step = step.clone();
    let gpus = &run.options.gpus;
    let lease = match &step.resources.accelerator {
        None => None,
        Some(accelerator) => {
            match gpus.admit(
                accelerator.count,
                accelerator.wants_nvidia(),
                &accelerator.describe(),
            ) {
                Admission::Refuse(e) => return Err(AttemptError::Final(e)),
                Admission::Without(warning) => {
                    if let Some(warning) = warning {
                        run.events.send(RunEvent::Warning(format!(
                            "task `{}` {warning}",
                            step.task_path
                        )));
                    }
                    None
                }
                // GPUs first, then a parallelism slot: a step waiting for a GPU must not hold
                // a slot that a CPU step could use.
                Admission::Wait(count) => tokio::select! {
                    lease = gpus.slots.acquire(count) => Some(lease),
                    _ = run.cancel.cancelled() => return Err(AttemptError::Canceled),
                },
            }
        }
    };
    if let Some(lease) = &lease {
        step.gpus = Some(lease.gpus.clone());
    } else if gpus.slots.exclusive() {
        // GPUs are slots: a step that asked for none sees none, as on a cluster.
        step.gpus = Some(Vec::new());
    }
    let permit = tokio::select! {
        permit = run.options.step_slots.acquire() => permit.expect("slots open"),
        _ = run.cancel.cancelled() => return Err(AttemptError::Canceled),
    };
    let exit = run.executor.run(&step, &run.events, &run.cancel).await;
    drop(permit);
    drop(lease);
    match exit {
        Ok(StepExit::Exited(0)) => {
            let host_files = run.executor.shares_host_files(&step);
            collect_outputs(input, component, &run.options.run_dir, host_files)
                .map_err(AttemptError::Retriable)
        }
        Ok(StepExit::Exited(code)) => Err(AttemptError::Retriable(format!(
            "the step exited with code {code} (see its log)"
        ))),
        Ok(StepExit::Signaled(signal)) => Err(AttemptError::Retriable(format!(
            "the step was killed by signal {signal}"
        ))),
        Ok(StepExit::Canceled) => Err(AttemptError::Canceled),
        Err(e @ (ExecutorError::NeedsContainerRuntime { .. } | ExecutorError::Unrunnable(_))) => {
            Err(AttemptError::Final(e.to_string()))
        }
        Err(e) => Err(AttemptError::Retriable(crate::error_chain(&e))),
    }
}

/// Outputs of a finished step: the executor output JSON first, then output parameter files
/// (as the backend's launcher does), each value checked against its declared type. A new URI
/// the step gives an artifact must lie in its run directory (later steps read it, and deleting
/// the run deletes it); a `set_path()` file must too unless the step ran with the host's files
/// (`host_files`), which it could read itself.
fn collect_outputs(
    input: &ExecutorInput<'_>,
    component: &ComponentSpec,
    run_dir: &Path,
    host_files: bool,
) -> Result<(Map<String, Value>, Artifacts), String> {
    let in_run = |what: &str, path: &str| {
        check_under(run_dir, Path::new(path)).map_err(|_| {
            format!("{what} {path} lies outside the run directory {}; a step may name only files of its own run", run_dir.display())
        })
    };
    let executor_output: Value = match fs_err::read_to_string(&input.output_file) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            format!(
                "executor output {} is not JSON: {e}",
                input.output_file.display()
            )
        })?,
        Err(_) => Value::Null,
    };
    let mut parameters = Map::new();
    let written = executor_output
        .get("parameterValues")
        .and_then(Value::as_object);
    for (name, definition) in &component.output_definitions.parameters {
        let raw = match written.and_then(|w| w.get(name)) {
            Some(v) => v.clone(),
            None => {
                let file = input
                    .output_parameters
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                let text = fs_err::read_to_string(&file)
                    .map_err(|e| format!("output parameter `{name}` was not written: {e}"))?;
                text_to_value(&text, definition.parameter_type)
                    .map_err(|e| format!("output parameter `{name}`: {e}"))?
            }
        };
        let value = coerce(raw, definition.parameter_type)
            .map_err(|e| format!("output parameter `{name}`: {e}"))?;
        parameters.insert(name.clone(), value);
    }
    let mut artifacts = input.outputs.clone();
    if let Some(written) = executor_output.get("artifacts").and_then(Value::as_object) {
        for (name, list) in written {
            let Some(declared) = artifacts.get_mut(name) else {
                continue;
            };
            let template = declared.first().cloned();
            let items = list
                .get("artifacts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                continue;
            }
            let mut merged = Vec::new();
            for item in items {
                let mut artifact = template.clone().unwrap_or(RuntimeArtifact {
                    name: name.clone(),
                    uri: String::new(),
                    schema_title: String::new(),
                    schema_version: String::new(),
                    metadata: Map::new(),
                    id: None,
                });
                if let Some(uri) = item
                    .get("uri")
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty())
                {
                    let uri = local_uri(uri);
                    // Remote URIs (`gs://`...) are references kfbox never opens.
                    if !uri.contains("://") {
                        in_run(&format!("artifact `{name}`: the URI"), &uri)?;
                    }
                    artifact.uri = uri;
                }
                if let Some(metadata) = item.get("metadata").and_then(Value::as_object) {
                    artifact.metadata.extend(metadata.clone());
                }
                // `set_path()` wrote the artifact elsewhere; the launcher uploads it from there.
                let custom = item.get("customPath").or_else(|| item.get("custom_path"));
                if let Some(custom) = custom.and_then(Value::as_str).filter(|c| !c.is_empty()) {
                    if custom != artifact.uri {
                        if !host_files {
                            in_run(&format!("artifact `{name}`: set_path()"), custom)?;
                        }
                        in_run(&format!("artifact `{name}`: the URI"), &artifact.uri)?;
                        copy_tree(Path::new(custom), Path::new(&artifact.uri)).map_err(|e| {
                            format!("artifact `{name}`: copying from custom path {custom}: {e}")
                        })?;
                    }
                }
                merged.push(artifact);
            }
            *declared = merged;
        }
    }
    Ok((parameters, artifacts))
}

/// Copy a file or tree; symlinks are copied as links, never followed (a link a step planted
/// must not bring the file it points at into the run's artifacts).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let kind = fs_err::symlink_metadata(from)?.file_type();
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    if kind.is_symlink() {
        std::os::unix::fs::symlink(fs_err::read_link(from)?, to)
    } else if kind.is_dir() {
        fs_err::create_dir_all(to)?;
        for entry in fs_err::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs_err::copy(from, to).map(|_| ())
    }
}

/// Kubernetes-only settings never fail silently: one warning per setting and task.
fn warn_about_platform_settings(run: &Run) {
    let spec = &run.pipeline.spec;
    let mut seen = HashSet::new();
    let dags = std::iter::once(&spec.root).chain(spec.components.values());
    for dag in dags.filter_map(|c| c.dag.as_ref()) {
        for task in dag.tasks.values() {
            let Some(component) = spec.component(&task.component_ref.name) else {
                continue;
            };
            let Some(label) = component.executor_label.as_deref() else {
                continue;
            };
            let task_name = &task.task_info.name;
            let mut warnings = Vec::new();
            for setting in run.pipeline.platform.kubernetes_settings(label) {
                warnings.push(format!(
                    "task `{task_name}`: Kubernetes setting `{setting}` is not applied when running locally"
                ));
            }
            for warning in warnings {
                if seen.insert(warning.clone()) {
                    run.events.send(RunEvent::Warning(warning));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfbox_spec::ir::RetryPolicy;

    #[test]
    fn backoff_grows_by_factor_and_stops_at_the_cap() {
        let retry = RetryPolicy {
            max_retry_count: 5,
            backoff_duration: Some("1s".into()),
            backoff_factor: Some(2.0),
            backoff_max_duration: Some("3s".into()),
        };
        assert_eq!(backoff_delay(&retry, 1), Duration::from_secs(1));
        assert_eq!(backoff_delay(&retry, 2), Duration::from_secs(2));
        assert_eq!(backoff_delay(&retry, 3), Duration::from_secs(3));
    }
}
