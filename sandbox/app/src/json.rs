//! Every `--json` output, as a type: what scripts may rely on. Fields are added, never
//! renamed or removed; the end-to-end tests parse each command's output into its type, which
//! refuses unknown fields, so an output and its type cannot drift apart.
//!
//! `kfbox run --json` and `kfbox runs get --json` print the engine's [`RunSummary`]; `kfbox env
//! --json` a list of [`EnvInfo`].

pub use kfbox_cluster::node::NodeState;
pub use kfbox_cluster::portability::{Finding, FindingKind};
pub use kfbox_engine::model::RunSummary;
pub use kfbox_python::EnvInfo;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `kfbox check --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    /// The file as given.
    pub file: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// `local` or `cluster`.
    pub target: String,
    pub tasks: usize,
    pub findings: Vec<Finding>,
}

/// `kfbox cluster status --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterStatus {
    /// The cluster's name.
    pub cluster: String,
    /// The node container; none when there is no cluster.
    pub node: Option<NodeState>,
    /// Where `kfbox cluster up` wrote the kubeconfig, when it exists.
    pub kubeconfig: Option<String>,
    /// Each Kubeflow Pipelines component, when the cluster's API answered.
    pub kfp: Option<Vec<KfpComponent>>,
    /// Why the components could not be read (no node, node stopped, API not answering).
    pub kfp_error: Option<String>,
}

/// One Kubeflow Pipelines component in `kfbox cluster status --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KfpComponent {
    /// What it is, e.g. "API server".
    pub title: String,
    /// What runs it: a Deployment in namespace `kubeflow`, or for GPUs NVIDIA's device plugin
    /// DaemonSet in `kube-system`.
    pub workload: String,
    pub ready: bool,
    /// Why it is not ready yet.
    pub reason: Option<String>,
}

/// `kfbox runs list --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunList {
    pub runs: Vec<RunListing>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunListing {
    pub run_id: String,
    pub display_name: String,
    pub pipeline: String,
    pub state: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub run_dir: String,
}

/// `kfbox runs delete --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletedRunReport {
    pub run_id: String,
    pub deleted: bool,
    pub artifacts_removed: usize,
    /// Artifacts cached executions of other runs still use: left in place.
    pub artifacts_kept: Vec<String>,
}

/// `kfbox artifacts list --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactList {
    pub artifacts: Vec<ArtifactListing>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactListing {
    pub id: i64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    pub uri: String,
    pub run_id: Option<String>,
    pub created_at: String,
    pub metadata: Map<String, Value>,
}

impl ArtifactListing {
    /// The artifact with the execution that produced it.
    pub fn with_producer(self, produced_by: Option<ExecutionListing>) -> ArtifactDetail {
        let Self {
            id,
            type_name,
            name,
            uri,
            run_id,
            created_at,
            metadata,
        } = self;
        ArtifactDetail {
            id,
            type_name,
            name,
            uri,
            run_id,
            created_at,
            metadata,
            produced_by,
        }
    }

    /// The artifact as an input, under the name it was given as.
    pub fn used_as(self, used_as: String) -> InputArtifact {
        let Self {
            id,
            type_name,
            name,
            uri,
            run_id,
            created_at,
            metadata,
        } = self;
        InputArtifact {
            id,
            type_name,
            name,
            uri,
            run_id,
            created_at,
            metadata,
            used_as,
        }
    }
}

/// `kfbox artifacts get --json`: the artifact and the execution that produced it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactDetail {
    pub id: i64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    pub uri: String,
    pub run_id: Option<String>,
    pub created_at: String,
    pub metadata: Map<String, Value>,
    pub produced_by: Option<ExecutionListing>,
}

/// An execution seen from an artifact.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionListing {
    pub execution_id: i64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub state: String,
    pub run_id: Option<String>,
    pub task: String,
    /// The input or output name under which it used or made the artifact.
    #[serde(rename = "as")]
    pub used_as: String,
    pub cached_execution_id: Option<String>,
}

/// An input artifact of the producer, with the name it was given as.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputArtifact {
    pub id: i64,
    #[serde(rename = "type")]
    pub type_name: String,
    pub name: String,
    pub uri: String,
    pub run_id: Option<String>,
    pub created_at: String,
    pub metadata: Map<String, Value>,
    #[serde(rename = "as")]
    pub used_as: String,
}

/// `kfbox lineage --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageReport {
    pub artifact: ArtifactListing,
    pub produced_by: Option<ExecutionListing>,
    pub inputs: Vec<InputArtifact>,
    /// Cache hits that reused the artifact.
    pub reused_by: Vec<ExecutionListing>,
    pub consumed_by: Vec<ExecutionListing>,
}

/// `kfbox status --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StatusReport {
    Serving(Box<Serving>),
    Stopped(Stopped),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stopped {
    /// Always false.
    pub running: bool,
    pub home: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serving {
    /// Always true.
    pub running: bool,
    pub healthy: bool,
    pub problem: Option<String>,
    pub url: String,
    pub pid: u32,
    pub started_at: String,
    pub log: Option<String>,
    pub lab_url: Option<String>,
    pub lab: kfbox_server::LabStatus,
    pub runs_running: usize,
    pub home: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorReport {
    pub kfbox: String,
    pub home: String,
    pub free_disk_bytes: Option<u64>,
    pub python: Check,
    pub docker: DockerReport,
    pub gpus: GpuReport,
    pub ports: Vec<PortReport>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerReport {
    pub ok: bool,
    pub detail: String,
    pub runtimes: Vec<String>,
    pub nvidia_runtime: bool,
    pub cdi_nvidia: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuReport {
    pub count: usize,
    pub cuda_version: Option<String>,
    pub devices: Vec<GpuDevice>,
    pub problem: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDevice {
    pub vendor: String,
    pub index: u32,
    pub name: String,
    pub memory_mib: u64,
    pub driver_version: String,
    pub uuid: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortReport {
    pub port: u16,
    pub free: bool,
    /// Taken by this home's own kfbox server or lab (not a conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kfbox: Option<String>,
}

/// `kfbox volumes list --json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeList {
    pub volumes: Vec<VolumeInfo>,
}

/// One volume (a PersistentVolumeClaim's stand-in).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeInfo {
    pub name: String,
    /// The size the claim asked for (recorded, not enforced).
    pub size: Option<String>,
    pub access_modes: Vec<String>,
    pub storage_class: Option<String>,
    /// RFC 3339; empty for a directory made by hand.
    pub created_at: String,
    /// The run whose CreatePVC task made it.
    pub created_by_run: Option<String>,
    /// Bytes of the files in it.
    pub used_bytes: u64,
    /// The directory steps see at their mount path.
    pub path: String,
}

/// `kfbox secrets list --json` and `kfbox configmaps list --json`: names and keys, never
/// values.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectList {
    pub objects: Vec<ObjectKeys>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectKeys {
    pub name: String,
    pub keys: Vec<String>,
}
