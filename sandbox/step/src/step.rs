//! One attempt of one container task, as an executor receives it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kfbox_resources::Resources;

/// One attempt of one container task, with every placeholder already resolved.
#[derive(Debug, Clone)]
pub struct Step {
    /// Where the task sits in the run, e.g. `for-loop-2/iteration-0/train`.
    pub task_path: String,
    pub run_id: String,
    pub image: String,
    /// The container's `command` (a container's entrypoint), placeholders expanded.
    pub command: Vec<String>,
    /// The container's `args`, placeholders expanded.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// A scratch directory owned by this attempt.
    pub work_dir: PathBuf,
    /// stdout and stderr of the step are appended here.
    pub log_path: PathBuf,
    /// Where the executor notes what it started (see [`crate::process::note_process`]), so
    /// that if kfbox dies the next kfbox can stop it.
    pub process_file: PathBuf,
    /// The host paths the step reads and writes (input artifacts, output directories, the
    /// work directory), for executors that isolate steps: they expose exactly these, at the
    /// same paths, so artifact URIs mean the same inside and out.
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    /// GPUs this step may see (`CUDA_VISIBLE_DEVICES` indices); `None` leaves the host's
    /// setting alone (a machine without GPUs, or GPUs shared by configuration).
    pub gpus: Option<Vec<u32>>,
    /// What the step's pod spec asks of its container besides the command.
    pub pod: PodSettings,
    /// Volumes the step sees at paths of its choosing (PVCs, Secrets' and ConfigMaps' files,
    /// scratch space), unlike `mounts`, which keep their host paths.
    pub volumes: Vec<VolumeMount>,
    /// Values that must not reach a log (the Secrets the step reads): executors write
    /// [`crate::mask::MASK`] in their place.
    pub masked: Vec<String>,
}

/// A volume seen by the step at `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    pub target: PathBuf,
    pub source: VolumeSource,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A host directory.
    Dir(PathBuf),
    /// Memory-backed scratch space (`medium: Memory`): a tmpfs of at most `size_limit` bytes
    /// where the executor makes one, else the directory `dir`.
    Memory {
        dir: PathBuf,
        size_limit: Option<u64>,
    },
}

impl VolumeSource {
    /// The host directory that holds the volume's files where no tmpfs is made.
    pub fn dir(&self) -> &std::path::Path {
        match self {
            Self::Dir(dir) | Self::Memory { dir, .. } => dir,
        }
    }
}

/// The `kfp.kubernetes` settings that concern the step's container, for executors that run
/// containers (a host process has no image to pull and no labels).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodSettings {
    /// `set_image_pull_policy`; none is Kubernetes' default for a pinned tag (IfNotPresent).
    pub pull_policy: Option<PullPolicy>,
    /// `add_pod_label` and `add_pod_annotation`: the container's labels here.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `set_security_context`; none runs the container as the user who runs kfbox.
    pub security: Option<SecurityContext>,
}

/// Who the container runs as (a container's `securityContext`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityContext {
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    /// The container must not run as root: it is refused before it starts if it would.
    pub run_as_non_root: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// Kubernetes' spelling, as `set_image_pull_policy` takes it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Always" => Some(Self::Always),
            "IfNotPresent" => Some(Self::IfNotPresent),
            "Never" => Some(Self::Never),
            _ => None,
        }
    }
}

impl Step {
    /// Where the step's runtime or its executor describes a failure (see [`crate::failure`]).
    pub fn failure_file(&self) -> PathBuf {
        self.work_dir.join("kfbox-failure.json")
    }

    /// `command` followed by `args`: what a process runs.
    pub fn argv(&self) -> Vec<String> {
        self.command.iter().chain(&self.args).cloned().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    pub path: PathBuf,
    pub writable: bool,
}

/// The line an executor adds to a step's log when it was killed for its memory (a cluster's
/// `OOMKilled`), the same from every executor.
pub fn out_of_memory_note(limit_bytes: u64) -> String {
    format!("kfbox: killed for going over its memory limit of {limit_bytes} bytes (OOMKilled)")
}

/// How a step ended when it could be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepExit {
    Exited(i32),
    Signaled(i32),
    /// Killed for going over its memory limit (bytes): a cluster's `OOMKilled`.
    OutOfMemory(u64),
    Canceled,
}

impl StepExit {
    /// What a task's error says when the step did not succeed: the failure it described (see
    /// [`crate::failure`]) with its exit code, or how it was stopped.
    pub fn failure(self, step: &Step) -> Option<String> {
        match self {
            Self::Exited(0) => None,
            Self::Exited(code) => Some(
                crate::failure::Failure::read(&step.failure_file())
                    .unwrap_or_default()
                    .describe(code),
            ),
            Self::Signaled(signal) => Some(format!("the step was killed by signal {signal}")),
            Self::OutOfMemory(limit) => Some(format!(
                "OOMKilled: the step went over its memory limit of {} MiB and was killed",
                (limit as f64 / 1_048_576.0 * 10.0).round() / 10.0
            )),
            Self::Canceled => Some("the step was canceled".to_owned()),
        }
    }
}
