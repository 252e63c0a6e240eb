//! Shared SQL helpers under every part of the store: MLMD's enumerations, statements through
//! the statement cache, custom properties, one-row reads and unique-constraint errors.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use crate::db::Store;
use crate::error::StoreError;
use crate::listing::Table;
use crate::value::Prop;

/// MLMD `Execution.State`.
pub(crate) mod state {
    pub const RUNNING: i64 = 2;
    pub const COMPLETE: i64 = 3;
    pub const FAILED: i64 = 4;
    pub const CACHED: i64 = 5;
    pub const CANCELED: i64 = 6;
}

/// MLMD `Event.Type`.
pub(crate) mod event {
    pub const INPUT: i64 = 3;
    pub const OUTPUT: i64 = 4;
}

/// Execute one statement through the connection's statement cache: each run repeats the same
/// few statements thousands of times, and parsing them anew cost more than executing them.
pub(crate) fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

#[derive(Clone, Copy)]
pub(crate) enum Owner {
    Execution(i64),
    Artifact(i64),
    Context(i64),
}

impl Owner {
    pub(crate) fn table(self) -> (&'static str, &'static str, i64) {
        match self {
            Self::Execution(id) => ("ExecutionProperty", "execution_id", id),
            Self::Artifact(id) => ("ArtifactProperty", "artifact_id", id),
            Self::Context(id) => ("ContextProperty", "context_id", id),
        }
    }
}

pub(crate) fn put_props(
    tx: &Transaction<'_>,
    owner: Owner,
    values: &[(&str, Prop)],
) -> Result<(), StoreError> {
    let (table, column, id) = owner.table();
    let mut statement = tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table} ({column}, name, is_custom_property, int_value, double_value, string_value) VALUES (?1, ?2, 1, ?3, ?4, ?5)"
    ))?;
    for (name, value) in values {
        let (int, double, text) = value.columns();
        statement.execute(params![id, name, int, double, text])?;
    }
    Ok(())
}

/// Milliseconds since the epoch, MLMD's time unit.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether an error is SQLite's "database or disk is full".
pub(crate) fn is_disk_full(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DiskFull
    )
}

pub(crate) fn one<T>(
    store: &Store,
    table: &Table,
    id: &str,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = ?1",
        table.select.join(", "),
        table.source(),
        table.id
    );
    store
        .read_one(&sql, [id], map)?
        .ok_or_else(|| StoreError::NotFound {
            what: table.resource,
            id: id.to_owned(),
        })
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A unique-constraint failure becomes `Exists`; everything else stays a SQLite error.
pub(crate) fn unique(error: rusqlite::Error, what: &'static str, name: &str) -> StoreError {
    match &error {
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Exists {
                what,
                name: name.to_owned(),
            }
        }
        _ => StoreError::Sqlite(error),
    }
}

/// One statement through the statement cache, its row count unused.
pub(crate) fn apply(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    exec(tx, sql, params)?;
    Ok(())
}

impl Store {
    /// The first row of a query, if any.
    pub(crate) fn read_one<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(sql)?;
        let found = statement.query_row(params, map).optional()?;
        Ok(found)
    }
}
