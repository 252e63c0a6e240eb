//! The local stand-in for the Kubernetes namespace a pipeline's pods run in: its
//! PersistentVolumeClaims ([`volumes`]), Secrets and ConfigMaps ([`objects`]), each a file or
//! directory under `KFBOX_HOME`, so that `kfp.kubernetes` settings have something to refer to
//! on one machine and it outlives runs as the cluster's objects do.

pub mod error;
pub mod names;
mod namespace;
pub mod objects;
pub mod volumes;

pub use error::NamespaceError;
pub use namespace::Namespace;
pub use objects::{ObjectKind, Objects};
pub use volumes::{Claim, Volumes};
