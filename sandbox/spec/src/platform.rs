//! The Kubernetes platform settings the compiler writes beside the pipeline (`platform_spec`).
//! kfbox runs none of them locally; it reports each one so that none is dropped silently.

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

impl PlatformSpec {
    /// Names of the Kubernetes settings attached to one executor, e.g. `secretAsEnv`.
    pub fn kubernetes_settings(&self, executor_label: &str) -> Vec<String> {
        self.platforms
            .get("kubernetes")
            .and_then(|k| k.deployment_spec.executors.get(executor_label))
            .map(|settings| settings.keys().cloned().collect())
            .unwrap_or_default()
    }
}
