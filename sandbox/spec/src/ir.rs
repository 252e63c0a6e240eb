//! Serde model of the PipelineSpec IR as the `kfp` compiler writes it (protojson field names).
//!
//! Only the fields kfbox acts on are modelled; everything else is ignored on purpose so that
//! newer compilers keep working.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PipelineSpec {
    pub pipeline_info: PipelineInfo,
    pub components: IndexMap<String, ComponentSpec>,
    pub deployment_spec: DeploymentSpec,
    pub root: ComponentSpec,
    pub schema_version: String,
    pub sdk_version: String,
    pub default_pipeline_root: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PipelineInfo {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentSpec {
    pub executors: IndexMap<String, ExecutorSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ComponentSpec {
    pub input_definitions: IoDefinitions,
    pub output_definitions: IoDefinitions,
    pub executor_label: Option<String>,
    pub dag: Option<DagSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IoDefinitions {
    pub parameters: IndexMap<String, ParameterSpec>,
    pub artifacts: IndexMap<String, ArtifactSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParameterSpec {
    pub parameter_type: ParameterType,
    pub default_value: Option<Value>,
    pub is_optional: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParameterType {
    #[default]
    ParameterTypeEnumUnspecified,
    NumberDouble,
    NumberInteger,
    String,
    Boolean,
    List,
    Struct,
    TaskFinalStatus,
    TaskConfig,
}

impl ParameterType {
    pub fn name(self) -> &'static str {
        match self {
            Self::ParameterTypeEnumUnspecified => "PARAMETER_TYPE_ENUM_UNSPECIFIED",
            Self::NumberDouble => "NUMBER_DOUBLE",
            Self::NumberInteger => "NUMBER_INTEGER",
            Self::String => "STRING",
            Self::Boolean => "BOOLEAN",
            Self::List => "LIST",
            Self::Struct => "STRUCT",
            Self::TaskFinalStatus => "TASK_FINAL_STATUS",
            Self::TaskConfig => "TASK_CONFIG",
        }
    }

    /// The Python type a component declares for it, as users write it.
    pub fn python_name(self) -> &'static str {
        match self {
            Self::ParameterTypeEnumUnspecified => "a value",
            Self::NumberDouble => "float",
            Self::NumberInteger => "int",
            Self::String => "str",
            Self::Boolean => "bool",
            Self::List => "list",
            Self::Struct => "dict",
            Self::TaskFinalStatus => "dsl.PipelineTaskFinalStatus",
            Self::TaskConfig => "dsl.TaskConfig",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArtifactSpec {
    pub artifact_type: ArtifactType,
    pub is_artifact_list: bool,
    pub is_optional: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArtifactType {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub schema_title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub schema_version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DagSpec {
    pub tasks: IndexMap<String, TaskSpec>,
    pub outputs: DagOutputs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DagOutputs {
    pub parameters: IndexMap<String, DagOutputParameter>,
    pub artifacts: IndexMap<String, DagOutputArtifact>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DagOutputParameter {
    pub value_from_parameter: Option<ParameterSelector>,
    pub value_from_oneof: Option<OneofSelectors>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OneofSelectors {
    pub parameter_selectors: Vec<ParameterSelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParameterSelector {
    pub producer_subtask: String,
    pub output_parameter_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DagOutputArtifact {
    pub artifact_selectors: Vec<ArtifactSelector>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArtifactSelector {
    pub producer_subtask: String,
    pub output_artifact_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskSpec {
    pub task_info: TaskInfo,
    pub inputs: TaskInputs,
    pub dependent_tasks: Vec<String>,
    pub caching_options: CachingOptions,
    pub component_ref: ComponentRef,
    pub trigger_policy: TriggerPolicy,
    pub parameter_iterator: Option<ParameterIterator>,
    pub artifact_iterator: Option<ArtifactIterator>,
    pub iterator_policy: IteratorPolicy,
    pub retry_policy: Option<RetryPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskInfo {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskInputs {
    pub parameters: IndexMap<String, InputParameter>,
    pub artifacts: IndexMap<String, InputArtifact>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InputParameter {
    pub component_input_parameter: Option<String>,
    pub task_output_parameter: Option<TaskOutputParameter>,
    pub runtime_value: Option<RuntimeValue>,
    pub task_final_status: Option<TaskFinalStatusRef>,
    pub parameter_expression_selector: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskOutputParameter {
    pub producer_task: String,
    pub output_parameter_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuntimeValue {
    pub constant: Option<Value>,
    pub runtime_parameter: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskFinalStatusRef {
    pub producer_task: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InputArtifact {
    pub component_input_artifact: Option<String>,
    pub task_output_artifact: Option<TaskOutputArtifact>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskOutputArtifact {
    pub producer_task: String,
    pub output_artifact_key: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CachingOptions {
    pub enable_cache: bool,
    pub cache_key: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ComponentRef {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TriggerPolicy {
    pub condition: Option<String>,
    pub strategy: Option<String>,
}

impl TriggerPolicy {
    /// Exit handlers and `ignore_upstream_failure()` tasks run once their upstream tasks end,
    /// whatever the outcome.
    pub fn runs_after_any_outcome(&self) -> bool {
        self.strategy.as_deref() == Some("ALL_UPSTREAM_TASKS_COMPLETED")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParameterIterator {
    pub items: ParameterItems,
    pub item_input: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ParameterItems {
    pub raw: Option<String>,
    pub input_parameter: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArtifactIterator {
    pub items: ArtifactItems,
    pub item_input: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArtifactItems {
    pub input_artifact: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IteratorPolicy {
    pub parallelism_limit: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetryPolicy {
    pub max_retry_count: u32,
    pub backoff_duration: Option<String>,
    pub backoff_factor: Option<f64>,
    pub backoff_max_duration: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutorSpec {
    pub container: Option<ContainerSpec>,
    pub importer: Option<ImporterSpec>,
    pub resolver: Option<Value>,
    pub custom_job: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerSpec {
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub resources: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ImporterSpec {
    pub artifact_uri: RuntimeValue,
    pub type_schema: ArtifactType,
    pub metadata: Option<Value>,
    pub reimport: bool,
}

impl PipelineSpec {
    pub fn component(&self, name: &str) -> Option<&ComponentSpec> {
        self.components.get(name)
    }
}
