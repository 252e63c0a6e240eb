//! kfbox's run index (`kfbox_run`): one row per run, and finding a run by id or prefix.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::StoreError;

/// One run as listed.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub display_name: String,
    pub pipeline_name: String,
    pub state: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    pub run_dir: String,
    #[serde(skip)]
    pub context_id: i64,
}

pub(crate) const RUN_COLUMNS: &str = "run_id, display_name, pipeline_name, state, created_at, finished_at, error, run_dir, context_id";

impl RunRow {
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            run_id: row.get(0)?,
            display_name: row.get(1)?,
            pipeline_name: row.get(2)?,
            state: row.get(3)?,
            created_at: row.get(4)?,
            finished_at: row.get(5)?,
            error: row.get(6)?,
            run_dir: row.get(7)?,
            context_id: row.get(8)?,
        })
    }
}

pub(crate) fn find_run(conn: &Connection, selector: &str) -> Result<RunRow, StoreError> {
    let exact = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM kfbox_run WHERE run_id = ?1"
        ))?
        .query_row([selector], RunRow::from_row)
        .optional()?;
    if let Some(run) = exact {
        return Ok(run);
    }
    // A prefix is a range on the primary key.
    let upper = format!("{selector}\u{10ffff}");
    let found = conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM kfbox_run WHERE run_id >= ?1 AND run_id < ?2 ORDER BY run_id LIMIT 3"
        ))?
        .query_map(params![selector, upper], RunRow::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    match found.len() {
        0 => Err(StoreError::RunNotFound(selector.to_owned())),
        1 => Ok(found.into_iter().next().expect("one run")),
        _ => Err(StoreError::AmbiguousRun {
            prefix: selector.to_owned(),
            examples: found
                .iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}
