//! kfbox and Kubeflow Pipelines on Kubernetes. Today: what a pipeline file will do differently
//! on a cluster than in kfbox, checked before it is sent there (`kfbox check --for cluster`).

pub mod portability;
