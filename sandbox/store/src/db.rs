//! The open store: one connection behind a lock, and the transactions every write runs in.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::StoreError;

/// An open store. Cheap to share behind an `Arc`; all writes go through one connection.
pub struct Store {
    pub(crate) path: PathBuf,
    pub(crate) conn: Mutex<Connection>,
    pub(crate) recovered: Vec<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
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

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls
        // back on drop), so the connection stays usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `work` in one `BEGIN IMMEDIATE` transaction.
    pub(crate) fn write<T>(
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
