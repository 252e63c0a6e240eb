//! The kfbox command line, as clap types. Parsing only: no behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod namespace;

pub use namespace::{from_file_entry, ObjectsArgs, ObjectsCommand, VolumesArgs, VolumesCommand};

/// Environment variables kfbox reads, in one place.
pub mod env_vars {
    /// Where kfbox keeps runs and Python environments (default: the platform data directory).
    pub const KFBOX_HOME: &str = "KFBOX_HOME";
    /// The Python interpreter used to create managed environments.
    pub const KFBOX_PYTHON: &str = "KFBOX_PYTHON";
    /// Log filter for diagnostics on stderr (tracing `EnvFilter` syntax), e.g. `debug`.
    pub const KFBOX_LOG: &str = "KFBOX_LOG";
    /// Disables colour when set to anything.
    pub const NO_COLOR: &str = "NO_COLOR";
    /// `off` (or `0`, `false`, `no`): never reuse cached executions.
    pub const KFBOX_CACHE: &str = "KFBOX_CACHE";
    /// The configuration file (default: `kfbox.toml` in KFBOX_HOME).
    pub const KFBOX_CONFIG: &str = "KFBOX_CONFIG";
    /// Which executor runs steps: `auto`, `process` or `docker` (as `--executor`).
    pub const KFBOX_EXECUTOR: &str = "KFBOX_EXECUTOR";
    /// The bearer token `kfbox up` requires (as `--token`); kept out of process listings.
    pub const KFBOX_TOKEN: &str = "KFBOX_TOKEN";
    /// Set (to anything but `0`/`false`/`no`/`off`): install Python packages without a network.
    pub const KFBOX_OFFLINE: &str = "KFBOX_OFFLINE";
    /// A wheelhouse to install from offline (as `--wheels`).
    pub const KFBOX_WHEELS: &str = "KFBOX_WHEELS";
    /// The bearer token `kfbox run --target` sends (as `--target-token`).
    pub const KFBOX_TARGET_TOKEN: &str = "KFBOX_TARGET_TOKEN";
    /// `off` (or `0`, `false`, `no`): start every Python step as a fresh interpreter, never
    /// forked from a warm worker.
    pub const KFBOX_WARM: &str = "KFBOX_WARM";
}

#[derive(Debug, Parser)]
#[command(
    name = "kfbox",
    version,
    about = "Kubeflow Pipelines on your laptop: run pipelines compiled by the kfp SDK, correctly and in parallel",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// When to use colour on stderr.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only errors and the requested data.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Where kfbox keeps its data.
    #[arg(long, global = true, env = env_vars::KFBOX_HOME, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The Python interpreter used to create managed environments.
    #[arg(long, global = true, env = env_vars::KFBOX_PYTHON, value_name = "PATH")]
    pub python: Option<String>,
    /// The configuration file [default: kfbox.toml in KFBOX_HOME].
    #[arg(long, global = true, env = env_vars::KFBOX_CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Never ask a package index: Python packages come from kfbox's wheel cache and --wheels.
    #[arg(long, global = true, env = env_vars::KFBOX_OFFLINE, value_parser = clap::builder::FalseyValueParser::new())]
    pub offline: bool,
    /// A wheelhouse written by `kfbox env bundle`, to install from offline.
    #[arg(long, global = true, env = env_vars::KFBOX_WHEELS, value_name = "DIR", requires = "offline")]
    pub wheels: Option<PathBuf>,
}

/// Where container steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Container components in Docker (when a daemon answers), lightweight Python components
    /// as host processes.
    Auto,
    /// Every step as a host process.
    Process,
    /// Every step in a Docker container.
    Docker,
}

/// What a GPU request does on a machine without GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuChoice {
    /// Fail the task at once.
    Require,
    /// Run it without a GPU, with a warning.
    Prefer,
    /// Run it without a GPU, silently.
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a compiled pipeline (PipelineSpec YAML or JSON) to completion.
    Run(RunArgs),
    /// Check a compiled pipeline without running it; `--for cluster` also lists what will
    /// behave differently on a Kubeflow Pipelines cluster.
    Check(CheckArgs),
    /// Show the managed Python environments, or repair them.
    Env(EnvArgs),
    /// List, show or delete recorded runs (`kfbox runs` alone lists them).
    Runs(RunsArgs),
    /// Print a run's task logs.
    Logs(LogsArgs),
    /// Run one Python task of a recorded run again, on the inputs it had, in this terminal (its
    /// outputs in a fresh directory; the run stays as it was).
    Debug(DebugArgs),
    /// List or show recorded artifacts (`kfbox artifacts` alone lists them).
    Artifacts(ArtifactsArgs),
    /// Where an artifact came from (producer and its inputs) and where it went (consumers).
    Lineage(LineageArgs),
    /// Build kfbox's runtime image, or move images to and from machines without a registry.
    Images(ImagesArgs),
    /// A k3s node in Docker, the Kubernetes cluster kfbox's runs can grow into.
    Cluster(ClusterArgs),
    /// Volumes (PersistentVolumeClaims) that steps mount with `kfp.kubernetes.mount_pvc`;
    /// CreatePVC tasks make them, DeletePVC tasks remove them.
    Volumes(VolumesArgs),
    /// Secrets that steps read with `kfp.kubernetes.use_secret_as_env` / `_as_volume`;
    /// values are kept owner-only in KFBOX_HOME and never shown.
    Secrets(ObjectsArgs),
    /// ConfigMaps that steps read with `kfp.kubernetes.use_config_map_as_env` / `_as_volume`.
    #[command(name = "configmaps")]
    ConfigMaps(ObjectsArgs),
    /// Check what this machine offers kfbox: GPUs, Docker, Python, disk, ports.
    Doctor(DoctorArgs),
    /// Start the local Kubeflow Pipelines backend (REST API for `kfp.Client`), the UI and
    /// JupyterLab.
    Up(UpArgs),
    /// Start only JupyterLab, its kernels pointed at the server `kfbox up` runs for this home.
    Lab(LabArgs),
    /// Whether `kfbox up` is serving this home, where, and whether it is healthy.
    Status(StatusArgs),
    /// Stop the server `kfbox up` started (its running steps are canceled and recorded as
    /// CANCELED).
    Down(DownArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Address and port to serve on [default: 127.0.0.1:8888, or `server.listen` in kfbox.toml].
    /// Any address beyond loopback requires a token.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on every request (generated and printed once when
    /// listening beyond loopback without one).
    #[arg(long, env = env_vars::KFBOX_TOKEN, hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Run in the background; the pid and log files live in KFBOX_HOME.
    #[arg(long, short)]
    pub detach: bool,
    /// Do not start JupyterLab.
    #[arg(long)]
    pub no_lab: bool,
    /// JupyterLab's port on 127.0.0.1 [default: 8889, or a free port when taken].
    #[arg(long, value_name = "PORT", conflicts_with = "no_lab")]
    pub lab_port: Option<u16>,
    /// How many steps of all runs may run at once [default: 4 per core, at least 8].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// Where container steps run (as for `kfbox run`).
    #[arg(long, value_enum, env = env_vars::KFBOX_EXECUTOR, value_name = "KIND")]
    pub executor: Option<ExecutorKind>,
    /// Set by `--detach` on the server it starts: it has no terminal to hang up on.
    #[arg(long, hide = true)]
    pub background: bool,
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// The port on 127.0.0.1 [default: 8889, or a free port when taken].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Seconds to wait for running steps to stop before giving up.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build the kfbox runtime image (Python with the kfp SDK) from images/runtime.
    Build(ImagesBuildArgs),
    /// Build the k3s node image for `kfbox cluster up --gpus` (NVIDIA's CUDA base with the
    /// container toolkit) from images/k3s-gpu; needs a connected machine.
    BuildGpuNode(ImagesBuildGpuNodeArgs),
    /// Load images from an archive written by `kfbox images save` or `docker save`.
    Load {
        /// The archive (.tar).
        file: PathBuf,
    },
    /// Write images into one archive, to load on a machine without a registry.
    Save {
        /// The archive to write (.tar).
        file: PathBuf,
        /// Images to include, e.g. `python:3.11 kfbox/runtime:kfp-2.17.0`.
        #[arg(required = true)]
        images: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct ImagesBuildGpuNodeArgs {
    /// NVIDIA's CUDA base image to build on (its driver libraries come from the host).
    #[arg(
        long,
        default_value = "nvcr.io/nvidia/cuda:12.9.1-base-ubuntu24.04",
        value_name = "IMAGE"
    )]
    pub cuda_base: String,
    /// The name of the built image [default: the one `kfbox cluster up --gpus` uses].
    #[arg(long, value_name = "IMAGE")]
    pub tag: Option<String>,
}

/// What the runtime image is built on unless told otherwise.
pub const DEFAULT_RUNTIME_BASE: &str = "python:3.11-slim";

#[derive(Debug, Args)]
pub struct ImagesBuildArgs {
    /// The image to build on: any with python3 and its venv module (Debian's python3-venv).
    #[arg(long, default_value = DEFAULT_RUNTIME_BASE, value_name = "IMAGE")]
    pub base: String,
    /// The name of the built image.
    #[arg(long, default_value = "kfbox/runtime:latest", value_name = "IMAGE")]
    pub tag: String,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    #[command(flatten)]
    pub list: RunsListArgs,
}

impl RunsArgs {
    /// The subcommand, `list` when none was given.
    pub fn into_command(self) -> RunsCommand {
        self.command.unwrap_or(RunsCommand::List(self.list))
    }
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recorded runs, newest first.
    List(RunsListArgs),
    /// One run with its tasks, as `kfbox run` summarised it.
    Get(RunArg),
    /// Delete a run's records and files (artifacts other runs reuse through the cache stay).
    Delete(RunArg),
    /// Run a recorded run's pipeline again, with the same parameter values except those given.
    Rerun(RerunArgs),
}

#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The run id, or enough of its start to be unique.
    pub run: String,
    /// A parameter to change, NAME=VALUE (lists and structs as JSON); the others keep the
    /// run's values. Repeatable.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Print one JSON summary on stdout and nothing else there.
    #[arg(long)]
    pub json: bool,
    /// Run every step even where an earlier execution could be reused.
    #[arg(long)]
    pub no_cache: bool,
    /// Where container steps run [default: `executor.default` in kfbox.toml, else auto].
    #[arg(long, value_enum, env = env_vars::KFBOX_EXECUTOR, value_name = "EXECUTOR")]
    pub executor: Option<ExecutorKind>,
}

#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// Only runs of this pipeline (its `pipelineInfo.name`).
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Only runs in this state.
    #[arg(long, value_enum)]
    pub state: Option<RunStateFilter>,
    /// How many runs to show.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub limit: u32,
    /// Continue a listing from the token an earlier page printed.
    #[arg(long, value_name = "TOKEN")]
    pub page_token: Option<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStateFilter {
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl RunStateFilter {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArg {
    /// The run id, or enough of its start to be unique.
    pub run: String,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run id, or enough of its start to be unique.
    pub run: String,
    /// Only this task: its path (`loop/iteration-0/train`) or its name (every task so named).
    pub task: Option<String>,
    /// Keep printing as the run writes, until it ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Every line of the log: also the SDK executor's lines (`[KFP Executor ...]`, its
    /// ExecutorInput dump) and kfbox's notes (`[kfbox] ...`), which are left out by default.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DebugArgs {
    /// The run id, or enough of its start to be unique.
    pub run: String,
    /// The task: its path (`loop/iteration-0/train`) or its name, when one task has it.
    pub task: String,
    /// Stop in Python's debugger (pdb) where the component raises. `breakpoint()` in the
    /// component stops there with or without it.
    #[arg(long, conflicts_with = "notebook")]
    pub pdb: bool,
    /// Write the task as a notebook into the lab's workspace (`debug/`) instead of running
    /// it: its inputs loaded as Python objects, the component's code, the call that failed.
    #[arg(long)]
    pub notebook: bool,
    /// Run the component's function from this Python file (the pipeline file, fixed) instead
    /// of the code the run had: a fix tried on the recorded inputs.
    #[arg(long, value_name = "FILE.py", conflicts_with = "notebook")]
    pub code: Option<PathBuf>,
    /// Where a container component's step runs again (as for `kfbox run`).
    #[arg(long, value_enum, env = env_vars::KFBOX_EXECUTOR, value_name = "EXECUTOR")]
    pub executor: Option<ExecutorKind>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ArtifactsArgs {
    #[command(subcommand)]
    pub command: Option<ArtifactsCommand>,
    #[command(flatten)]
    pub list: ArtifactsListArgs,
}

impl ArtifactsArgs {
    /// The subcommand, `list` when none was given.
    pub fn into_command(self) -> ArtifactsCommand {
        self.command.unwrap_or(ArtifactsCommand::List(self.list))
    }
}

#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Recorded artifacts, newest first.
    List(ArtifactsListArgs),
    /// One artifact: type, URI, metadata and producer.
    Get(ArtifactArg),
}

#[derive(Debug, Args)]
pub struct ArtifactsListArgs {
    /// Only artifacts of this run (id or unique prefix).
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// How many artifacts to show.
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub limit: u32,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ArtifactArg {
    /// The artifact id (`kfbox artifacts list` shows them).
    pub id: i64,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LineageArgs {
    /// The artifact id (`kfbox artifacts list` shows them).
    pub artifact: i64,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
    /// The cluster's name: its Docker container, volume and kubeconfig context carry it.
    #[arg(long, global = true, default_value = "kfbox", value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start the k3s node in Docker (or start it again, keeping its data), write its
    /// kubeconfig, install Kubeflow Pipelines (server-side apply; again on every `up`) and
    /// wait until each component is ready.
    Up(ClusterUpArgs),
    /// Save every image the cluster needs (pulling what is missing) into DIR, compressed,
    /// with a manifest: for `kfbox cluster up --bundle DIR` on a machine without network.
    Bundle(ClusterBundleArgs),
    /// The node (its container, state and API server address) and each Kubeflow Pipelines
    /// component: ready, or waiting and why.
    Status {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Merge the cluster's context `kfbox` into KUBECONFIG (default ~/.kube/config), keeping
    /// the other contexts, and make it the current one.
    Kubeconfig {
        /// Print the cluster's kubeconfig instead of merging it.
        #[arg(long)]
        print: bool,
    },
    /// Remove the node and, unless --keep-data, its data volume (nothing there is no error).
    Down {
        /// Keep the data volume, for a later `kfbox cluster up`.
        #[arg(long)]
        keep_data: bool,
    },
}

#[derive(Debug, Args)]
pub struct ClusterBundleArgs {
    /// The directory to write (created when missing).
    pub dir: PathBuf,
    /// Also bundle this image, e.g. a pipeline's own (`my/trainer:1.2`).
    /// Repeatable.
    #[arg(long = "add", value_name = "IMAGE")]
    pub add: Vec<String>,
    /// Bundle the images listed in FILE (`node REFERENCE` or `cluster REFERENCE` per line)
    /// instead of kfbox's pinned list (images/cluster-images.txt) and runtime image.
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
    /// Leave out kfbox's runtime image (`kfbox/runtime:kfp-2.17.0`: Python with the kfp SDK,
    /// built when missing, so lightweight components need no pip on the cluster).
    #[arg(long)]
    pub no_runtime: bool,
}

#[derive(Debug, Args)]
pub struct ClusterUpArgs {
    /// A bundle written by `kfbox cluster bundle`, for a machine without network: its node
    /// image is loaded into Docker when missing, and k3s imports the rest at boot.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// GPUs for the node: `all` or a count (needs a node image with the NVIDIA toolkit).
    #[arg(long, value_name = "all|N")]
    pub gpus: Option<String>,
    /// Print what would be created and do nothing: the node's container, then every
    /// Kubernetes object of the Kubeflow Pipelines install as YAML (`kubectl apply -f -`
    /// reads it).
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print one JSON document (`node`, `objects`) instead.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// Start the node only; do not install Kubeflow Pipelines.
    #[arg(long)]
    pub no_kfp: bool,
    /// The node image [default: the pinned rancher/k3s release; with --gpus, the image
    /// `kfbox images build-gpu-node` builds].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The port on 127.0.0.1 for the Kubernetes API server [default: a free one].
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub api_port: u16,
    /// Seconds to wait for the node and then every Kubeflow Pipelines component to be
    /// ready, in all.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The pipeline file written by `kfp.compiler.Compiler().compile(...)`.
    pub pipeline: PathBuf,
    /// Where it is meant to run: `local` checks that kfbox can run it; `cluster` also lists
    /// what a KFP cluster does differently (pip at start, mutable images, `wasm:` steps, local
    /// paths, Kubernetes settings).
    #[arg(long = "for", value_enum, default_value_t = CheckFor::Local, value_name = "WHERE")]
    pub target: CheckFor,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFor {
    Local,
    Cluster,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline: the YAML `kfp.compiler.Compiler().compile(...)` wrote, or the Python file
    /// that defines it (`.py`: compiled first with kfbox's managed kfp SDK).
    pub pipeline: PathBuf,
    /// Of a Python file that defines several pipelines, the one to run (its function's name or
    /// its pipeline name).
    #[arg(long = "pipeline", value_name = "NAME")]
    pub pipeline_name: Option<String>,
    /// Run one component of a Python file alone, as a pipeline of one task (`--param` gives
    /// its inputs).
    #[arg(long, value_name = "NAME", conflicts_with = "pipeline_name")]
    pub component: Option<String>,
    /// A pipeline parameter, NAME=VALUE; lists and structs as JSON. Repeatable.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A pipeline input artifact, NAME=PATH (a local file or directory). Repeatable.
    #[arg(
        long = "artifact",
        short = 'a',
        value_name = "NAME=PATH",
        conflicts_with = "target"
    )]
    pub artifacts: Vec<String>,
    /// Print one JSON summary on stdout and nothing else there.
    #[arg(long)]
    pub json: bool,
    /// How many steps may run at once [default: 4 per CPU core, at least 8].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "target")]
    pub parallelism: Option<u32>,
    /// A display name for the run (`{{$.pipeline_job_name}}`).
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
    /// Run every step even where an earlier execution could be reused (as KFBOX_CACHE=off).
    /// The steps' results still serve later runs.
    #[arg(long)]
    pub no_cache: bool,
    /// Where container steps run [default: `executor.default` in kfbox.toml, else auto].
    /// `wasm:` images always run in the WebAssembly runtime.
    #[arg(long, value_enum, env = env_vars::KFBOX_EXECUTOR, value_name = "EXECUTOR")]
    pub executor: Option<ExecutorKind>,
    /// What steps that ask for GPUs do on a machine without them [default: `gpu.policy` in
    /// kfbox.toml, else prefer].
    #[arg(long, value_enum, value_name = "POLICY", conflicts_with = "target")]
    pub gpu: Option<GpuChoice>,
    /// After the run, watch the pipeline file (and, for a Python file, the local modules it
    /// imports) and run it again whenever one changes (caching reuses the steps that did not
    /// change); Ctrl-C stops.
    #[arg(long, short)]
    pub watch: bool,
    /// Send the run to a Kubeflow Pipelines endpoint instead of running it here:
    /// http(s)://HOST[:PORT][/PATH] (a cluster's, a shared one, or `kfbox up`'s own), or
    /// `cluster` (`cluster:NAME`) for the cluster `kfbox cluster up` made, reached through
    /// its Kubernetes API with its kubeconfig. Task states are followed in the same table,
    /// exit codes are as for a local run, and Ctrl-C terminates the run there. `--executor`
    /// does not apply: the endpoint decides.
    #[arg(long, value_name = "URL|cluster[:NAME]")]
    pub target: Option<String>,
    /// The bearer token for `--target`'s endpoint.
    #[arg(long, env = env_vars::KFBOX_TARGET_TOKEN, hide_env_values = true, value_name = "TOKEN")]
    pub target_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(subcommand)]
    pub command: Option<EnvCommand>,
    /// Remove environments that are incomplete or broken; they are rebuilt on next use.
    #[arg(long)]
    pub repair: bool,
    /// Create the base environment (the kfp SDK) now instead of on first use.
    #[arg(long)]
    pub prepare: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Write a wheelhouse of everything kfbox installs (the kfp SDK, JupyterLab, the codelabs'
    /// libraries), for `kfbox up --offline --wheels DIR` on a machine with the same Python and
    /// no network.
    Bundle {
        /// The directory to write the wheels into (created when missing).
        dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
