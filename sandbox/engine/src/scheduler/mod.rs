//! The scheduler: walks DAGs, resolves inputs, evaluates conditions, fans loops out and in, and
//! hands container steps to the executor.
//!
//! Failure follows the backend on Argo: inside one DAG, once a task fails no new task starts
//! (fail-fast) except those with `ALL_UPSTREAM_TASKS_COMPLETED` (exit handlers, ignore upstream
//! failure); a DAG fails when any of its tasks failed; running tasks are never interrupted by a
//! sibling's failure.

mod attempt;
mod container;
mod context;
mod dag;
mod field_paths;
mod importer;
mod inherited_retries;
mod inputs;
mod loops;
mod outputs;
mod pod_volumes;
mod step_input;
mod volume_tasks;

pub(crate) use context::{resource_name, RunOptions};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use kfbox_spec::LoadedPipeline;
use tokio_util::sync::CancellationToken;

use crate::ledger::Ledger;
use crate::model::{ArtifactRef, RunState, RunSummary, TaskKind, TaskRecord, TaskState};
use kfbox_step::events::{EventSink, RunEvent};
use kfbox_step::Executor;

use context::{now, Inputs, Run};
use dag::run_dag;

/// Run a pipeline to its end. Never fails as a whole: every problem lands in a task record.
pub(crate) async fn execute(
    pipeline: Arc<LoadedPipeline>,
    options: RunOptions,
    executor: Arc<dyn Executor>,
    events: EventSink,
    cancel: CancellationToken,
) -> RunSummary {
    let started_at = now();
    let pipeline = match inherited_retries::with_inherited_retry_policies(&pipeline.spec) {
        Some(spec) => Arc::new(LoadedPipeline {
            spec,
            ..(*pipeline).clone()
        }),
        None => pipeline,
    };
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
        page: None,
    }
}

/// Whether a component's container asks for an accelerator (by count or by a parameter).
fn component_asks_for_gpus(
    spec: &kfbox_spec::ir::PipelineSpec,
    component: &kfbox_spec::ir::ComponentSpec,
) -> bool {
    component
        .executor_label
        .as_deref()
        .and_then(|label| spec.deployment_spec.executors.get(label))
        .and_then(|executor| executor.container.as_ref())
        .and_then(|container| container.resources.as_ref())
        .is_some_and(|resources| resources.get("accelerator").is_some())
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
            let platform = &run.pipeline.platform;
            for setting in platform
                .kubernetes_settings(label)
                .into_iter()
                .filter(|s| !kfbox_spec::platform::APPLIED.contains(&s.as_str()))
            {
                if setting == "nodeSelector" {
                    let asks_for_gpus = component_asks_for_gpus(spec, component);
                    for (key, value) in platform.node_selector(label) {
                        if !(asks_for_gpus && kfbox_gpu::PRODUCT_LABELS.contains(&key.as_str())) {
                            warnings.push(format!(
                                "task `{task_name}`: node selector `{key}={value}` chooses a cluster node; on one machine it is recorded, not applied"
                            ));
                        }
                    }
                } else if kfbox_spec::platform::SCHEDULING.contains(&setting.as_str()) {
                    warnings.push(format!(
                        "task `{task_name}`: Kubernetes setting `{setting}` chooses a cluster node; on one machine it is recorded, not applied"
                    ));
                } else {
                    warnings.push(format!(
                        "task `{task_name}`: Kubernetes setting `{setting}` is not applied when running locally"
                    ));
                }
            }
            for warning in warnings {
                if seen.insert(warning.clone()) {
                    run.events.send(RunEvent::Warning(warning));
                }
            }
        }
    }
}
