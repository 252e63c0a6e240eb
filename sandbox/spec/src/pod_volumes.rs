//! The `kfp.kubernetes` settings that give a step's pod volumes and environment from the
//! namespace: PVC mounts, Secrets and ConfigMaps as variables or files, empty dirs and
//! ephemeral volumes. Typed here from `kubernetes_executor_config.proto`; the scheduler
//! resolves the names (constants, pipeline inputs or upstream outputs) when the task starts.

use serde::Deserialize;
use serde_json::Value;

use crate::ir::{InputParameter, RuntimeValue, TaskOutputParameter};
use crate::platform::PlatformSpec;

/// Where a setting's name comes from, resolved as a task input is.
pub type NameSource = InputParameter;

/// `mount_pvc`: the claim (by name) mounted at `mount_path`.
#[derive(Debug, Clone)]
pub struct PvcMount {
    pub name: NameSource,
    pub mount_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectSource {
    Secret,
    ConfigMap,
}

impl ObjectSource {
    /// As the SDK's helpers name it, for messages.
    pub fn helper(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::ConfigMap => "config_map",
        }
    }
}

/// `use_secret_as_env` / `use_config_map_as_env` (`Env`: key, variable pairs) and
/// `use_..._as_volume` (`Volume`: one file per key at the path).
#[derive(Debug, Clone)]
pub enum ObjectTarget {
    Env(Vec<(String, String)>),
    Volume { mount_path: String },
}

#[derive(Debug, Clone)]
pub struct ObjectUse {
    pub source: ObjectSource,
    pub name: NameSource,
    pub target: ObjectTarget,
    /// A missing object (or key) is skipped instead of keeping the pod from starting.
    pub optional: bool,
}

/// `empty_dir_mount` and `add_ephemeral_volume`: scratch space that lives as long as the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScratchMount {
    pub mount_path: String,
    /// `medium: Memory` (a tmpfs).
    pub memory: bool,
    /// A Kubernetes quantity, e.g. `1Gi`.
    pub size_limit: Option<String>,
}

/// Everything the executor's pod takes from the namespace.
#[derive(Debug, Clone, Default)]
pub struct PodVolumes {
    pub pvcs: Vec<PvcMount>,
    pub objects: Vec<ObjectUse>,
    pub scratch: Vec<ScratchMount>,
}

impl PodVolumes {
    pub fn is_empty(&self) -> bool {
        self.pvcs.is_empty() && self.objects.is_empty() && self.scratch.is_empty()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPvcMount {
    mount_path: String,
    pvc_name_parameter: Option<InputParameter>,
    // Older compilers: the name's source at the top level.
    task_output_parameter: Option<TaskOutputParameter>,
    constant: Option<String>,
    component_input_parameter: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawObjectUse {
    #[serde(alias = "configMapName")]
    secret_name: Option<String>,
    #[serde(alias = "configMapNameParameter")]
    secret_name_parameter: Option<InputParameter>,
    #[serde(default)]
    key_to_env: Vec<RawKeyToEnv>,
    mount_path: Option<String>,
    #[serde(default)]
    optional: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKeyToEnv {
    #[serde(alias = "configMapKey")]
    secret_key: String,
    env_var: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawScratch {
    mount_path: String,
    #[serde(default)]
    medium: String,
    size_limit: Option<String>,
    // add_ephemeral_volume's claim size: the most it can hold.
    size: Option<String>,
}

fn constant(text: String) -> NameSource {
    NameSource {
        runtime_value: Some(RuntimeValue {
            constant: Some(Value::String(text)),
            runtime_parameter: None,
        }),
        ..NameSource::default()
    }
}

impl PlatformSpec {
    /// The volumes and namespace objects of the executor `label`; a setting that does not
    /// read as the proto defines it is an error naming it.
    pub fn pod_volumes(&self, label: &str) -> Result<PodVolumes, String> {
        let mut volumes = PodVolumes::default();
        let settings = self.kubernetes_executor(label);
        let Some(settings) = settings else {
            return Ok(volumes);
        };
        fn list<T: for<'de> Deserialize<'de>>(
            settings: &indexmap::IndexMap<String, Value>,
            key: &str,
        ) -> Result<Vec<T>, String> {
            match settings.get(key) {
                None => Ok(Vec::new()),
                Some(value) => serde_json::from_value(value.clone())
                    .map_err(|e| format!("platform setting `{key}`: {e}")),
            }
        }
        for raw in list::<RawPvcMount>(settings, "pvcMount")? {
            let name = raw
                .pvc_name_parameter
                .or(raw.task_output_parameter.map(|output| NameSource {
                    task_output_parameter: Some(output),
                    ..NameSource::default()
                }))
                .or(raw.component_input_parameter.map(|input| NameSource {
                    component_input_parameter: Some(input),
                    ..NameSource::default()
                }))
                .or(raw.constant.map(constant))
                .ok_or_else(|| {
                    format!(
                        "mount_pvc at {}: the setting names no claim",
                        raw.mount_path
                    )
                })?;
            volumes.pvcs.push(PvcMount {
                name,
                mount_path: raw.mount_path,
            });
        }
        for (source, env_key, volume_key) in [
            (ObjectSource::Secret, "secretAsEnv", "secretAsVolume"),
            (
                ObjectSource::ConfigMap,
                "configMapAsEnv",
                "configMapAsVolume",
            ),
        ] {
            for (key, as_volume) in [(env_key, false), (volume_key, true)] {
                for raw in list::<RawObjectUse>(settings, key)? {
                    let name = raw
                        .secret_name_parameter
                        .or(raw.secret_name.map(constant))
                        .ok_or_else(|| format!("platform setting `{key}`: no name given"))?;
                    let target = if as_volume {
                        ObjectTarget::Volume {
                            mount_path: raw
                                .mount_path
                                .ok_or_else(|| format!("platform setting `{key}`: no mountPath"))?,
                        }
                    } else {
                        ObjectTarget::Env(
                            raw.key_to_env
                                .into_iter()
                                .map(|pair| (pair.secret_key, pair.env_var))
                                .collect(),
                        )
                    };
                    volumes.objects.push(ObjectUse {
                        source,
                        name,
                        target,
                        optional: raw.optional,
                    });
                }
            }
        }
        for key in ["emptyDirMounts", "genericEphemeralVolume"] {
            for raw in list::<RawScratch>(settings, key)? {
                volumes.scratch.push(ScratchMount {
                    mount_path: raw.mount_path,
                    memory: raw.medium == "Memory",
                    size_limit: raw.size_limit.or(raw.size),
                });
            }
        }
        Ok(volumes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(settings: Value) -> PlatformSpec {
        serde_json::from_value(serde_json::json!({
            "platforms": {"kubernetes": {"deploymentSpec": {"executors": {"exec-a": settings}}}}
        }))
        .unwrap()
    }

    #[test]
    fn names_come_from_the_parameter_form_or_the_older_top_level_form() {
        let volumes = spec(serde_json::json!({
            "pvcMount": [
                {"mountPath": "/data", "taskOutputParameter": {"producerTask": "createpvc", "outputParameterKey": "name"}},
                {"mountPath": "/more", "constant": "fixed",
                 "pvcNameParameter": {"componentInputParameter": "pvc_name"}}
            ],
            "secretAsEnv": [{"secretName": "s", "keyToEnv": [{"secretKey": "password", "envVar": "PW"}]}],
            "configMapAsVolume": [{"configMapNameParameter": {"runtimeValue": {"constant": "cm"}}, "mountPath": "/cm", "optional": true}],
            "emptyDirMounts": [{"volumeName": "scratch", "mountPath": "/scratch", "medium": "Memory", "sizeLimit": "1Gi"}],
            "genericEphemeralVolume": [{"volumeName": "eph", "mountPath": "/eph", "size": "5Gi"}]
        }))
        .pod_volumes("exec-a")
        .unwrap();
        assert_eq!(
            volumes.pvcs[0]
                .name
                .task_output_parameter
                .as_ref()
                .unwrap()
                .producer_task,
            "createpvc"
        );
        assert_eq!(
            volumes.pvcs[1].name.component_input_parameter.as_deref(),
            Some("pvc_name")
        );
        assert_eq!(volumes.objects.len(), 2);
        assert!(
            matches!(&volumes.objects[0].target, ObjectTarget::Env(pairs) if pairs == &[("password".to_owned(), "PW".to_owned())])
        );
        assert_eq!(volumes.objects[1].source, ObjectSource::ConfigMap);
        assert!(volumes.objects[1].optional);
        assert_eq!(
            volumes.scratch,
            vec![
                ScratchMount {
                    mount_path: "/scratch".into(),
                    memory: true,
                    size_limit: Some("1Gi".into())
                },
                ScratchMount {
                    mount_path: "/eph".into(),
                    memory: false,
                    size_limit: Some("5Gi".into())
                },
            ]
        );
    }

    #[test]
    fn a_setting_that_does_not_read_is_named() {
        let error = spec(serde_json::json!({"pvcMount": [{"name": "x"}]}))
            .pod_volumes("exec-a")
            .unwrap_err();
        assert!(error.contains("pvcMount"), "{error}");
    }
}
