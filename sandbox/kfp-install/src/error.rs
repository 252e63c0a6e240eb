use thiserror::Error;

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("cannot read the cluster's kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("the Kubernetes API refused {object}: {source}")]
    Apply {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot read {what} from the Kubernetes API: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("Kubeflow Pipelines was not ready after {seconds} s; still waiting:\n{waiting}")]
    NotReady { seconds: u64, waiting: String },
}
