//! The run store: one SQLite file that ML Metadata reads, plus kfbox's indexes over it.
//!
//! Every run becomes MLMD records exactly as the Kubeflow Pipelines v2 backend writes them:
//! a `system.Pipeline` context per pipeline, a `system.PipelineRun` context per run, one
//! execution per task (`system.ContainerExecution`, `system.DAGExecution`,
//! `system.ImporterExecution`), artifacts typed by their schema title, and INPUT/OUTPUT events
//! between them. kfbox's own table (`kfbox_run`) is a list view over those records.
//!
//! Concurrency: WAL, one connection per process, every write a short `BEGIN IMMEDIATE`
//! transaction; SQLite's busy handler queues writers of other processes.

mod catalog;
mod listing;
mod query;
mod record;
mod recovery;
mod schema;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use catalog::{
    ApiRunFields, ApiRunRow, ExperimentRow, PipelineRow, PipelineVersionRow, RecurringRunRow,
    DEFAULT_EXPERIMENT,
};
pub use listing::{Condition, ListQuery, Op, Operand, Page};
pub use query::{
    ArtifactRow, DeletedRun, ExecutionRow, Lineage, LineageStep, RunFilter, RunPage, RunRow,
    RunSelector,
};
pub use record::{
    CachedExecution, ExecutionType, FinishedExecution, NewArtifact, NewExecution, NewRun,
    OutputArtifact, RunHandle, RunOutcome,
};
pub use recovery::{identity_alive, note_process, process_identity};
pub use schema::MLMD_SCHEMA_VERSION;

/// The file name of the store inside `KFBOX_HOME`.
pub const STORE_FILE: &str = "kfbox.sqlite";

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Custom property names: the backend's, then kfbox's own (prefixed `kfbox.`).
pub mod props {
    pub const DISPLAY_NAME: &str = "display_name";
    pub const TASK_NAME: &str = "task_name";
    pub const IMAGE: &str = "image";
    pub const NAMESPACE: &str = "namespace";
    pub const RESOURCE_NAME: &str = "resource_name";
    pub const PIPELINE_ROOT: &str = "pipeline_root";
    pub const STORE_SESSION_INFO: &str = "store_session_info";
    pub const CACHE_FINGERPRINT: &str = "cache_fingerprint";
    pub const CACHED_EXECUTION_ID: &str = "cached_execution_id";
    pub const INPUTS: &str = "inputs";
    pub const OUTPUTS: &str = "outputs";
    pub const PARENT_DAG_ID: &str = "parent_dag_id";
    pub const ITERATION_INDEX: &str = "iteration_index";
    pub const ITERATION_COUNT: &str = "iteration_count";
    /// The task's path in the run (`outer/iteration-0/inner`).
    pub const PATH: &str = "kfbox.path";
    /// kfbox's task kind: container, importer, dag, loop, iteration, root.
    pub const KIND: &str = "kfbox.kind";
    /// kfbox's task state, finer than MLMD's (SKIPPED and CANCELED are both MLMD CANCELED).
    pub const STATE: &str = "kfbox.state";
    pub const ERROR: &str = "kfbox.error";
    pub const REASON: &str = "kfbox.reason";
    pub const ATTEMPTS: &str = "kfbox.attempts";
    pub const LOG: &str = "kfbox.log";
    /// Where the executor noted the step's process group (see the engine's `Step`).
    pub const PROCESS_FILE: &str = "kfbox.process_file";
    pub const STARTED_AT: &str = "kfbox.started_at";
    pub const FINISHED_AT: &str = "kfbox.finished_at";
    /// Output artifacts of DAG tasks (artifact ids by output name); steps use OUTPUT events.
    pub const OUTPUT_ARTIFACTS: &str = "kfbox.output_artifacts";
    pub const RUN_DISPLAY_NAME: &str = "kfbox.display_name";
    pub const RUN_STATE: &str = "kfbox.state";
    pub const RUN_CREATED_AT: &str = "kfbox.created_at";
    pub const RUN_FINISHED_AT: &str = "kfbox.finished_at";
    pub const RUN_DIR: &str = "kfbox.run_dir";
    pub const RUN_PID: &str = "kfbox.pid";
    pub const RUN_PID_STARTED: &str = "kfbox.pid_started";
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store was written by a newer kfbox (store version {found}, this kfbox knows up to {known}); upgrade kfbox, or point KFBOX_HOME elsewhere")]
    NewerSchema { found: i64, known: i64 },
    #[error("the store has ML Metadata schema version {found}; kfbox reads and writes version {MLMD_SCHEMA_VERSION} only")]
    MlmdSchema { found: i64 },
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

/// An open store. Cheap to share behind an `Arc`; all writes go through one connection.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    recovered: Vec<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating or upgrading) the store at `path`, then mark runs whose process died as
    /// FAILED.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Recording a step repeats about thirty distinct statements; all of them stay parsed.
        conn.set_prepared_statement_cache_capacity(128);
        // WAL lets readers (MLMD, `kfbox runs`) read while a run writes; NORMAL sync keeps
        // every commit safe from a killed process and costs no fsync per commit.
        // Recording a step touches some thirty b-trees (MLMD indexes every property); small
        // pages keep each commit's WAL frames small. Only a new file takes the page size.
        conn.pragma_update(None, "page_size", 1024)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoint (and fsync) every 8 MB of WAL rather than every 1 MB.
        conn.pragma_update(None, "wal_autocheckpoint", 8000)?;
        schema::migrate(&mut conn)?;
        let mut store = Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            recovered: Vec::new(),
        };
        // A store that can be read but not written (a full disk) still serves reads and
        // deletes; the abandoned runs are marked by a later open.
        store.recovered = store.recover_abandoned_runs().unwrap_or_else(|e| {
            vec![format!(
                "cannot mark abandoned runs FAILED yet ({e}); a later command will"
            )]
        });
        Ok(store)
    }

    /// Open the store for reading: as [`Store::open`] does when the file can be written (so
    /// abandoned runs are marked), else read-only, without writing anything: on a full disk or
    /// a read-only file system the runs can still be listed (and a full disk freed).
    pub fn open_for_reading(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Self::open(path);
        }
        Self::open(path).or_else(|_| Self::open_read_only(path))
    }

    fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let usable = |conn: Connection| -> Result<Connection, StoreError> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            schema::check_current(&conn)?;
            Ok(conn)
        };
        let conn = Connection::open_with_flags(path, flags)
            .map_err(StoreError::from)
            .and_then(usable)
            .or_else(|first| {
                // WAL readers need the shared-memory file, which cannot be created on a
                // read-only file system; nothing can write there, so the file is immutable.
                let uri = format!("file:{}?immutable=1", uri_path(path));
                Connection::open_with_flags(uri, flags)
                    .map_err(StoreError::from)
                    .and_then(usable)
                    .map_err(|_| first)
            })?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            recovered: Vec::new(),
        })
    }

    /// Refresh the query planner's statistics where they are missing or stale (bounded work):
    /// with them, a list filtered on a large experiment walks the time index instead of
    /// sorting the experiment's runs. Long-lived processes call it now and then.
    pub fn optimize(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        // kfbox's list tables exactly (a sample misjudges how many runs an experiment has;
        // 100,000 runs take about 0.1 s), MLMD's by a bounded sample where needed.
        conn.pragma_update(None, "analysis_limit", 0)?;
        conn.execute_batch("ANALYZE kfbox_run; ANALYZE kfbox_api_run;")?;
        conn.pragma_update(None, "analysis_limit", 1000)?;
        conn.execute_batch("PRAGMA optimize = 0x10002")?;
        Ok(())
    }

    /// Runs found abandoned (and marked FAILED) when the store was opened, one sentence each.
    pub fn recovered(&self) -> &[String] {
        &self.recovered
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls
        // back on drop), so the connection stays usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `work` in one `BEGIN IMMEDIATE` transaction.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// A path as the path of a `file:` URI (percent-encoding what URIs reserve).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whether an error is SQLite's "database or disk is full".
fn is_disk_full(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DiskFull
    )
}

/// Milliseconds since the epoch, MLMD's time unit.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
