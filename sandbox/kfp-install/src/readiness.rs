//! Is each component up, and if not, why: read from its Deployment, its pods and their
//! events, in words a user can act on (`ImagePullBackOff: ghcr.io/...:2.17.0 is not in the
//! bundle` rather than "0/1 ready").

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use kube::api::ListParams;
use kube::{Api, Client};

use crate::components::{Component, COMPONENTS};
use crate::error::InstallError;
use crate::names::NAMESPACE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentState {
    pub title: &'static str,
    pub deployment: &'static str,
    pub ready: bool,
    /// Why it is not ready; empty when it is.
    pub reason: String,
}

/// The images a node has without pulling: a bundle's references, for naming an image pull
/// that cannot work.
pub type BundledImages = BTreeSet<String>;

/// Every component's state now.
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
        states.push(state_of(
            component,
            deployment.as_ref(),
            &all_pods,
            &all_events,
            bundled,
        ));
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
        deployment: component.deployment,
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
    let own: Vec<&Pod> = pods
        .iter()
        .filter(|pod| {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .collect();
    // The newest pod tells what is happening now; older ones are being replaced.
    let newest = own
        .iter()
        .max_by_key(|pod| pod.metadata.creation_timestamp.clone().map(|t| t.0));
    let reason = match newest {
        Some(pod) => {
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let own_events: Vec<&Event> = events
                .iter()
                .filter(|e| e.involved_object.name.as_deref() == Some(name))
                .collect();
            let reason = waiting_reason(pod, &own_events, bundled);
            if reason.starts_with("CrashLoopBackOff") {
                format!(
                    "{reason}; its log: kubectl -n {NAMESPACE} logs deploy/{} --previous",
                    component.deployment
                )
            } else {
                reason
            }
        }
        None => "no pod yet".to_owned(),
    };
    state(false, reason)
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

/// Docker Hub's short and long names are one image (`mysql:8.4` is
/// `docker.io/library/mysql:8.4`).
fn same_image(a: &str, b: &str) -> bool {
    fn long(reference: &str) -> String {
        let first = reference.split('/').next().unwrap_or_default();
        let has_registry = reference.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        match (has_registry, reference.contains('/')) {
            (true, _) => reference.to_owned(),
            (false, true) => format!("docker.io/{reference}"),
            (false, false) => format!("docker.io/library/{reference}"),
        }
    }
    long(a) == long(b)
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
