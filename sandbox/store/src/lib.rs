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
//!
//! Layers, each importing only those below it: `error`, `props`, `value`; `run_values`; `listing` and `db`;
//! `sql` (shared helpers); `schema`, `run_index`; the API's resources (`api/`); `record`,
//! `query`, `recovery`; `debug`; `open`.

mod api;
mod db;
mod debug;
mod error;
mod listing;
mod open;
pub mod props;
mod query;
mod record;
mod recovery;
mod run_index;
mod run_values;
mod schema;
mod sql;
pub mod value;

pub use api::{
    ApiRunFields, ApiRunRow, ExperimentRow, PipelineRow, PipelineVersionRow, RecurringRunRow,
    DEFAULT_EXPERIMENT,
};
pub use db::Store;
pub use debug::DebugExecution;
pub use error::StoreError;
pub use listing::{Condition, ListQuery, Op, Operand, Page};
pub use query::{
    ArtifactRow, CachedExecution, DeletedRun, ExecutionRow, Lineage, LineageStep, RunFilter,
    RunPage, RunSelector,
};
pub use record::{
    ExecutionType, FinishedExecution, NewArtifact, NewExecution, NewRun, OutputArtifact, RunHandle,
    RunOutcome,
};
pub use run_index::RunRow;
pub use schema::MLMD_SCHEMA_VERSION;

/// The file name of the store inside `KFBOX_HOME`.
pub const STORE_FILE: &str = "kfbox.sqlite";
