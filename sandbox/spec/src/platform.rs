//! The Kubernetes platform settings the compiler writes beside the pipeline (`platform_spec`).
//! kfbox applies those in [`APPLIED`] and reports each other one, so that none is dropped
//! silently.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlatformSpec {
    pub platforms: IndexMap<String, PlatformConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlatformConfig {
    pub deployment_spec: PlatformDeployment,
    pub pipeline_config: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlatformDeployment {
    pub executors: IndexMap<String, IndexMap<String, Value>>,
}

/// The settings kfbox applies to a step as a cluster would.
pub const APPLIED: &[&str] = &[
    "activeDeadlineSeconds",
    "configMapAsEnv",
    "configMapAsVolume",
    "emptyDirMounts",
    "fieldPathAsEnv",
    "genericEphemeralVolume",
    "imagePullPolicy",
    "podMetadata",
    "pvcMount",
    "secretAsEnv",
    "secretAsVolume",
    "securityContext",
];

/// Settings that choose a cluster node for the pod. One machine has one node: they are
/// recorded on the step's execution and said, not applied, except a node selector on a GPU
/// product label, which chooses among this machine's GPUs.
pub const SCHEDULING: &[&str] = &["nodeAffinity", "nodeSelector", "podAffinity", "tolerations"];

/// A step's `securityContext` as compiled: `runAsUser`, `runAsGroup`, `runAsNonRoot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub user: Option<u32>,
    pub group: Option<u32>,
    pub non_root: bool,
}

impl PlatformSpec {
    /// The scheduling settings of one executor ([`SCHEDULING`]), as written.
    pub fn scheduling(&self, executor_label: &str) -> serde_json::Map<String, Value> {
        self.kubernetes_executor(executor_label)
            .map(|settings| {
                settings
                    .iter()
                    .filter(|(key, _)| SCHEDULING.contains(&key.as_str()))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The Kubernetes settings of one executor, as written.
    pub fn kubernetes_executor(&self, executor_label: &str) -> Option<&IndexMap<String, Value>> {
        self.platforms
            .get("kubernetes")
            .and_then(|k| k.deployment_spec.executors.get(executor_label))
    }

    /// Names of the Kubernetes settings attached to one executor, e.g. `secretAsEnv`.
    pub fn kubernetes_settings(&self, executor_label: &str) -> Vec<String> {
        self.kubernetes_executor(executor_label)
            .map(|settings| settings.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `set_timeout`: how long the step's pod may run (`activeDeadlineSeconds`, an int64,
    /// which protobuf's JSON writes as a string). Zero or less means none, as in Kubernetes'
    /// validation it is refused; kfbox ignores it.
    pub fn active_deadline(&self, executor_label: &str) -> Option<std::time::Duration> {
        let value = self
            .kubernetes_executor(executor_label)?
            .get("activeDeadlineSeconds")?;
        let seconds = match value {
            Value::String(text) => text.parse::<i64>().ok()?,
            other => other.as_i64()?,
        };
        (seconds > 0).then(|| std::time::Duration::from_secs(seconds as u64))
    }
}

impl PlatformSpec {
    /// `PipelineConfig(workspace=...)`: a volume every task of the run shares, at
    /// `dsl.WORKSPACE_PATH_PLACEHOLDER`.
    pub fn has_workspace(&self) -> bool {
        self.platforms
            .get("kubernetes")
            .and_then(|k| k.pipeline_config.as_ref())
            .is_some_and(|config| config.get("workspace").is_some())
    }

    /// `use_field_path_as_env`: (variable, field path) pairs, e.g. `("POD", "metadata.name")`.
    pub fn field_path_env(&self, executor_label: &str) -> Vec<(String, String)> {
        let Some(list) = self
            .kubernetes_executor(executor_label)
            .and_then(|settings| settings.get("fieldPathAsEnv"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|entry| {
                Some((
                    entry.get("name")?.as_str()?.to_owned(),
                    entry.get("fieldPath")?.as_str()?.to_owned(),
                ))
            })
            .collect()
    }

    /// `set_image_pull_policy`, as written (`Always`, `IfNotPresent`, `Never`).
    pub fn image_pull_policy(&self, executor_label: &str) -> Option<String> {
        self.kubernetes_executor(executor_label)?
            .get("imagePullPolicy")?
            .as_str()
            .map(str::to_owned)
    }

    /// `set_security_context`, the ids being int64s that protobuf's JSON writes as strings.
    pub fn security_context(&self, executor_label: &str) -> Result<Option<RunAs>, String> {
        let Some(context) = self
            .kubernetes_executor(executor_label)
            .and_then(|settings| settings.get("securityContext"))
        else {
            return Ok(None);
        };
        let id = |key: &str| -> Result<Option<u32>, String> {
            let Some(value) = context.get(key) else {
                return Ok(None);
            };
            let number = match value {
                Value::String(text) => text.parse::<u32>().ok(),
                other => other.as_u64().and_then(|n| u32::try_from(n).ok()),
            };
            number.map(Some).ok_or_else(|| {
                format!("set_security_context: {key} `{value}` is not a user or group id (0 to 4294967295)")
            })
        };
        let non_root = context
            .get("runAsNonRoot")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Some(RunAs {
            user: id("runAsUser")?,
            group: id("runAsGroup")?,
            non_root,
        }))
    }

    /// `add_node_selector`: the labels a node must have (`nodeSelector.labels`).
    pub fn node_selector(&self, executor_label: &str) -> IndexMap<String, String> {
        self.string_map(executor_label, "nodeSelector", "labels")
    }

    /// `add_pod_label` / `add_pod_annotation`: the step's pod metadata, `kind` being
    /// `labels` or `annotations`.
    pub fn pod_metadata(&self, executor_label: &str, kind: &str) -> IndexMap<String, String> {
        self.string_map(executor_label, "podMetadata", kind)
    }

    /// The string values of the map at `setting.field` of one executor's settings.
    fn string_map(
        &self,
        executor_label: &str,
        setting: &str,
        field: &str,
    ) -> IndexMap<String, String> {
        self.kubernetes_executor(executor_label)
            .and_then(|settings| settings.get(setting))
            .and_then(|value| value.get(field))
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_read_as_protojson_writes_it() {
        let spec: PlatformSpec = serde_json::from_value(serde_json::json!({
            "platforms": {"kubernetes": {"deploymentSpec": {"executors": {
                "exec-a": {"activeDeadlineSeconds": "2"},
                "exec-b": {"activeDeadlineSeconds": 5},
                "exec-c": {"activeDeadlineSeconds": "0"}
            }}}}
        }))
        .unwrap();
        assert_eq!(
            spec.active_deadline("exec-a"),
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(
            spec.active_deadline("exec-b"),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(spec.active_deadline("exec-c"), None);
        assert_eq!(spec.active_deadline("exec-missing"), None);
    }
}
