//! The whole install, in the order it is applied.

use k8s_openapi::api::core::v1::Namespace;

use crate::names::NAMESPACE;
use crate::object::{apply_rank, KubeObject};
use crate::{argo, gpu, metadata, package_index, parts, pipelines, storage};

/// What differs between installs.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallOptions {
    /// The node was started with GPUs: install NVIDIA's device plugin too.
    pub gpus: bool,
    /// The node has no network but has kfbox's runtime image: serve its wheels as the
    /// package index every step's pip uses.
    pub package_index: bool,
}

/// Every object of the install, in the order to apply them.
pub fn objects(options: InstallOptions) -> Vec<KubeObject> {
    let mut objects = vec![KubeObject::new(Namespace {
        metadata: parts::cluster_meta(NAMESPACE),
        ..Namespace::default()
    })];
    objects.extend(argo::objects(options.package_index));
    objects.extend(storage::objects());
    objects.extend(metadata::objects());
    objects.extend(pipelines::objects());
    if options.package_index {
        objects.extend(package_index::objects());
    }
    if options.gpus {
        objects.extend(gpu::objects());
    }
    objects.sort_by_key(|object| apply_rank(object.kind()));
    objects
}
