//! Every image the install references, pinned. `images/cluster-images.txt` (what a bundle
//! holds) must list each of them; a test compares the two.

/// The Kubeflow Pipelines release the install reproduces.
pub const KFP_VERSION: &str = "2.17.0";

pub const API_SERVER: &str = "ghcr.io/kubeflow/kfp-api-server:2.17.0";
pub const PERSISTENCE_AGENT: &str = "ghcr.io/kubeflow/kfp-persistence-agent:2.17.0";
pub const SCHEDULED_WORKFLOW: &str = "ghcr.io/kubeflow/kfp-scheduled-workflow-controller:2.17.0";
pub const FRONTEND: &str = "ghcr.io/kubeflow/kfp-frontend:2.17.0";
pub const METADATA_ENVOY: &str = "ghcr.io/kubeflow/kfp-metadata-envoy:2.17.0";
pub const METADATA_GRPC: &str = "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0";
/// KFP 2.17.0 pins Argo v4.0.5 (its `third-party/argo`).
pub const WORKFLOW_CONTROLLER: &str = "quay.io/argoproj/workflow-controller:v4.0.5";
pub const MYSQL: &str = "docker.io/library/mysql:8.4";
pub const SEAWEEDFS: &str = "ghcr.io/chrislusf/seaweedfs:4.34";
/// The image of the wait-for-* init containers.
pub const ALPINE: &str = "docker.io/library/alpine:3.23";

/// kfbox's runtime image (images/runtime, made by `kfbox images build`, carried by bundles):
/// Python with the kfp SDK and its wheels, which it serves as the offline package index.
pub const RUNTIME: &str = "kfbox/runtime:kfp-2.17.0";

/// NVIDIA's device plugin, on nodes started with `--gpus` only.
pub const DEVICE_PLUGIN: &str = "nvcr.io/nvidia/k8s-device-plugin:v0.20.0";

/// Images no object names but every step's pods run: the API server puts the driver and
/// launcher into each workflow it compiles (its code default is `:latest`, which an offline
/// node cannot pull: kubeflow/pipelines#10682), Argo adds its executor to every pod.
pub const DRIVER: &str = "ghcr.io/kubeflow/kfp-driver:2.17.0";
pub const LAUNCHER: &str = "ghcr.io/kubeflow/kfp-launcher:2.17.0";
pub const ARGOEXEC: &str = "quay.io/argoproj/argoexec:v4.0.5";

/// Whether two references name one image as Docker and containerd read them: Docker Hub's
/// short and long names are the same (`mysql:8.4`, `docker.io/mysql:8.4` and
/// `docker.io/library/mysql:8.4`; `rancher/k3s` and `docker.io/rancher/k3s`).
pub fn same_image(a: &str, b: &str) -> bool {
    fn long(reference: &str) -> String {
        let (first, rest) = reference.split_once('/').unwrap_or(("", reference));
        let registry = first.contains('.') || first.contains(':') || first == "localhost";
        let (registry, path) = if registry {
            (first, rest)
        } else {
            ("docker.io", reference)
        };
        if registry == "docker.io" && !path.contains('/') {
            format!("docker.io/library/{path}")
        } else {
            format!("{registry}/{path}")
        }
    }
    long(a) == long(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hubs_short_and_long_names_are_one_image() {
        for (a, b) in [
            ("mysql:8.4", "docker.io/library/mysql:8.4"),
            ("docker.io/mysql:8.4", "mysql:8.4"),
            (
                "rancher/k3s:v1.35.5-k3s1",
                "docker.io/rancher/k3s:v1.35.5-k3s1",
            ),
            (
                "quay.io/argoproj/argoexec:v4.0.5",
                "quay.io/argoproj/argoexec:v4.0.5",
            ),
            ("localhost:5000/x:1", "localhost:5000/x:1"),
        ] {
            assert!(same_image(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("alpine:3.23", "docker.io/library/alpine:3.22"),
            ("ghcr.io/mysql:8.4", "mysql:8.4"),
            ("rancher/k3s:v1", "k3s:v1"),
        ] {
            assert!(!same_image(a, b), "{a} {b}");
        }
    }
}
