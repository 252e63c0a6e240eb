use std::path::PathBuf;

/// What went wrong with an object of the namespace; each names the object and what to do.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("{kind} name `{name}` is not a Kubernetes name: {why}")]
    BadName {
        kind: &'static str,
        name: String,
        why: &'static str,
    },
    #[error("{kind} `{name}` does not exist; create it with `kfbox {command} ...`")]
    NotFound {
        kind: &'static str,
        name: String,
        command: &'static str,
    },
    #[error("{kind} `{name}` already exists; delete it first (`kfbox {command} delete {name}`) or choose another name")]
    Exists {
        kind: &'static str,
        name: String,
        command: &'static str,
    },
    #[error("{what}")]
    Invalid { what: String },
    #[error("{path} is not a kfbox {kind} file: {source}")]
    Corrupt {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Confinement(#[from] kfbox_paths::Confinement),
}
