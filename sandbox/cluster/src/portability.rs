//! What behaves differently when a pipeline runs on a KFP cluster instead of in kfbox: each
//! finding names the executor and tasks it concerns and what to do about it. Read from the
//! compiled spec alone; nothing is contacted.

use std::collections::BTreeMap;

use kfbox_python::LightweightStep;
use kfbox_spec::ir::{ExecutorSpec, PipelineSpec};
use kfbox_spec::LoadedPipeline;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The SDK's `pip install` before a lightweight component: needs a package index.
    PipPrelude,
    /// An image whose tag is `latest` or missing: pulled on every start (policy Always).
    MutableImage,
    /// A `wasm:` image: only kfbox runs those.
    WasmImage,
    /// A local path where a cluster reads object storage.
    LocalPath,
    /// A `kfp.kubernetes` setting: applied on the cluster, not by kfbox's local run.
    PlatformSetting,
    /// A `kfp.kubernetes` setting kfbox's local run emulates (e.g. `set_timeout`): the same
    /// effect in both places, listed so that every setting is accounted for.
    EmulatedSetting,
    /// A task the KFP driver performs on the cluster that kfbox cannot.
    ClusterOnlyTask,
    /// A task the KFP driver performs on the cluster (CreatePVC, DeletePVC) and kfbox's local
    /// run emulates (on its own volumes).
    EmulatedTask,
}

impl FindingKind {
    /// Whether kfbox's own local run is affected too (it does not apply the setting or
    /// cannot run the task), not only a cluster run.
    pub fn affects_local_runs(self) -> bool {
        matches!(self, Self::PlatformSetting | Self::ClusterOnlyTask)
    }

    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::PipPrelude => "pip at start",
            Self::MutableImage => "mutable image",
            Self::WasmImage => "wasm step",
            Self::LocalPath => "local path",
            Self::PlatformSetting => "k8s setting",
            Self::EmulatedSetting => "k8s (emulated)",
            Self::ClusterOnlyTask => "cluster-only",
            Self::EmulatedTask => "driver task (emulated)",
        }
    }
}

/// One thing that will behave differently on a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub kind: FindingKind,
    /// The executor (`exec-train`) it concerns; none for pipeline-wide findings.
    pub executor: Option<String>,
    /// The tasks that run that executor.
    pub tasks: Vec<String>,
    /// What it is about: the requirement list, the image, the setting or the path.
    pub subject: String,
    pub message: String,
    pub hint: String,
}

/// Everything in `pipeline` that a cluster does differently, executors in spec order.
pub fn cluster_findings(pipeline: &LoadedPipeline) -> Vec<Finding> {
    let spec = &pipeline.spec;
    let tasks = tasks_by_executor(spec);
    let mut findings = Vec::new();
    for (label, executor) in &spec.deployment_spec.executors {
        let tasks = tasks.get(label.as_str()).cloned().unwrap_or_default();
        let mut found = |kind, subject: String, message: String, hint: &str| {
            findings.push(Finding {
                kind,
                executor: Some(label.clone()),
                tasks: tasks.clone(),
                subject,
                message,
                hint: hint.to_owned(),
            });
        };
        executor_findings(executor, &mut found);
        for setting in pipeline.platform.kubernetes_settings(label) {
            if kfbox_spec::platform::APPLIED.contains(&setting.as_str()) {
                found(
                    FindingKind::EmulatedSetting,
                    setting.clone(),
                    format!("Kubernetes setting `{setting}` is applied on the cluster and emulated by kfbox's local run"),
                    "nothing to do: both runs apply it",
                );
            } else {
                found(
                    FindingKind::PlatformSetting,
                    setting.clone(),
                    format!("Kubernetes setting `{setting}` is applied on the cluster; kfbox's local run does not apply it, so the two runs can differ"),
                    "check the run on the cluster; locally the step runs without it",
                );
            }
        }
    }
    if pipeline.platform.has_workspace() {
        findings.push(Finding {
            kind: FindingKind::EmulatedSetting,
            executor: None,
            tasks: Vec::new(),
            subject: "kubernetes.pipelineConfig.workspace".to_owned(),
            message: "the pipeline's workspace is a PVC mounted at /kfp-workspace on the cluster; kfbox's local run gives each run a directory of its own at dsl.WORKSPACE_PATH_PLACEHOLDER".to_owned(),
            hint: "nothing to do: both runs share one directory between the run's tasks".to_owned(),
        });
    }
    for (name, config) in &pipeline.platform.platforms {
        let only_workspace = config
            .pipeline_config
            .as_ref()
            .and_then(|c| c.as_object())
            .is_some_and(|c| c.keys().all(|k| k == "workspace"));
        if config.pipeline_config.is_some() && !only_workspace {
            findings.push(Finding {
                kind: FindingKind::PlatformSetting,
                executor: None,
                tasks: Vec::new(),
                subject: format!("{name}.pipelineConfig"),
                message: format!("pipeline-wide `{name}` settings (e.g. a workspace volume) are applied on the cluster; kfbox's local run does not apply them"),
                hint: "check the run on the cluster".to_owned(),
            });
        }
    }
    if let Some(root) = spec
        .default_pipeline_root
        .as_deref()
        .filter(|r| is_local_path(r))
    {
        findings.push(Finding {
            kind: FindingKind::LocalPath,
            executor: None,
            tasks: Vec::new(),
            subject: root.to_owned(),
            message: format!("the pipeline root `{root}` is a local path; pods on the cluster write artifacts to object storage"),
            hint: "compile without pipeline_root, or give an s3://, minio:// or gs:// root".to_owned(),
        });
    }
    findings
}

fn executor_findings(
    executor: &ExecutorSpec,
    found: &mut impl FnMut(FindingKind, String, String, &str),
) {
    if let Some(container) = &executor.container {
        let image = container.image.trim();
        if matches!(image, "argostub/createpvc" | "argostub/deletepvc") {
            found(
                FindingKind::EmulatedTask,
                image.to_owned(),
                format!("`{image}` is a placeholder KFP's driver acts on (a PersistentVolumeClaim is created or deleted); kfbox's local run creates or deletes a volume of its own (`kfbox volumes list`)"),
                "nothing to do: both runs do it",
            );
        } else if image.starts_with("argostub/") {
            found(
                FindingKind::ClusterOnlyTask,
                image.to_owned(),
                format!("`{image}` is a placeholder KFP's driver acts on (a PersistentVolumeClaim is created or deleted); no container runs, and kfbox's local run cannot do it"),
                "run it on the cluster",
            );
        } else if let Some(module) = image.strip_prefix("wasm:") {
            found(
                FindingKind::WasmImage,
                image.to_owned(),
                format!("`{module}` is a WebAssembly module: only kfbox runs `wasm:` images; KFP on Kubernetes cannot"),
                "give the step a container image for the cluster",
            );
        } else if pulls_always(image) {
            found(
                FindingKind::MutableImage,
                image.to_owned(),
                format!("image `{image}` has no fixed tag, so Kubernetes pulls it at every start (imagePullPolicy Always): without a registry the step fails, and the image can change between runs"),
                "pin a tag or digest (e.g. python:3.11), and preload it for offline clusters",
            );
        }
        let argv: Vec<String> = container
            .command
            .iter()
            .chain(&container.args)
            .cloned()
            .collect();
        if let Some(step) = LightweightStep::detect(&argv) {
            let mut wanted: Vec<String> = step.sdk_pin.into_iter().collect();
            wanted.extend(step.requirements.packages);
            let wanted = wanted.join(" ");
            let index = if step.requirements.pip_options.is_empty() {
                "PyPI".to_owned()
            } else {
                step.requirements.pip_options.join(" ")
            };
            found(
                FindingKind::PipPrelude,
                wanted.clone(),
                format!("the SDK's prelude runs `pip install {wanted}` from {index} in the pod before the component starts: on a cluster without network it fails (kfbox's local run skips it and installs into its own environments)"),
                "compile with install_kfp_package=False and an image that has kfp and the packages (kfbox images build makes kfbox/runtime:kfp-2.17.0, which kfbox cluster bundle carries), or give the cluster a package index",
            );
        }
    }
    if let Some(importer) = &executor.importer {
        if let Some(uri) = importer
            .artifact_uri
            .constant
            .as_ref()
            .and_then(|v| v.as_str())
            .filter(|uri| is_local_path(uri))
        {
            found(
                FindingKind::LocalPath,
                uri.to_owned(),
                format!("the importer reads `{uri}`, a path on this machine; pods on the cluster cannot see it"),
                "upload it to object storage and import an s3://, minio:// or gs:// URI",
            );
        }
    }
}

/// Kubernetes' rule: `latest`, or no tag and no digest, means pull every time.
fn pulls_always(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn is_local_path(uri: &str) -> bool {
    uri.starts_with('/')
        || uri.starts_with("file:")
        || uri.starts_with("./")
        || uri.starts_with("~/")
}

/// Task names per executor label, each DAG of the spec walked once.
fn tasks_by_executor(spec: &PipelineSpec) -> BTreeMap<&str, Vec<String>> {
    let mut tasks: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let dags = std::iter::once(&spec.root)
        .chain(spec.components.values())
        .filter_map(|c| c.dag.as_ref());
    for dag in dags {
        for (name, task) in &dag.tasks {
            if let Some(label) = spec
                .component(&task.component_ref.name)
                .and_then(|c| c.executor_label.as_deref())
            {
                let names = tasks.entry(label).or_default();
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_that_kubernetes_pulls_every_time() {
        for image in [
            "alpine",
            "alpine:latest",
            "library/bash",
            "localhost:5000/x",
            "r.io/a/b:latest",
        ] {
            assert!(pulls_always(image), "{image}");
        }
        for image in [
            "python:3.11",
            "localhost:5000/x:1.0",
            "alpine@sha256:abc",
            "r.io/a/b:v2",
        ] {
            assert!(!pulls_always(image), "{image}");
        }
    }

    #[test]
    fn local_paths_are_what_a_pod_cannot_read() {
        for uri in ["/data/x.csv", "file:///data", "./x", "~/x"] {
            assert!(is_local_path(uri), "{uri}");
        }
        for uri in ["gs://b/x", "s3://b/x", "minio://b/x", "https://h/x"] {
            assert!(!is_local_path(uri), "{uri}");
        }
    }
}
