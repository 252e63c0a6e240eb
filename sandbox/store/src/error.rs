//! What can go wrong in the store.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store was written by a newer kfbox (store version {found}, this kfbox knows up to {known}); upgrade kfbox, or point KFBOX_HOME elsewhere")]
    NewerSchema { found: i64, known: i64 },
    #[error("the store has ML Metadata schema version {found}; kfbox reads and writes version {known} only")]
    MlmdSchema { found: i64, known: i64 },
    #[error("no run matches `{0}` (see `kfbox runs list`)")]
    RunNotFound(String),
    #[error("`{prefix}` matches several runs ({examples}); give more of the run id")]
    AmbiguousRun { prefix: String, examples: String },
    #[error("no artifact has id {0} (see `kfbox artifacts list`)")]
    ArtifactNotFound(i64),
    #[error("run {0} is still running; stop it first (Ctrl-C in its terminal)")]
    RunActive(String),
    #[error(
        "bad page token `{0}`; pass the token a previous listing returned, with the same sort"
    )]
    BadPageToken(String),
    #[error("{resource} have no field `{field}`; known fields: {known}")]
    UnknownField {
        resource: &'static str,
        field: String,
        known: String,
    },
    #[error("bad filter: {0}")]
    BadFilter(String),
    #[error("no {what} has id `{id}`")]
    NotFound { what: &'static str, id: String },
    #[error("a {what} named `{name}` already exists")]
    Exists { what: &'static str, name: String },
    #[error("{0}")]
    Precondition(String),
    #[error("cannot remove a run's files")]
    Files(#[source] Box<kfbox_paths::Confinement>),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}
