//! Opening the store: created or upgraded, abandoned runs marked; or read-only, where it
//! cannot be written.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

use crate::db::Store;
use crate::error::StoreError;
use crate::schema;

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

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
