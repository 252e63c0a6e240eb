//! The API's resources as the v2beta1 API writes them (snake_case proto field names, enum
//! names, RFC 3339 times), built from the store's rows. Every response body is one of these
//! types, and the OpenAPI document's schemas are derived from the same types (`ToSchema`), so
//! the document cannot drift from what the server sends.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SecondsFormat};
use kfbox_engine::model::{RunState, TaskState};
use kfbox_engine::recorded::{latest_per_task, RecordedTask};
use kfbox_store::{
    ApiRunRow, ExecutionRow, ExperimentRow, Page, PipelineRow, PipelineVersionRow, RecurringRunRow,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Milliseconds since the epoch as RFC 3339; unset times are the epoch, as the backend writes
/// them.
pub fn time(ms: Option<i64>) -> String {
    DateTime::from_timestamp_millis(ms.unwrap_or(0))
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An error, as grpc-gateway writes a `google.rpc.Status` (with the older `error` field that
/// v1 clients read).
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// The gRPC status code.
    pub code: i32,
    pub message: String,
    /// The message again, for v1 clients.
    pub error: String,
    pub details: Vec<Map<String, Value>>,
}

/// An answer without content (deletes, custom methods).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Empty {}

#[derive(Debug, Serialize, ToSchema)]
pub struct Healthz {
    pub commit_sha: String,
    pub tag_name: String,
    pub multi_user: bool,
    pub pipeline_store: String,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageState {
    Available,
    Archived,
}

impl StorageState {
    fn of(text: &str) -> Self {
        if text == "ARCHIVED" {
            Self::Archived
        } else {
            Self::Available
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Experiment {
    pub experiment_id: String,
    pub display_name: String,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub namespace: String,
    pub storage_state: StorageState,
    #[schema(format = DateTime)]
    pub last_run_created_at: String,
}

pub fn experiment(row: &ExperimentRow) -> Experiment {
    Experiment {
        experiment_id: row.experiment_id.clone(),
        display_name: row.display_name.clone(),
        description: row.description.clone(),
        created_at: time(Some(row.created_at)),
        namespace: String::new(),
        storage_state: StorageState::of(&row.storage_state),
        last_run_created_at: time(row.last_run_created_at),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Pipeline {
    pub pipeline_id: String,
    pub display_name: String,
    pub name: String,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub namespace: String,
}

pub fn pipeline(row: &PipelineRow) -> Pipeline {
    Pipeline {
        pipeline_id: row.pipeline_id.clone(),
        display_name: row.display_name.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        created_at: time(Some(row.created_at)),
        namespace: String::new(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineVersion {
    pub pipeline_id: String,
    pub pipeline_version_id: String,
    pub display_name: String,
    pub name: String,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The compiled PipelineSpec, or `{"pipeline_spec", "platform_spec"}` with Kubernetes
    /// settings.
    pub pipeline_spec: Map<String, Value>,
}

pub fn pipeline_version(row: &PipelineVersionRow) -> PipelineVersion {
    PipelineVersion {
        pipeline_id: row.pipeline_id.clone(),
        pipeline_version_id: row.pipeline_version_id.clone(),
        display_name: row.display_name.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        created_at: time(Some(row.created_at)),
        pipeline_spec: serde_json::from_str(&row.pipeline_spec).unwrap_or_default(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VersionReference {
    pub pipeline_id: Option<String>,
    pub pipeline_version_id: Option<String>,
}

/// What a run is given: its root parameters by name (`pipeline_root` is accepted and unused).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_root: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuntimeState {
    Pending,
    Running,
    Succeeded,
    Skipped,
    Failed,
    Canceling,
    Canceled,
}

impl RuntimeState {
    /// A run's state as the run index holds it.
    fn of_run(text: &str) -> Self {
        match RunState::parse(text) {
            Some(RunState::Running) => Self::Running,
            Some(RunState::Succeeded) => Self::Succeeded,
            Some(RunState::Failed) => Self::Failed,
            Some(RunState::Canceled) => Self::Canceled,
            None => Self::Pending,
        }
    }
}

impl From<TaskState> for RuntimeState {
    fn from(state: TaskState) -> Self {
        match state {
            TaskState::Running => Self::Running,
            TaskState::Succeeded | TaskState::Cached => Self::Succeeded,
            TaskState::Skipped => Self::Skipped,
            TaskState::Failed => Self::Failed,
            TaskState::Canceled => Self::Canceled,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuntimeStatus {
    #[schema(format = DateTime)]
    pub update_time: String,
    pub state: RuntimeState,
}

/// An error of a run or a task (a `google.rpc.Status` without details).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunError {
    pub code: i32,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    pub experiment_id: String,
    pub run_id: String,
    pub display_name: String,
    /// Not in the upstream resource (its UI reads the spec); kfbox's lists show it.
    pub pipeline_name: String,
    pub storage_state: StorageState,
    pub description: String,
    pub runtime_config: RuntimeConfig,
    pub service_account: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub scheduled_at: String,
    #[schema(format = DateTime)]
    pub finished_at: String,
    pub state: RuntimeState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_version_reference: Option<VersionReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_spec: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recurring_run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    pub state_history: Vec<RuntimeStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_details: Option<RunDetails>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetails {
    pub pipeline_context_id: String,
    pub pipeline_run_context_id: String,
    pub task_details: Vec<TaskDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactIds {
    pub artifact_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChildTask {
    pub task_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDetail {
    pub run_id: String,
    pub task_id: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    pub state: RuntimeState,
    pub execution_id: String,
    pub inputs: BTreeMap<String, ArtifactIds>,
    pub outputs: BTreeMap<String, ArtifactIds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_task_id: Option<String>,
    pub child_tasks: Vec<ChildTask>,
    pub pod_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
}

/// A run. `canceling`: a terminate was asked and the run has not ended yet. `executions`:
/// the run's executions for `run_details` (only `get` sends them).
pub fn run(
    row: &ApiRunRow,
    canceling: bool,
    spec: Option<&str>,
    executions: Option<&[ExecutionRow]>,
) -> Run {
    let run = &row.run;
    let state = match RuntimeState::of_run(&run.state) {
        RuntimeState::Running if canceling => RuntimeState::Canceling,
        other => other,
    };
    let mut history = vec![RuntimeStatus {
        update_time: time(Some(run.created_at)),
        state: RuntimeState::Running,
    }];
    if let Some(finished) = run.finished_at {
        history.push(RuntimeStatus {
            update_time: time(Some(finished)),
            state: RuntimeState::of_run(&run.state),
        });
    }
    let version = row.fields.pipeline_version_id.clone();
    Run {
        experiment_id: row.fields.experiment_id.clone().unwrap_or_default(),
        run_id: run.run_id.clone(),
        display_name: run.display_name.clone(),
        pipeline_name: run.pipeline_name.clone(),
        storage_state: StorageState::of(&row.storage_state),
        description: row.fields.description.clone(),
        runtime_config: serde_json::from_str(&row.fields.runtime_config).unwrap_or_default(),
        service_account: row.fields.service_account.clone(),
        created_at: time(Some(run.created_at)),
        scheduled_at: time(Some(run.created_at)),
        finished_at: time(run.finished_at),
        state,
        pipeline_version_reference: version.as_ref().map(|v| VersionReference {
            pipeline_id: Some(row.fields.pipeline_id.clone().unwrap_or_default()),
            pipeline_version_id: Some(v.clone()),
        }),
        pipeline_version_id: version,
        pipeline_spec: spec
            .filter(|s| !s.is_empty())
            .and_then(|s| serde_json::from_str(s).ok()),
        recurring_run_id: row.fields.recurring_run_id.clone(),
        error: run.error.as_ref().map(|message| RunError {
            code: 2,
            message: message.clone(),
        }),
        state_history: history,
        run_details: executions.map(|executions| RunDetails {
            pipeline_context_id: String::new(),
            pipeline_run_context_id: run.context_id.to_string(),
            task_details: task_details(&run.run_id, executions),
        }),
    }
}

fn task_details(run_id: &str, executions: &[ExecutionRow]) -> Vec<TaskDetail> {
    let tasks: Vec<RecordedTask> = latest_per_task(executions)
        .into_iter()
        .map(RecordedTask::of)
        .collect();
    let mut children: HashMap<i64, Vec<ChildTask>> = HashMap::new();
    for task in &tasks {
        if let Some(parent) = task.parent_execution {
            children.entry(parent).or_default().push(ChildTask {
                task_id: task.execution_id.to_string(),
            });
        }
    }
    let artifacts = |events: &[(String, i64)]| -> BTreeMap<String, ArtifactIds> {
        let mut by_name: BTreeMap<String, ArtifactIds> = BTreeMap::new();
        for (name, id) in events {
            by_name
                .entry(name.clone())
                .or_insert_with(|| ArtifactIds {
                    artifact_ids: Vec::new(),
                })
                .artifact_ids
                .push(id.to_string());
        }
        by_name
    };
    tasks
        .into_iter()
        .map(|task| {
            let name = if !task.path.is_empty() {
                task.path.clone()
            } else if !task.task_name.is_empty() {
                task.task_name.clone()
            } else {
                task.display_name.clone()
            };
            TaskDetail {
                run_id: run_id.to_owned(),
                task_id: task.execution_id.to_string(),
                display_name: name,
                create_time: task.started_at.clone().or(task.finished_at.clone()),
                start_time: task.started_at.clone(),
                end_time: task.finished_at.clone(),
                state: task.state.into(),
                execution_id: task.execution_id.to_string(),
                inputs: artifacts(&task.input_artifacts),
                outputs: artifacts(&task.output_artifacts),
                parent_task_id: task.parent_execution.map(|p| p.to_string()),
                child_tasks: children.remove(&task.execution_id).unwrap_or_default(),
                pod_name: String::new(),
                error: task.error.map(|message| RunError { code: 2, message }),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CronSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub end_time: Option<String>,
    /// Six fields: second minute hour day-of-month month day-of-week.
    #[serde(default)]
    pub cron: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PeriodicSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub end_time: Option<String>,
    /// Seconds between runs, at least 1; protobuf's JSON writes 64-bit integers as strings.
    #[schema(value_type = String, pattern = "^[0-9]{1,12}$")]
    pub interval_second: Value,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_schedule: Option<CronSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_schedule: Option<PeriodicSchedule>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecurringMode {
    ModeUnspecified,
    #[default]
    Enable,
    Disable,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecurringStatus {
    Enabled,
    Disabled,
}

/// A recurring run as clients create it: what each run gets, and when runs start. The server
/// keeps it in this shape (normalised) and answers from it.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct RecurringRunRequest {
    #[schema(min_length = 1)]
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_version_reference: Option<VersionReference>,
    /// The compiled PipelineSpec (or the `{"pipeline_spec", "platform_spec"}` wrapper).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub pipeline_spec: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_config: Option<RuntimeConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// How many of its runs may run at once: 1 to 10 (as a string or a number).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^([1-9]|10)$")]
    pub max_concurrency: Option<Value>,
    pub trigger: Trigger,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<RecurringMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_catchup: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecurringRun {
    pub recurring_run_id: String,
    pub display_name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_version_reference: Option<VersionReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline_spec: Option<Map<String, Value>>,
    pub runtime_config: RuntimeConfig,
    pub service_account: String,
    #[schema(pattern = "^[0-9]+$")]
    pub max_concurrency: String,
    pub trigger: Trigger,
    pub mode: RecurringMode,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub status: RecurringStatus,
    pub no_catchup: bool,
    pub experiment_id: String,
    pub namespace: String,
}

pub fn recurring_run(row: &RecurringRunRow) -> RecurringRun {
    let body: RecurringRunRequest = serde_json::from_str(&row.body).unwrap_or_default();
    let enabled = row.mode == "ENABLE";
    RecurringRun {
        recurring_run_id: row.recurring_run_id.clone(),
        display_name: row.display_name.clone(),
        description: body.description.unwrap_or_default(),
        pipeline_version_reference: body.pipeline_version_reference,
        pipeline_spec: match body.pipeline_spec {
            Some(Value::Object(spec)) => Some(spec),
            _ => None,
        },
        runtime_config: body.runtime_config.unwrap_or_default(),
        service_account: body.service_account.unwrap_or_default(),
        // Kept as a string when created, as protobuf writes 64-bit integers.
        max_concurrency: match body.max_concurrency {
            Some(Value::String(text)) => text,
            other => other.map(|v| v.to_string()).unwrap_or_default(),
        },
        trigger: body.trigger,
        mode: if enabled {
            RecurringMode::Enable
        } else {
            RecurringMode::Disable
        },
        created_at: time(Some(row.created_at)),
        updated_at: time(Some(row.updated_at)),
        status: if enabled {
            RecurringStatus::Enabled
        } else {
            RecurringStatus::Disabled
        },
        no_catchup: body.no_catchup.unwrap_or_default(),
        experiment_id: row.experiment_id.clone().unwrap_or_default(),
        namespace: String::new(),
    }
}

/// A page of a list: the items, how many there are in all, and the token of the next page
/// (empty on the last).
macro_rules! list_response {
    ($name:ident, $field:ident, $item:ty, $key:literal) => {
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            #[serde(rename = $key)]
            #[schema(rename = $key)]
            pub $field: Vec<$item>,
            pub total_size: i32,
            pub next_page_token: String,
        }

        impl $name {
            pub fn of<T>(page: Page<T>, render: impl Fn(&T) -> $item) -> Self {
                Self {
                    $field: page.items.iter().map(render).collect(),
                    total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
                    next_page_token: page.next_page_token.unwrap_or_default(),
                }
            }
        }
    };
}

list_response!(ListExperiments, experiments, Experiment, "experiments");
list_response!(ListPipelines, pipelines, Pipeline, "pipelines");
list_response!(
    ListPipelineVersions,
    pipeline_versions,
    PipelineVersion,
    "pipeline_versions"
);
list_response!(ListRuns, runs, Run, "runs");
list_response!(
    ListRecurringRuns,
    recurring_runs,
    RecurringRun,
    "recurringRuns"
);
