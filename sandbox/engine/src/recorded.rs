//! A recorded run read back: the one decoder of what the ledger writes ([`RecordedTask`]:
//! execution kinds, states and every property), on which the run summary, the API's task
//! details and the UI's graph are built.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, TimeZone, Utc};
use kfbox_store::value::Prop;
use kfbox_store::{props, ExecutionRow, RunRow, Store, StoreError};
use serde_json::{Map, Value};

use crate::model::{
    ArtifactRef, RunState, RunSummary, TaskKind, TaskOutputs, TaskRecord, TaskState,
};

/// What an execution is, as the ledger writes it in `kfbox.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionKind {
    /// The run's root DAG (written by the store when the run begins).
    Root,
    Dag,
    Loop,
    /// One iteration of a loop: a DAG execution of the loop's body.
    Iteration,
    Container,
    Importer,
}

impl ExecutionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Dag => "dag",
            Self::Loop => "loop",
            Self::Iteration => "iteration",
            Self::Container => "container",
            Self::Importer => "importer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Root,
            Self::Dag,
            Self::Loop,
            Self::Iteration,
            Self::Container,
            Self::Importer,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    /// The kind of a task in the run summary (root and iterations are not tasks there).
    pub fn task_kind(self) -> Option<TaskKind> {
        match self {
            Self::Dag => Some(TaskKind::Dag),
            Self::Loop => Some(TaskKind::Loop),
            Self::Container => Some(TaskKind::Container),
            Self::Importer => Some(TaskKind::Importer),
            Self::Root | Self::Iteration => None,
        }
    }
}

impl From<TaskKind> for ExecutionKind {
    fn from(kind: TaskKind) -> Self {
        match kind {
            TaskKind::Container => Self::Container,
            TaskKind::Importer => Self::Importer,
            TaskKind::Dag => Self::Dag,
            TaskKind::Loop => Self::Loop,
        }
    }
}

/// An execution's kind; `None` for executions kfbox did not write.
fn execution_kind(execution: &ExecutionRow) -> Option<ExecutionKind> {
    execution.text(props::KIND).and_then(ExecutionKind::parse)
}

/// An execution's state: kfbox's own, finer one when it ended (SKIPPED and CANCELED are both
/// MLMD CANCELED), else MLMD's (a running execution, or one another writer ended).
pub fn execution_state(execution: &ExecutionRow) -> TaskState {
    if let Some(state) = execution.text(props::STATE).and_then(TaskState::parse) {
        return state;
    }
    match execution.state {
        "COMPLETE" => TaskState::Succeeded,
        "FAILED" => TaskState::Failed,
        "CACHED" => TaskState::Cached,
        "CANCELED" => TaskState::Canceled,
        _ => TaskState::Running,
    }
}

/// One recorded execution, typed: every property the ledger writes, read in this one place.
#[derive(Debug, Clone)]
pub struct RecordedTask {
    pub execution_id: i64,
    /// `None` for executions kfbox did not write.
    pub kind: Option<ExecutionKind>,
    pub state: TaskState,
    /// The task's name in its DAG.
    pub task_name: String,
    /// The execution's display name (an iteration's is `<loop>-iteration-<n>`).
    pub display_name: String,
    /// Where the task sits in the run (`loop/iteration-0/train`); empty for the root.
    pub path: String,
    /// The execution of the DAG, loop or iteration the task ran in.
    pub parent_execution: Option<i64>,
    pub attempts: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub reason: Option<String>,
    pub log: Option<String>,
    /// The execution a cache hit reused.
    pub cached_from: Option<String>,
    pub iteration_count: Option<usize>,
    /// Parameter values in and out, when recorded.
    pub inputs: Option<Map<String, Value>>,
    pub outputs: Option<Map<String, Value>>,
    /// INPUT and OUTPUT events: the name and the artifact id.
    pub input_artifacts: Vec<(String, i64)>,
    pub output_artifacts: Vec<(String, i64)>,
    /// Artifact ids a DAG (or the run) passes on, by output name (DAGs produce no artifacts of
    /// their own, so they list their children's).
    pub passed_artifacts: BTreeMap<String, Vec<i64>>,
}

impl RecordedTask {
    pub fn of(execution: &ExecutionRow) -> Self {
        let text = |name: &str| execution.text(name).map(str::to_owned);
        let structure = |name: &str| execution.props.get(name).and_then(Prop::as_struct);
        let passed_artifacts = structure(props::OUTPUT_ARTIFACTS)
            .map(|map| {
                map.iter()
                    .map(|(name, ids)| {
                        let ids = ids.as_array().into_iter().flatten();
                        (name.clone(), ids.filter_map(Value::as_i64).collect())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            execution_id: execution.id,
            kind: execution_kind(execution),
            state: execution_state(execution),
            task_name: text(props::TASK_NAME).unwrap_or_default(),
            display_name: text(props::DISPLAY_NAME).unwrap_or_default(),
            path: text(props::PATH).unwrap_or_default(),
            parent_execution: execution.int(props::PARENT_DAG_ID),
            attempts: execution
                .int(props::ATTEMPTS)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            started_at: text(props::STARTED_AT),
            finished_at: text(props::FINISHED_AT),
            error: text(props::ERROR),
            reason: text(props::REASON),
            log: text(props::LOG),
            cached_from: text(props::CACHED_EXECUTION_ID),
            iteration_count: execution
                .int(props::ITERATION_COUNT)
                .and_then(|n| usize::try_from(n).ok()),
            inputs: structure(props::INPUTS).cloned(),
            outputs: structure(props::OUTPUTS).cloned(),
            input_artifacts: execution.inputs.clone(),
            output_artifacts: execution.outputs.clone(),
            passed_artifacts,
        }
    }
}

/// One execution per task: the newest of each task path (a retried run has several).
pub fn latest_per_task(executions: &[ExecutionRow]) -> Vec<&ExecutionRow> {
    let mut newest: BTreeMap<&str, &ExecutionRow> = BTreeMap::new();
    for execution in executions {
        let path = execution.text(props::PATH).unwrap_or_default();
        match newest.get(path) {
            Some(seen) if seen.id > execution.id => {}
            _ => {
                newest.insert(path, execution);
            }
        }
    }
    let mut list: Vec<&ExecutionRow> = newest.into_values().collect();
    list.sort_by_key(|e| e.id);
    list
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The run's own record among its executions: its root, with the parameter values it ran
/// with (defaults included) and its outputs.
pub fn recorded_root<'a>(
    executions: impl IntoIterator<Item = &'a ExecutionRow>,
) -> Option<RecordedTask> {
    executions
        .into_iter()
        .map(RecordedTask::of)
        .find(|task| task.kind == Some(ExecutionKind::Root))
}

/// The run as `kfbox run --json` reported it, rebuilt from the store (also while it runs).
pub fn recorded_summary(store: &Store, run: &RunRow) -> Result<RunSummary, StoreError> {
    let executions = store.run_executions(run)?;
    let artifact_ref = |id: i64| -> Option<ArtifactRef> {
        let row = store.artifact(id).ok()?;
        let mut metadata = row.metadata;
        metadata.remove(props::STORE_SESSION_INFO);
        metadata.remove(props::DISPLAY_NAME);
        Some(ArtifactRef {
            uri: row.uri,
            metadata,
        })
    };
    let passed = |task: &RecordedTask| -> BTreeMap<String, Vec<ArtifactRef>> {
        task.passed_artifacts
            .iter()
            .map(|(name, ids)| {
                let refs = ids.iter().filter_map(|id| artifact_ref(*id)).collect();
                (name.clone(), refs)
            })
            .collect()
    };
    let mut tasks = Vec::new();
    let mut outputs = Map::new();
    for execution in &executions {
        let task = RecordedTask::of(execution);
        if task.kind == Some(ExecutionKind::Root) {
            outputs = task.outputs.clone().unwrap_or_default();
            for (name, refs) in passed(&task) {
                outputs.insert(name, serde_json::to_value(refs).unwrap_or_default());
            }
            continue;
        }
        let Some(kind) = task.kind.and_then(ExecutionKind::task_kind) else {
            continue;
        };
        let artifacts = match kind {
            TaskKind::Dag | TaskKind::Loop => passed(&task),
            TaskKind::Container | TaskKind::Importer => {
                let mut map: BTreeMap<String, Vec<ArtifactRef>> = BTreeMap::new();
                for (name, id) in &task.output_artifacts {
                    if let Some(r) = artifact_ref(*id) {
                        map.entry(name.clone()).or_default().push(r);
                    }
                }
                map
            }
        };
        tasks.push(TaskRecord {
            name: task.task_name,
            path: task.path,
            kind,
            state: task.state,
            attempts: task.attempts,
            started_at: task.started_at,
            finished_at: task.finished_at,
            outputs: TaskOutputs {
                parameters: task.outputs.unwrap_or_default(),
                artifacts,
            },
            error: task.error,
            reason: task.reason,
            iterations: task.iteration_count,
            log: task.log,
        });
    }
    tasks.sort_by(|a, b| {
        let key = |t: &TaskRecord| t.started_at.clone().or(t.finished_at.clone());
        key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
    });
    // A run's state is one of those the ledger writes; anything else ended it.
    let state = RunState::parse(&run.state).unwrap_or(RunState::Failed);
    Ok(RunSummary {
        run_id: run.run_id.clone(),
        pipeline: run.pipeline_name.clone(),
        state,
        outputs,
        tasks,
        started_at: rfc3339(run.created_at),
        finished_at: rfc3339(
            run.finished_at
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
        ),
        run_dir: run.run_dir.clone(),
        error: run.error.clone(),
        page: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_states_read_back_as_written() {
        for kind in [
            ExecutionKind::Root,
            ExecutionKind::Dag,
            ExecutionKind::Loop,
            ExecutionKind::Iteration,
            ExecutionKind::Container,
            ExecutionKind::Importer,
        ] {
            assert_eq!(ExecutionKind::parse(kind.as_str()), Some(kind));
        }
        for state in [
            TaskState::Running,
            TaskState::Succeeded,
            TaskState::Failed,
            TaskState::Skipped,
            TaskState::Canceled,
            TaskState::Cached,
        ] {
            assert_eq!(TaskState::parse(state.as_str()), Some(state));
        }
        for state in [
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Canceled,
        ] {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
        }
    }
}
