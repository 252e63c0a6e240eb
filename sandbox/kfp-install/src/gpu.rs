//! GPUs on the node: NVIDIA's device plugin, which advertises the node's GPUs as
//! `nvidia.com/gpu` (what `set_accelerator_limit` asks for). It runs only on nodes started with
//! `--gpus`, whose image has the NVIDIA container toolkit; k3s then runs every container with
//! the `nvidia` runtime (`--default-runtime=nvidia`), because KFP cannot set a runtime class
//! per task.

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, HostPathVolumeSource, PodSpec, PodTemplateSpec, Toleration, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::images;
use crate::object::KubeObject;
use crate::parts::{mount, restricted, string_map, PULL_POLICY};

/// Where k3s's kubelet keeps its node-wide services.
pub const SYSTEM_NAMESPACE: &str = "kube-system";
pub const DEVICE_PLUGIN: &str = "nvidia-device-plugin-daemonset";
/// The label its pods carry.
pub const DEVICE_PLUGIN_POD: (&str, &str) = ("name", "nvidia-device-plugin-ds");

pub fn objects() -> Vec<KubeObject> {
    let mut metadata = crate::parts::meta(DEVICE_PLUGIN, &[]);
    metadata.namespace = Some(SYSTEM_NAMESPACE.to_owned());
    let sockets = "kubelet-device-plugins-dir";
    let mut security = restricted(None, None);
    // The plugin talks to the kubelet's socket as root; it needs no capability for that.
    security.run_as_non_root = None;
    let plugin = DaemonSet {
        metadata,
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(string_map(&[DEVICE_PLUGIN_POD])),
                ..LabelSelector::default()
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                ..DaemonSetUpdateStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(string_map(&[DEVICE_PLUGIN_POD])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    // A node-critical add-on: scheduled first, evicted last.
                    priority_class_name: Some("system-node-critical".to_owned()),
                    tolerations: Some(vec![Toleration {
                        key: Some("nvidia.com/gpu".to_owned()),
                        operator: Some("Exists".to_owned()),
                        effect: Some("NoSchedule".to_owned()),
                        ..Toleration::default()
                    }]),
                    containers: vec![Container {
                        name: "nvidia-device-plugin-ctr".to_owned(),
                        image: Some(images::DEVICE_PLUGIN.to_owned()),
                        image_pull_policy: Some(PULL_POLICY.to_owned()),
                        volume_mounts: Some(vec![mount(
                            sockets,
                            "/var/lib/kubelet/device-plugins",
                        )]),
                        security_context: Some(security),
                        ..Container::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: sockets.to_owned(),
                        host_path: Some(HostPathVolumeSource {
                            path: "/var/lib/kubelet/device-plugins".to_owned(),
                            type_: Some("Directory".to_owned()),
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        }),
        ..DaemonSet::default()
    };
    vec![KubeObject::new(plugin)]
}
