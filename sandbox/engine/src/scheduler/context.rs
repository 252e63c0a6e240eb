//! What every part of the scheduler shares: the run being executed, its options, the values
//! that travel between tasks, and how an ended task becomes a record.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use kfbox_spec::ir::{ComponentSpec, DagSpec, TaskSpec};
use kfbox_spec::LoadedPipeline;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use kfbox_store::value::Prop;
use kfbox_store::{RunHandle, Store};

use crate::ledger::{Draft, Ledger, Placement};
use crate::model::{ArtifactRef, RuntimeArtifact, TaskKind, TaskOutputs, TaskRecord, TaskState};
use crate::recorded::ExecutionKind;
use kfbox_gpu::GpuPlan;
use kfbox_step::events::{EventSink, RunEvent};
use kfbox_step::Executor;

/// Everything a run needs besides the pipeline and the executor.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
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
    pub namespace: kfbox_namespace::Namespace,
}

pub(super) type Artifacts = BTreeMap<String, Vec<RuntimeArtifact>>;

#[derive(Debug, Clone, Default)]
pub(super) struct Inputs {
    pub(super) parameters: Map<String, Value>,
    pub(super) artifacts: Artifacts,
}

#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub(super) state: TaskState,
    pub(super) parameters: Map<String, Value>,
    pub(super) artifacts: Artifacts,
    pub(super) error: Option<String>,
}

impl Outcome {
    pub(super) fn empty(state: TaskState, error: Option<String>) -> Self {
        Self {
            state,
            parameters: Map::new(),
            artifacts: Artifacts::new(),
            error,
        }
    }
}

pub(super) struct Run {
    pub(super) pipeline: Arc<LoadedPipeline>,
    pub(super) executor: Arc<dyn Executor>,
    pub(super) events: EventSink,
    pub(super) cancel: CancellationToken,
    pub(super) options: RunOptions,
    pub(super) create_time: String,
    /// Like the Argo workflow name on a cluster: the pipeline name and a short suffix.
    pub(super) resource_name: String,
    pub(super) records: Mutex<Vec<TaskRecord>>,
    pub(super) ledger: Ledger,
}

pub(super) type BoxedOutcome = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A run's name as a cluster would give its workflow: the pipeline name and the run id's first
/// eight characters (`{{$.pipeline_job_resource_name}}`, the run context's `resource_name`).
pub fn resource_name(pipeline_name: &str, run_id: &str) -> String {
    format!(
        "{pipeline_name}-{}",
        run_id.chars().take(8).collect::<String>()
    )
}

pub(super) fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

impl Run {
    pub(super) fn component(&self, name: Option<&str>) -> &ComponentSpec {
        match name {
            None => &self.pipeline.spec.root,
            Some(n) => self
                .pipeline
                .spec
                .component(n)
                .expect("component references are validated at load"),
        }
    }

    pub(super) fn dag(&self, component: Option<&str>) -> &DagSpec {
        static EMPTY: std::sync::OnceLock<DagSpec> = std::sync::OnceLock::new();
        self.component(component)
            .dag
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(DagSpec::default))
    }

    /// Record an ended task in the store (new output artifacts get their ids) and the summary.
    pub(super) fn record(
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
    pub(super) fn draft(
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
            kind: ExecutionKind::from(kind),
            parent,
        };
        self.ledger
            .draft(&at, &inputs.parameters, &inputs.artifacts)
    }

    /// Record a task that ended without running a step.
    pub(super) fn record_unrun(
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

    pub(super) fn kind_of(&self, task: &TaskSpec) -> TaskKind {
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

    pub(super) fn runtime_constant(&self, text: &str, task_name: &str) -> String {
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
            let workspace = self.workspace_dir().display().to_string();
            out = out.replace("{{$.workspace_path}}", &workspace);
        }
        out
    }

    /// The pipeline's workspace: one directory per run, shared by all its tasks, as the SDK's
    /// local runner maps it (a cluster mounts a PVC at `/kfp-workspace`).
    pub(super) fn workspace_dir(&self) -> PathBuf {
        self.options.run_dir.join("workspace")
    }
}

/// The record of an ended task; callers add what is specific to their kind.
pub(super) fn ended_record(
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

pub(super) fn summary_outputs(outcome: &Outcome) -> TaskOutputs {
    TaskOutputs {
        parameters: outcome.parameters.clone(),
        artifacts: outcome
            .artifacts
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(ArtifactRef::from).collect()))
            .collect(),
    }
}

/// `file://` URIs name local paths; kfbox passes local artifacts by plain absolute path, as the
/// SDK's local runner does, so `.path` equals `.uri`.
pub(super) fn local_uri(uri: &str) -> String {
    uri.strip_prefix("file://").unwrap_or(uri).to_owned()
}
