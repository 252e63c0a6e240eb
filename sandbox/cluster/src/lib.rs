//! kfbox and Kubeflow Pipelines on Kubernetes: the k3s node kfbox runs in Docker (`node`), its
//! kubeconfig (`kubeconfig`), and what a pipeline file does differently on a cluster than in
//! kfbox (`portability`).

mod error;
pub mod kubeconfig;
pub mod node;
pub mod portability;

pub use error::ClusterError;
