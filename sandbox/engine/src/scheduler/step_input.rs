//! What a container step is given: its ExecutorInput (placeholders resolve against it), its
//! directories in the run, and the host paths it may read and write.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use kfbox_spec::placeholder::{ArtifactField, PlaceholderError, Reference, Resolver};
use kfbox_spec::value::{as_protojson, value_to_text};
use serde_json::{json, Map, Value};

use crate::model::RuntimeArtifact;
use kfbox_paths::{join_name, join_names, UnsafeName};
use kfbox_step::Mount;

use super::context::{Artifacts, Inputs};

/// Where a task keeps its files inside the run directory.
pub(super) struct TaskDirs {
    pub(super) task_dir: PathBuf,
    pub(super) artifacts_dir: PathBuf,
    pub(super) log_path: PathBuf,
}

impl TaskDirs {
    /// The directories of the task at `path` (names from the spec, checked on the way).
    pub(super) fn new(run_dir: &Path, path: &str) -> Result<Self, UnsafeName> {
        let mut log_path = join_names(&run_dir.join("logs"), path)?.into_os_string();
        log_path.push(".log");
        Ok(Self {
            task_dir: join_names(&run_dir.join("tasks"), path)?,
            artifacts_dir: join_names(&run_dir.join("artifacts"), path)?,
            log_path: log_path.into(),
        })
    }

    pub(super) fn output_parameter_file(&self, name: &str) -> Result<PathBuf, UnsafeName> {
        join_name(&self.task_dir.join("outputs"), name)
    }

    pub(super) fn output_artifact(&self, name: &str) -> Result<PathBuf, UnsafeName> {
        join_name(&self.artifacts_dir, name)
    }

    pub(super) fn executor_output_file(&self) -> PathBuf {
        self.task_dir.join("executor_output.json")
    }

    pub(super) fn process_file(&self) -> PathBuf {
        self.task_dir.join("process")
    }
}

/// Artifacts in the protojson shape of ExecutorInput (`{"name": {"artifacts": [...]}}`), which
/// is also what CEL conditions see as `inputs.artifacts`.
pub(super) fn artifacts_json(artifacts: &Artifacts) -> Map<String, Value> {
    artifacts
        .iter()
        .map(|(name, list)| {
            let items: Vec<Value> = list.iter().map(RuntimeArtifact::to_executor_json).collect();
            (name.clone(), json!({ "artifacts": items }))
        })
        .collect()
}

pub(super) struct ExecutorInput<'a> {
    pub(super) inputs: &'a Inputs,
    pub(super) with_defaults: Map<String, Value>,
    /// Inputs the task received a value for (what `IfPresent` tests).
    pub(super) present: HashSet<String>,
    pub(super) outputs: Artifacts,
    pub(super) output_parameters: Vec<(String, PathBuf)>,
    pub(super) output_file: PathBuf,
}

impl ExecutorInput<'_> {
    pub(super) fn to_json(&self) -> Value {
        let parameters: Map<String, Value> = self
            .output_parameters
            .iter()
            .map(|(k, p)| (k.clone(), json!({"outputFile": p.display().to_string()})))
            .collect();
        json!({
            "inputs": {
                "parameterValues": as_protojson(&Value::Object(self.with_defaults.clone())),
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

/// What a step reads and writes: its input artifacts (read-only), its output artifacts
/// directory, and its task directory (output parameter files, executor output, the attempts'
/// work directories). Non-local URIs (`gs://`...) are not paths and are left to the step.
pub(super) fn step_mounts(
    inputs: &Inputs,
    input: &ExecutorInput<'_>,
    dirs: &TaskDirs,
) -> Vec<Mount> {
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
