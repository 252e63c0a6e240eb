//! Custom property names: the backend's, then kfbox's own (prefixed `kfbox.`).

pub const DISPLAY_NAME: &str = "display_name";
pub const TASK_NAME: &str = "task_name";
pub const IMAGE: &str = "image";
pub const NAMESPACE: &str = "namespace";
pub const RESOURCE_NAME: &str = "resource_name";
pub const PIPELINE_ROOT: &str = "pipeline_root";
pub const STORE_SESSION_INFO: &str = "store_session_info";
pub const CACHE_FINGERPRINT: &str = "cache_fingerprint";
pub const CACHED_EXECUTION_ID: &str = "cached_execution_id";
pub const INPUTS: &str = "inputs";
pub const OUTPUTS: &str = "outputs";
pub const PARENT_DAG_ID: &str = "parent_dag_id";
pub const ITERATION_INDEX: &str = "iteration_index";
pub const ITERATION_COUNT: &str = "iteration_count";
/// The task's path in the run (`outer/iteration-0/inner`).
pub const PATH: &str = "kfbox.path";
/// kfbox's task kind: container, importer, dag, loop, iteration, root.
pub const KIND: &str = "kfbox.kind";
/// kfbox's task state, finer than MLMD's (SKIPPED and CANCELED are both MLMD CANCELED).
pub const STATE: &str = "kfbox.state";
pub const ERROR: &str = "kfbox.error";
pub const REASON: &str = "kfbox.reason";
pub const ATTEMPTS: &str = "kfbox.attempts";
pub const LOG: &str = "kfbox.log";
/// `add_pod_label` / `add_pod_annotation` of a step, as JSON objects.
pub const POD_LABELS: &str = "kfbox.pod_labels";
pub const POD_ANNOTATIONS: &str = "kfbox.pod_annotations";
/// `add_node_selector`, `add_toleration`, `add_node_affinity`: how the pod would choose a
/// cluster node, as a JSON object of the settings as compiled.
pub const SCHEDULING: &str = "kfbox.scheduling";
/// Where the executor noted the step's process group (see the engine's `Step`).
pub const PROCESS_FILE: &str = "kfbox.process_file";
pub const STARTED_AT: &str = "kfbox.started_at";
pub const FINISHED_AT: &str = "kfbox.finished_at";
/// Output artifacts of DAG tasks (artifact ids by output name); steps use OUTPUT events.
pub const OUTPUT_ARTIFACTS: &str = "kfbox.output_artifacts";
/// A debug execution: the run's execution it re-executed, where it wrote its outputs, and the
/// file its code came from when not the run's (`kfbox debug --code`).
pub const DEBUG_OF: &str = "kfbox.debug_of";
pub const DEBUG_OUTPUTS_DIR: &str = "kfbox.debug_outputs_dir";
pub const DEBUG_CODE: &str = "kfbox.debug_code";
pub const RUN_DISPLAY_NAME: &str = "kfbox.display_name";
pub const RUN_STATE: &str = "kfbox.state";
pub const RUN_CREATED_AT: &str = "kfbox.created_at";
pub const RUN_FINISHED_AT: &str = "kfbox.finished_at";
pub const RUN_DIR: &str = "kfbox.run_dir";
pub const RUN_PID: &str = "kfbox.pid";
pub const RUN_PID_STARTED: &str = "kfbox.pid_started";
