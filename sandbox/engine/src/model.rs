//! What a run produces: task records, artifacts and the summary (the `--json` contract).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use kfbox_step::TaskState;

/// An artifact as it travels between tasks: URI, type and the metadata its producer wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeArtifact {
    pub name: String,
    pub uri: String,
    #[serde(default)]
    pub schema_title: String,
    #[serde(default)]
    pub schema_version: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The artifact's id in the store, once recorded; its identity in cache fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
}

impl RuntimeArtifact {
    /// The protojson form used inside ExecutorInput / ExecutorOutput.
    pub fn to_executor_json(&self) -> Value {
        let mut ty = Map::new();
        if !self.schema_title.is_empty() {
            ty.insert("schemaTitle".into(), self.schema_title.clone().into());
        }
        if !self.schema_version.is_empty() {
            ty.insert("schemaVersion".into(), self.schema_version.clone().into());
        }
        serde_json::json!({
            "name": self.name,
            "type": ty,
            "uri": self.uri,
            "metadata": self.metadata,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    /// Still running (only seen when reading a run in progress from the store).
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }

    /// The state [`RunState::as_str`] wrote, or `None` for text it never writes.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Running, Self::Succeeded, Self::Failed, Self::Canceled]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Container,
    Importer,
    Dag,
    Loop,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOutputs {
    pub parameters: Map<String, Value>,
    pub artifacts: BTreeMap<String, Vec<ArtifactRef>>,
}

/// How an artifact appears in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    pub uri: String,
    pub metadata: Map<String, Value>,
}

impl From<&RuntimeArtifact> for ArtifactRef {
    fn from(a: &RuntimeArtifact) -> Self {
        Self {
            uri: a.uri.clone(),
            metadata: a.metadata.clone(),
        }
    }
}

/// One task of a run, as reported in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRecord {
    pub name: String,
    pub path: String,
    pub kind: TaskKind,
    pub state: TaskState,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub outputs: TaskOutputs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why a task did not run (SKIPPED) or stopped (CANCELED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Number of iterations, for ParallelFor tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// The task's log file, for tasks that ran a step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// The result of a run: the `kfbox run --json` contract (extend, never change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    pub run_id: String,
    pub pipeline: String,
    pub state: RunState,
    pub outputs: Map<String, Value>,
    pub tasks: Vec<TaskRecord>,
    pub started_at: String,
    pub finished_at: String,
    /// The run's directory here; empty for a run sent to another endpoint (`page` says
    /// where to see it).
    pub run_dir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run's page in the UI of the endpoint it was sent to (`kfbox run --target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}
