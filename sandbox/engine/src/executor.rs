//! The seam between the engine and whatever runs a step (host process, Docker, WASI).

use std::path::PathBuf;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::events::EventSink;

/// One attempt of one container task, with every placeholder already resolved.
#[derive(Debug, Clone)]
pub struct Step {
    /// Where the task sits in the run, e.g. `for-loop-2/iteration-0/train`.
    pub task_path: String,
    pub image: String,
    /// `command` followed by `args`, placeholders expanded.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// A scratch directory owned by this attempt.
    pub work_dir: PathBuf,
    /// stdout and stderr of the step are appended here.
    pub log_path: PathBuf,
    /// Where the executor notes what it started (`<pid> <start time>` of the process group
    /// leader), so that if kfbox dies the next kfbox can stop it.
    pub process_file: PathBuf,
}

/// How a step ended when it could be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepExit {
    Exited(i32),
    Signaled(i32),
    Canceled,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("image `{image}` needs a container runtime: `{program}` is not a program on this host\nhint: kfbox runs container components on the host only when their command exists on PATH; a Docker executor is planned")]
    NeedsContainerRuntime { image: String, program: String },
    #[error("could not start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Environment(String),
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[async_trait]
pub trait Executor: Send + Sync {
    /// Run one step to its end, or until `cancel` fires (then stop it and return `Canceled`).
    async fn run(
        &self,
        step: &Step,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError>;
}
