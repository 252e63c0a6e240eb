//! The namespace kept under one directory, and where each kind of object lives in it.

use std::path::{Path, PathBuf};

use crate::objects::{ObjectKind, Objects};
use crate::volumes::Volumes;

/// The namespace kept under one directory (`KFBOX_HOME`).
#[derive(Debug, Clone)]
pub struct Namespace {
    root: PathBuf,
}

impl Namespace {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// PersistentVolumeClaims: one directory each.
    pub fn volumes(&self) -> Volumes {
        Volumes::new(self.root.join("volumes"))
    }

    pub fn secrets(&self) -> Objects {
        Objects::new(ObjectKind::Secret, self.root.join("secrets"))
    }

    pub fn config_maps(&self) -> Objects {
        Objects::new(ObjectKind::ConfigMap, self.root.join("configmaps"))
    }
}
