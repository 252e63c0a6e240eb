//! The v2beta1 resources a run needs, in the API's JSON (snake_case field names, as KFP's
//! gateway writes them). Fields the API may leave out default; unknown ones are ignored, since
//! servers add fields between releases.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body of `POST /apis/v2beta1/runs` with the pipeline inline, as `kfp.Client` sends it.
#[derive(Debug, Serialize)]
pub struct NewRun {
    pub display_name: String,
    /// The compiled PipelineSpec, or the `{"pipeline_spec", "platform_spec"}` wrapper.
    pub pipeline_spec: Value,
    pub runtime_config: RuntimeConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment_id: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct RuntimeConfig {
    pub parameters: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RemoteRun {
    pub run_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub state: RuntimeState,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub error: Option<Status>,
    #[serde(default)]
    pub run_details: Option<RunDetails>,
}

impl RemoteRun {
    pub fn tasks(&self) -> &[RemoteTask] {
        self.run_details
            .as_ref()
            .map_or(&[][..], |details| &details.task_details)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunDetails {
    #[serde(default)]
    pub task_details: Vec<RemoteTask>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RemoteTask {
    #[serde(default)]
    pub task_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub state: RuntimeState,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    #[serde(default)]
    pub error: Option<Status>,
    #[serde(default)]
    pub parent_task_id: Option<String>,
    #[serde(default)]
    pub child_tasks: Vec<Value>,
}

/// google.rpc.Status as the API writes errors.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub code: i32,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RuntimeState {
    #[default]
    RuntimeStateUnspecified,
    Pending,
    Running,
    Succeeded,
    Skipped,
    Failed,
    Canceling,
    Canceled,
    Paused,
    /// A state a newer server added.
    #[serde(other)]
    Unknown,
}

impl RuntimeState {
    /// The run or task will not change state again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Skipped | Self::Failed | Self::Canceled
        )
    }
}

/// The API writes unset times as the epoch; they mean "not yet".
pub(crate) fn is_unset_time(time: &str) -> bool {
    time.is_empty() || time.starts_with("1970-01-01T00:00:00")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kfp_run_reads_with_unknown_fields_and_states() {
        let run: RemoteRun = serde_json::from_value(serde_json::json!({
            "run_id": "r1",
            "display_name": "hello",
            "state": "RUNNING",
            "storage_state": "AVAILABLE",
            "created_at": "2026-12-01T00:00:00Z",
            "finished_at": "1970-01-01T00:00:00Z",
            "run_details": {"task_details": [
                {"task_id": "1", "display_name": "a", "state": "SUCCEEDED", "pods": []},
                {"task_id": "2", "display_name": "b", "state": "SOMETHING_NEW"},
                {"task_id": "3", "display_name": "c"}
            ]}
        }))
        .unwrap();
        assert_eq!(run.state, RuntimeState::Running);
        let states: Vec<_> = run.tasks().iter().map(|t| t.state).collect();
        assert_eq!(
            states,
            [
                RuntimeState::Succeeded,
                RuntimeState::Unknown,
                RuntimeState::RuntimeStateUnspecified
            ]
        );
        assert!(is_unset_time(run.finished_at.as_deref().unwrap()));
        assert!(!RuntimeState::Canceling.is_final());
    }
}
