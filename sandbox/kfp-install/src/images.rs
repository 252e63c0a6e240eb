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
