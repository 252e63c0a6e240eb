use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error(transparent)]
    Docker(#[from] kfbox_docker::DockerError),
    #[error("Docker: {0}")]
    Api(#[from] bollard::errors::Error),
    #[error("the node image {image} is not here\nhint: `kfbox cluster bundle DIR` on a connected machine and `kfbox cluster up --bundle DIR` here, or `docker pull {image}`")]
    MissingImage { image: String },
    #[error("the GPU node image {image} is not here\nhint: `kfbox images build-gpu-node` builds it (on a connected machine; the host needs the NVIDIA driver and Docker's GPU support), or give another with --image")]
    MissingGpuImage { image: String },
    #[error("the k3s node {container} stopped before it was ready (exit code {code}); its last lines:\n{last_lines}\nhint: `docker logs {container}` shows all of them; `kfbox cluster down` removes it")]
    Crashed {
        container: String,
        code: i64,
        last_lines: String,
    },
    #[error("the k3s node {container} was not ready within {seconds} s; its last lines:\n{last_lines}\nhint: `docker logs {container}` shows all of them; `kfbox cluster down` removes it")]
    NotReady {
        container: String,
        seconds: u64,
        last_lines: String,
    },
    #[error("the node {container} was made with other settings: {differences}\nhint: `kfbox cluster down --keep-data` and `kfbox cluster up` with the new settings recreate it, keeping its data")]
    Changed {
        container: String,
        differences: String,
    },
    #[error("{origin}:{line}: `{text}` is not `node REFERENCE` or `cluster REFERENCE`")]
    ImageList {
        origin: String,
        line: usize,
        text: String,
    },
    #[error("cannot pull {reference}: {reason}\nhint: bundles are made on a machine that reaches the registries")]
    Pull { reference: String, reason: String },
    #[error("{dir} is not a bundle: it has no manifest.json\nhint: `kfbox cluster bundle DIR` writes one")]
    NotABundle { dir: PathBuf },
    #[error("{path} is not a bundle manifest kfbox can read: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("the node's kubeconfig {what}")]
    Kubeconfig { what: String },
    #[error("cannot read or write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a kubeconfig kfbox can merge into: {reason}\nhint: fix or move it, or set KUBECONFIG to another file")]
    BadKubeconfig { path: PathBuf, reason: String },
}
