//! Kubeflow Pipelines 2.17.0 as kfbox installs it on its k3s node: the platform-agnostic
//! install without what v2 does not use (metadata-writer, cache server and deployer, viewer
//! controller, visualization server), built as typed Kubernetes objects (`objects`), applied
//! with server-side apply and followed until each component is ready.
//!
//! What remains: the API server, persistence agent, scheduled-workflow controller and UI
//! (`pipelines`), ML Metadata and its Envoy (`metadata`), Argo's controller and CRDs
//! (`argo`), MySQL and SeaweedFS (`storage`). Every image is pinned (`images`) and never
//! pulled when present, so a node that imported a bundle needs no network.

pub mod apply;
mod argo;
pub mod components;
mod error;
pub mod gpu;
pub mod images;
mod install;
mod metadata;
mod names;
mod object;
mod package_index;
mod parts;
mod pipelines;
pub mod readiness;
mod storage;

pub use error::InstallError;
pub use install::{objects, InstallOptions};
pub use names::{NAMESPACE, PIPELINE_BUCKET};
pub use object::{to_yaml, KubeObject};

#[cfg(test)]
mod tests;
