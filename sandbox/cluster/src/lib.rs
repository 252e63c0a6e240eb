//! kfbox and Kubeflow Pipelines on Kubernetes: the k3s node kfbox runs in Docker (`node`), its
//! kubeconfig (`kubeconfig`), the offline image bundle (`bundle`), and what a pipeline file does
//! differently on a cluster than in kfbox (`portability`).

pub mod bundle;
mod error;
pub mod kubeconfig;
pub mod node;
pub mod portability;

pub use error::ClusterError;
