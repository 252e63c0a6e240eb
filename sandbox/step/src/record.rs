//! What a task ran, kept beside its files (`step.json` in its task directory) so that
//! `kfbox debug` can run it again on the same inputs: the image and the command with every
//! placeholder resolved (the ExecutorInput among its arguments), and the environment, less the
//! values of Secrets, which are never written down.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::step::{Mount, Step};

/// The file name, in the task's directory.
pub const STEP_RECORD: &str = "step.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    pub task_path: String,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Variables left out because their values are a Secret's.
    pub withheld_env: Vec<String>,
    /// The task's own directories in the run, which its arguments name for its outputs: a
    /// debug run gives it fresh ones in their place.
    pub task_dir: PathBuf,
    pub artifacts_dir: PathBuf,
    /// What a container saw of the host: input artifacts' directories and the task's own.
    #[serde(default)]
    pub mounts: Vec<Mount>,
}

impl StepRecord {
    pub fn of(step: &Step, task_dir: &Path, artifacts_dir: &Path) -> Self {
        let (withheld, env): (Vec<_>, Vec<_>) = step.env.iter().cloned().partition(|(_, value)| {
            step.masked
                .iter()
                .any(|m| !m.is_empty() && value.contains(m))
        });
        Self {
            task_path: step.task_path.clone(),
            image: step.image.clone(),
            command: step.command.clone(),
            args: step.args.clone(),
            env,
            withheld_env: withheld.into_iter().map(|(name, _)| name).collect(),
            task_dir: task_dir.to_owned(),
            artifacts_dir: artifacts_dir.to_owned(),
            mounts: step.mounts.clone(),
        }
    }

    pub fn write(&self) -> std::io::Result<()> {
        fs_err::create_dir_all(&self.task_dir)?;
        let text = serde_json::to_vec_pretty(self).expect("strings serialize");
        fs_err::write(self.task_dir.join(STEP_RECORD), text)
    }

    pub fn read(task_dir: &Path) -> std::io::Result<Self> {
        let path = task_dir.join(STEP_RECORD);
        let text = fs_err::read_to_string(&path)?;
        serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a step record: {e}", path.display()),
            )
        })
    }

    /// The command line as it ran.
    pub fn argv(&self) -> Vec<String> {
        self.command.iter().chain(&self.args).cloned().collect()
    }

    /// The command line with the task's directories replaced by `task_dir` and `artifacts_dir`
    /// (where a new execution writes its outputs).
    pub fn argv_in(&self, task_dir: &Path, artifacts_dir: &Path) -> Vec<String> {
        let moved = self.mover(task_dir, artifacts_dir);
        self.command
            .iter()
            .chain(&self.args)
            .map(|a| moved(a))
            .collect()
    }

    /// The mounts with the task's directories replaced as in [`Self::argv_in`].
    pub fn mounts_in(&self, task_dir: &Path, artifacts_dir: &Path) -> Vec<Mount> {
        let moved = self.mover(task_dir, artifacts_dir);
        self.mounts
            .iter()
            .map(|m| Mount {
                path: PathBuf::from(moved(&m.path.display().to_string())),
                writable: m.writable,
            })
            .collect()
    }

    fn mover(&self, task_dir: &Path, artifacts_dir: &Path) -> impl Fn(&str) -> String {
        let (old_task, new_task) = (
            self.task_dir.display().to_string(),
            task_dir.display().to_string(),
        );
        let (old_artifacts, new_artifacts) = (
            self.artifacts_dir.display().to_string(),
            artifacts_dir.display().to_string(),
        );
        move |text: &str| {
            text.replace(&old_task, &new_task)
                .replace(&old_artifacts, &new_artifacts)
        }
    }
}
