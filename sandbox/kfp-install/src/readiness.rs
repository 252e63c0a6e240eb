//! Is each component up, and if not, why: read from its Deployment, its pods and their
//! events, in words a user can act on (`ImagePullBackOff: ghcr.io/...:2.17.0 is not in the
//! bundle` rather than "0/1 ready").

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Node, Pod};
use kube::api::ListParams;
use kube::{Api, Client};

use crate::components::{Component, COMPONENTS};
use crate::error::InstallError;
use crate::gpu::{DEVICE_PLUGIN, DEVICE_PLUGIN_POD, SYSTEM_NAMESPACE};
use crate::images::same_image;
use crate::names::NAMESPACE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentState {
    pub title: &'static str,
    /// The Deployment (or, for GPUs, the DaemonSet) that runs it.
    pub workload: &'static str,
    pub ready: bool,
    /// Why it is not ready; empty when it is.
    pub reason: String,
}

/// The images a node has without pulling: a bundle's references, for naming an image pull
/// that cannot work.
pub type BundledImages = BTreeSet<String>;

/// Every component's state now; GPUs too when the device plugin is installed.
pub async fn component_states(
    client: &Client,
    bundled: Option<&BundledImages>,
) -> Result<Vec<ComponentState>, InstallError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    let read = |what: &str| {
        let what = what.to_owned();
        move |source| InstallError::Read { what, source }
    };
    let all_pods = pods
        .list(&ListParams::default())
        .await
        .map_err(read("the pods"))?
        .items;
    let all_events = events
        .list(&ListParams::default())
        .await
        .map_err(read("the events"))?
        .items;
    let mut states = Vec::with_capacity(COMPONENTS.len());
    for component in &COMPONENTS {
        let deployment = deployments
            .get_opt(component.deployment)
            .await
            .map_err(read(&format!("Deployment/{}", component.deployment)))?;
        if deployment.is_none() && component.optional {
            continue;
        }
        states.push(state_of(
            component,
            deployment.as_ref(),
            &all_pods,
            &all_events,
            bundled,
        ));
    }
    let plugins: Api<DaemonSet> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
    let plugin = plugins
        .get_opt(DEVICE_PLUGIN)
        .await
        .map_err(read(&format!("DaemonSet/{DEVICE_PLUGIN}")))?;
    if plugin.is_some() {
        let nodes: Api<Node> = Api::all(client.clone());
        let allocatable: u64 = nodes
            .list(&ListParams::default())
            .await
            .map_err(read("the nodes"))?
            .items
            .iter()
            .filter_map(|node| {
                node.status
                    .as_ref()?
                    .allocatable
                    .as_ref()?
                    .get("nvidia.com/gpu")
            })
            .filter_map(|quantity| quantity.0.parse::<u64>().ok())
            .sum();
        let system_pods: Api<Pod> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
        let system_events: Api<Event> = Api::namespaced(client.clone(), SYSTEM_NAMESPACE);
        let pods = system_pods
            .list(
                &ListParams::default()
                    .labels(&format!("{}={}", DEVICE_PLUGIN_POD.0, DEVICE_PLUGIN_POD.1)),
            )
            .await
            .map_err(read("the device plugin's pods"))?
            .items;
        let events = system_events
            .list(&ListParams::default())
            .await
            .map_err(read("kube-system's events"))?
            .items;
        states.push(gpu_state_of(allocatable, &pods, &events, bundled));
    }
    Ok(states)
}

/// Waits until every component is ready, calling `changed` whenever one's state changes
/// (and once for each at the start). At `timeout` the error lists what still waits, and why.
pub async fn wait_until_ready(
    client: &Client,
    timeout: Duration,
    bundled: Option<&BundledImages>,
    mut changed: impl FnMut(&ComponentState, Duration),
) -> Result<(), InstallError> {
    let started = Instant::now();
    let mut last: Vec<ComponentState> = Vec::new();
    loop {
        let states = component_states(client, bundled).await?;
        for state in &states {
            if !last.contains(state) {
                changed(state, started.elapsed());
            }
        }
        if states.iter().all(|s| s.ready) {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            let waiting = states
                .iter()
                .filter(|s| !s.ready)
                .map(|s| format!("  {}: {}", s.title, s.reason))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(InstallError::NotReady {
                seconds: timeout.as_secs(),
                waiting,
            });
        }
        last = states;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// One component's state from its Deployment and the namespace's pods and events.
pub fn state_of(
    component: &Component,
    deployment: Option<&Deployment>,
    pods: &[Pod],
    events: &[Event],
    bundled: Option<&BundledImages>,
) -> ComponentState {
    let state = |ready: bool, reason: String| ComponentState {
        title: component.title,
        workload: component.deployment,
        ready,
        reason,
    };
    let Some(deployment) = deployment else {
        return state(false, "not installed".to_owned());
    };
    let available = deployment
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    if available > 0 {
        return state(true, String::new());
    }
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    let logs = format!("-n {NAMESPACE} logs deploy/{}", component.deployment);
    state(
        false,
        newest_pod_reason(&selector, pods, events, bundled, &logs),
    )
}

/// The GPUs the device plugin advertises: ready once the node offers `nvidia.com/gpu`.
pub fn gpu_state_of(
    allocatable: u64,
    pods: &[Pod],
    events: &[Event],
    bundled: Option<&BundledImages>,
) -> ComponentState {
    let state = |ready: bool, reason: String| ComponentState {
        title: "GPUs (NVIDIA device plugin)",
        workload: DEVICE_PLUGIN,
        ready,
        reason,
    };
    if allocatable > 0 {
        return state(true, String::new());
    }
    let selector = BTreeMap::from([(
        DEVICE_PLUGIN_POD.0.to_owned(),
        DEVICE_PLUGIN_POD.1.to_owned(),
    )]);
    let running = pods.iter().any(|pod| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(DEVICE_PLUGIN_POD.0))
            == Some(&DEVICE_PLUGIN_POD.1.to_owned())
            && pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|c| c.iter().all(|c| c.ready))
    });
    if running {
        return state(
            false,
            "the device plugin runs but the node offers no nvidia.com/gpu: the node image needs the NVIDIA container toolkit (`kfbox images build-gpu-node`) and the host a working driver (`nvidia-smi`)".to_owned(),
        );
    }
    let logs = format!("-n {SYSTEM_NAMESPACE} logs ds/{DEVICE_PLUGIN}");
    state(
        false,
        newest_pod_reason(&selector, pods, events, bundled, &logs),
    )
}

/// Why the pods `selector` picks are not ready, read from the newest (older ones are being
/// replaced); `logs` completes the kubectl command that shows a crashing one's log.
fn newest_pod_reason(
    selector: &BTreeMap<String, String>,
    pods: &[Pod],
    events: &[Event],
    bundled: Option<&BundledImages>,
    logs: &str,
) -> String {
    let newest = pods
        .iter()
        .filter(|pod| {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .max_by_key(|pod| pod.metadata.creation_timestamp.clone().map(|t| t.0));
    let Some(pod) = newest else {
        return "no pod yet".to_owned();
    };
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let own_events: Vec<&Event> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .collect();
    let reason = waiting_reason(pod, &own_events, bundled);
    if reason.starts_with("CrashLoopBackOff") {
        format!("{reason}; its log: kubectl {logs} --previous")
    } else {
        reason
    }
}

/// Why a pod is not ready, most specific first: scheduling, then each init container in
/// turn, then the containers, then the pod's latest warning.
pub fn waiting_reason(pod: &Pod, events: &[&Event], bundled: Option<&BundledImages>) -> String {
    let status = pod.status.clone().unwrap_or_default();
    let latest_warning = events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .max_by_key(|e| e.last_timestamp.clone().map(|t| t.0))
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.as_deref().unwrap_or("Warning"),
                e.message.as_deref().unwrap_or_default().trim()
            )
        });
    if let Some(unscheduled) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        return format!(
            "not scheduled: {}",
            unscheduled
                .message
                .as_deref()
                .unwrap_or("no node can take it")
        );
    }
    for init in status.init_container_statuses.iter().flatten() {
        let done = init
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code == 0);
        if done {
            continue;
        }
        if let Some(problem) = container_problem(init, bundled) {
            return problem;
        }
        return format!("waiting in its init container {}", init.name);
    }
    for container in status.container_statuses.iter().flatten() {
        if let Some(problem) = container_problem(container, bundled) {
            return problem;
        }
    }
    let running_unready = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| !c.ready && c.state.as_ref().is_some_and(|s| s.running.is_some()));
    match (running_unready, latest_warning) {
        (Some(c), Some(warning)) => format!("{} running, not ready yet ({warning})", c.name),
        (Some(c), None) => format!("{} running, not ready yet", c.name),
        (None, Some(warning)) => warning,
        (None, None) => format!(
            "pod {}",
            status.phase.as_deref().unwrap_or("Pending").to_lowercase()
        ),
    }
}

/// A container that cannot run, named with what to look at; None while it runs or starts.
fn container_problem(
    container: &ContainerStatus,
    bundled: Option<&BundledImages>,
) -> Option<String> {
    let waiting = container.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref().unwrap_or_default();
    let message = waiting.message.as_deref().unwrap_or_default().trim();
    match reason {
        "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull" => {
            let image = &container.image;
            Some(match bundled {
                Some(images) if !images.iter().any(|b| same_image(b, image)) => {
                    format!("{reason}: {image} is not in the bundle")
                }
                Some(_) => format!(
                    "{reason}: {image} is in the bundle but k3s has not imported it ({message})"
                ),
                None => format!("{reason}: {image}: {message}"),
            })
        }
        "CrashLoopBackOff" => {
            let last = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref());
            Some(match last {
                Some(t) => format!(
                    "CrashLoopBackOff: {} exited with {} ({}) after {} restarts",
                    container.name,
                    t.exit_code,
                    t.reason.as_deref().unwrap_or("error"),
                    container.restart_count,
                ),
                None => format!("CrashLoopBackOff: {}", container.name),
            })
        }
        "" | "ContainerCreating" | "PodInitializing" => None,
        other => Some(if message.is_empty() {
            format!("{other}: {}", container.name)
        } else {
            format!("{other}: {message}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "ml-pipeline-abc", "labels": {"app": "ml-pipeline"}},
            "status": status,
        }))
        .unwrap()
    }

    fn waiting(name: &str, image: &str, reason: &str, message: &str) -> serde_json::Value {
        json!({"name": name, "image": image, "imageID": "", "ready": false, "restartCount": 0,
               "state": {"waiting": {"reason": reason, "message": message}}})
    }

    fn bundle(images: &[&str]) -> BundledImages {
        images.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn an_image_missing_from_the_bundle_is_named() {
        let p = pod(json!({"phase": "Pending", "containerStatuses": [
            waiting("ml-pipeline-api-server", "ghcr.io/kubeflow/kfp-api-server:2.17.0",
                    "ImagePullBackOff", "Back-off pulling image")]}));
        let reason = waiting_reason(&p, &[], Some(&bundle(&["docker.io/library/mysql:8.4"])));
        assert_eq!(
            reason,
            "ImagePullBackOff: ghcr.io/kubeflow/kfp-api-server:2.17.0 is not in the bundle"
        );
        // With it in the bundle, the pull failing means k3s has not imported it (yet).
        let reason = waiting_reason(
            &p,
            &[],
            Some(&bundle(&["ghcr.io/kubeflow/kfp-api-server:2.17.0"])),
        );
        assert!(
            reason.contains("in the bundle but k3s has not imported it"),
            "{reason}"
        );
        // Without a bundle, the registry's message is what helps.
        let reason = waiting_reason(&p, &[], None);
        assert!(reason.ends_with("Back-off pulling image"), "{reason}");
    }

    #[test]
    fn short_docker_hub_names_match_the_bundles_long_ones() {
        let p = pod(json!({"containerStatuses": [
            waiting("mysql", "mysql:8.4", "ErrImagePull", "no network")]}));
        let reason = waiting_reason(&p, &[], Some(&bundle(&["docker.io/library/mysql:8.4"])));
        assert!(reason.contains("has not imported it"), "{reason}");
        assert!(same_image(
            "quay.io/argoproj/argoexec:v4.0.5",
            "quay.io/argoproj/argoexec:v4.0.5"
        ));
        assert!(!same_image("alpine:3.23", "docker.io/library/alpine:3.22"));
    }

    #[test]
    fn init_containers_are_waited_for_in_turn() {
        let done = json!({"name": "wait-for-database", "image": "alpine", "imageID": "",
            "ready": true, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}});
        let running = json!({"name": "wait-for-metadata-grpc", "image": "alpine", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"running": {}}});
        let p = pod(json!({"phase": "Pending", "initContainerStatuses": [done, running]}));
        assert_eq!(
            waiting_reason(&p, &[], None),
            "waiting in its init container wait-for-metadata-grpc"
        );
    }

    #[test]
    fn a_crash_loop_names_the_exit() {
        let p = pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "container", "image": "x", "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}));
        let reason = waiting_reason(&p, &[], None);
        assert!(
            reason
                .starts_with("CrashLoopBackOff: container exited with 1 (Error) after 4 restarts"),
            "{reason}"
        );
    }

    #[test]
    fn unschedulable_and_probe_failures_quote_kubernetes() {
        let p = pod(
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled",
            "status": "False", "message": "0/1 nodes are available: 1 Insufficient memory."}]}),
        );
        assert_eq!(
            waiting_reason(&p, &[], None),
            "not scheduled: 0/1 nodes are available: 1 Insufficient memory."
        );
        let p = pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "ml-pipeline-api-server", "image": "x", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"running": {}}}]}));
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": "e1"}, "involvedObject": {"name": "ml-pipeline-abc"},
            "type": "Warning", "reason": "Unhealthy",
            "message": "Readiness probe failed: connection refused"}))
        .unwrap();
        assert_eq!(
            waiting_reason(&p, &[&event], None),
            "ml-pipeline-api-server running, not ready yet (Unhealthy: Readiness probe failed: connection refused)"
        );
    }

    #[test]
    fn gpus_are_ready_when_the_node_offers_them_and_say_why_not() {
        assert!(gpu_state_of(1, &[], &[], None).ready);
        let plugin_pod = |ready: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "nvidia-device-plugin-daemonset-x", "labels": {"name": "nvidia-device-plugin-ds"}},
                "status": {"containerStatuses": [{"name": "nvidia-device-plugin-ctr", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.20.0",
                    "imageID": "", "ready": ready, "restartCount": 0,
                    "state": if ready { json!({"running": {}}) } else { json!({"waiting": {"reason": "ErrImagePull", "message": "no network"}}) }}]}}))
            .unwrap()
        };
        let no_gpus = gpu_state_of(0, &[plugin_pod(true)], &[], None);
        assert!(!no_gpus.ready);
        assert!(
            no_gpus.reason.contains("NVIDIA container toolkit"),
            "{}",
            no_gpus.reason
        );
        let no_plugin = gpu_state_of(0, &[plugin_pod(false)], &[], Some(&bundle(&[])));
        assert_eq!(
            no_plugin.reason,
            "ErrImagePull: nvcr.io/nvidia/k8s-device-plugin:v0.20.0 is not in the bundle"
        );
        assert_eq!(gpu_state_of(0, &[], &[], None).reason, "no pod yet");
    }

    #[test]
    fn a_deployment_with_an_available_pod_is_ready() {
        let component = &COMPONENTS[0];
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": component.deployment},
            "spec": {"selector": {"matchLabels": {"app": "mysql"}},
                     "template": {"metadata": {"labels": {"app": "mysql"}}}},
            "status": {"availableReplicas": 1}}))
        .unwrap();
        assert!(state_of(component, Some(&deployment), &[], &[], None).ready);
        let missing = state_of(component, None, &[], &[], None);
        assert_eq!(
            (missing.ready, missing.reason.as_str()),
            (false, "not installed")
        );
    }
}
