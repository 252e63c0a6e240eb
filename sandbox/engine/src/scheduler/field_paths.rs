//! `kfp.kubernetes.use_field_path_as_env`: the downward API's fields a step can read about
//! its pod, given the values they have on one machine. Any other field fails the task before
//! it starts, as a pod whose field reference Kubernetes refuses is never created.

use kfbox_spec::platform::PlatformSpec;

/// The namespace a step is told it runs in: the one KFP's single-user install uses.
pub(super) const POD_NAMESPACE: &str = "kubeflow";

/// The variables for the executor `label`, for the task at `path` of the run `resource_name`.
pub(super) fn field_path_env(
    platform: &PlatformSpec,
    label: &str,
    resource_name: &str,
    path: &str,
) -> Result<Vec<(String, String)>, String> {
    platform
        .field_path_env(label)
        .into_iter()
        .map(|(name, field)| {
            let value = match field.as_str() {
                // Like a pod of the run's workflow: the run's name and the task's path.
                "metadata.name" => format!("{resource_name}-{}", path.replace('/', "-")),
                "metadata.namespace" => POD_NAMESPACE.to_owned(),
                "spec.nodeName" => hostname(),
                other => {
                    let keyed = ["labels", "annotations"].into_iter().find_map(|kind| {
                        let key = other
                            .strip_prefix(&format!("metadata.{kind}['"))?
                            .strip_suffix("']")?;
                        // A missing key reads as empty, as in Kubernetes.
                        Some(
                            platform
                                .pod_metadata(label, kind)
                                .get(key)
                                .cloned()
                                .unwrap_or_default(),
                        )
                    });
                    keyed.ok_or_else(|| {
                        format!("use_field_path_as_env: `{other}` (for {name}) is not a field kfbox can give on one machine: it gives metadata.name, metadata.namespace, spec.nodeName, metadata.labels['KEY'] and metadata.annotations['KEY']")
                    })?
                }
            };
            Ok((name, value))
        })
        .collect()
}

fn hostname() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(fields: &[(&str, &str)]) -> PlatformSpec {
        let list: Vec<serde_json::Value> = fields
            .iter()
            .map(|(name, path)| serde_json::json!({"name": name, "fieldPath": path}))
            .collect();
        serde_json::from_value(serde_json::json!({"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
            "exec-a": {"fieldPathAsEnv": list, "podMetadata": {"labels": {"team": "vision"}, "annotations": {"note": "hi"}}}
        }}}}}))
        .unwrap()
    }

    #[test]
    fn documented_fields_have_their_values_here() {
        let spec = platform(&[
            ("POD", "metadata.name"),
            ("NS", "metadata.namespace"),
            ("TEAM", "metadata.labels['team']"),
            ("NOTE", "metadata.annotations['note']"),
            ("NONE", "metadata.labels['absent']"),
        ]);
        let env = field_path_env(&spec, "exec-a", "p-1234abcd", "outer/step").unwrap();
        assert_eq!(
            env,
            [
                ("POD", "p-1234abcd-outer-step"),
                ("NS", "kubeflow"),
                ("TEAM", "vision"),
                ("NOTE", "hi"),
                ("NONE", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn other_fields_are_refused_naming_what_is_given() {
        let spec = platform(&[("IP", "status.podIP")]);
        let error = field_path_env(&spec, "exec-a", "p", "step").unwrap_err();
        assert!(
            error.contains("`status.podIP`") && error.contains("spec.nodeName"),
            "{error}"
        );
    }
}
