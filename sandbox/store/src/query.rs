//! Reading the store: run lists (keyset pages over `kfbox_run`), a run's executions, artifacts,
//! lineage, cache lookups, and deleting a run.
//!
//! Every query walks an index from a known id; none inlines a list of ids the way MLMD's own
//! list-by-context queries do.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use kfbox_paths::{remove_under, Confinement};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::StoreError;
use crate::props;
use crate::record::RunHandle;
use crate::run_index::{find_run, RunRow, RUN_COLUMNS};
use crate::sql::{event, is_disk_full, state};
use crate::value::Prop;

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub pipeline: Option<String>,
    pub state: Option<String>,
}

/// A page of runs, newest first, and the token for the next page.
#[derive(Debug, Clone, Serialize)]
pub struct RunPage {
    pub runs: Vec<RunRow>,
    pub next_page_token: Option<String>,
}

/// An earlier execution whose outputs a cache hit reuses.
#[derive(Debug, Clone)]
pub struct CachedExecution {
    pub execution_id: i64,
    pub run_id: Option<String>,
    pub outputs: Map<String, Value>,
    /// Output artifacts by output name: id, URI, schema title and metadata.
    pub artifacts: BTreeMap<String, Vec<ArtifactRow>>,
}

/// How a command names a run: its full id or an unambiguous prefix.
#[derive(Debug, Clone)]
pub struct RunSelector(pub String);

/// An execution with its properties and events.
#[derive(Debug, Clone)]
pub struct ExecutionRow {
    pub id: i64,
    pub type_name: String,
    /// MLMD `Execution.State` name.
    pub state: &'static str,
    pub props: BTreeMap<String, Prop>,
    /// INPUT events: input name and artifact id.
    pub inputs: Vec<(String, i64)>,
    /// OUTPUT events: output name and artifact id.
    pub outputs: Vec<(String, i64)>,
    /// The run the execution belongs to.
    pub run_id: Option<String>,
}

impl ExecutionRow {
    pub fn text(&self, name: &str) -> Option<&str> {
        self.props.get(name).and_then(Prop::as_text)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.props.get(name).and_then(Prop::as_int)
    }
}

/// An artifact as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactRow {
    pub id: i64,
    pub type_name: String,
    pub uri: String,
    pub created_at: i64,
    /// Custom properties, converted back to the metadata the producer wrote.
    pub metadata: Map<String, Value>,
    /// The run that recorded it first (later runs may reuse it through the cache).
    pub run_id: Option<String>,
}

impl ArtifactRow {
    pub fn display_name(&self) -> &str {
        self.metadata
            .get(props::DISPLAY_NAME)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// One execution seen from an artifact.
#[derive(Debug, Clone)]
pub struct LineageStep {
    pub execution: ExecutionRow,
    /// The name under which the execution used or produced the artifact.
    pub name: String,
}

/// Where an artifact came from and where it went.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub artifact: ArtifactRow,
    /// Executions with an OUTPUT event to it (the producer, then cache hits that reused it).
    pub producers: Vec<LineageStep>,
    /// The producer's input artifacts.
    pub inputs: Vec<(String, ArtifactRow)>,
    /// Executions with an INPUT event from it.
    pub consumers: Vec<LineageStep>,
}

fn state_name(state: Option<i64>) -> &'static str {
    match state {
        Some(1) => "NEW",
        Some(state::RUNNING) => "RUNNING",
        Some(state::COMPLETE) => "COMPLETE",
        Some(state::FAILED) => "FAILED",
        Some(state::CACHED) => "CACHED",
        Some(state::CANCELED) => "CANCELED",
        _ => "UNKNOWN",
    }
}

impl Store {
    /// One page of runs, newest first. The token is the last row's key: a page costs one index
    /// range scan however deep it is.
    pub fn list_runs(
        &self,
        filter: &RunFilter,
        page_token: Option<&str>,
        limit: usize,
    ) -> Result<RunPage, StoreError> {
        let after = page_token.map(parse_page_token).transpose()?;
        let conn = self.conn();
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM kfbox_run WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(pipeline) = &filter.pipeline {
            sql.push_str(" AND pipeline_name = ?");
            args.push(pipeline.clone().into());
        }
        if let Some(state) = &filter.state {
            sql.push_str(" AND state = ?");
            args.push(state.clone().into());
        }
        if let Some((created, id)) = after {
            sql.push_str(" AND (created_at, run_id) < (?, ?)");
            args.push(created.into());
            args.push(id.into());
        }
        sql.push_str(" ORDER BY created_at DESC, run_id DESC LIMIT ?");
        args.push((limit as i64 + 1).into());
        let mut statement = conn.prepare_cached(&sql)?;
        let mut runs = statement
            .query_map(rusqlite::params_from_iter(args), RunRow::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let next_page_token = if runs.len() > limit {
            runs.truncate(limit);
            runs.last()
                .map(|r| format!("{}.{}", r.created_at, r.run_id))
        } else {
            None
        };
        Ok(RunPage {
            runs,
            next_page_token,
        })
    }

    /// The run a full id or unique id prefix names.
    pub fn find_run(&self, selector: &RunSelector) -> Result<RunRow, StoreError> {
        let conn = self.conn();
        find_run(&conn, &selector.0)
    }

    /// Every execution of a run, in creation order.
    pub fn run_executions(&self, run: &RunRow) -> Result<Vec<ExecutionRow>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT execution_id FROM Association WHERE context_id = ?1 ORDER BY execution_id",
        )?;
        let ids = statement
            .query_map([run.context_id], |row| row.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.into_iter()
            .map(|id| {
                read_execution(&conn, id).map(|mut e| {
                    e.run_id = Some(run.run_id.clone());
                    e
                })
            })
            .collect()
    }

    /// One execution with its properties and events.
    pub fn execution(&self, id: i64) -> Result<ExecutionRow, StoreError> {
        let conn = self.conn();
        read_execution(&conn, id)
    }

    pub fn artifact(&self, id: i64) -> Result<ArtifactRow, StoreError> {
        let conn = self.conn();
        read_artifact(&conn, id)?.ok_or(StoreError::ArtifactNotFound(id))
    }

    /// Artifacts, newest first; of one run when given.
    pub fn list_artifacts(
        &self,
        run: Option<&RunRow>,
        limit: usize,
    ) -> Result<Vec<ArtifactRow>, StoreError> {
        let conn = self.conn();
        let ids: Vec<i64> = match run {
            Some(run) => conn
                .prepare_cached(
                    "SELECT artifact_id FROM Attribution WHERE context_id = ?1 ORDER BY artifact_id DESC LIMIT ?2",
                )?
                .query_map(params![run.context_id, limit as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?,
            None => conn
                .prepare_cached("SELECT id FROM Artifact ORDER BY id DESC LIMIT ?1")?
                .query_map(params![limit as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?,
        };
        ids.into_iter()
            .filter_map(|id| read_artifact(&conn, id).transpose())
            .collect()
    }

    /// Which executions produced and consumed an artifact, and the producer's inputs.
    pub fn lineage(&self, artifact_id: i64) -> Result<Lineage, StoreError> {
        let conn = self.conn();
        let artifact =
            read_artifact(&conn, artifact_id)?.ok_or(StoreError::ArtifactNotFound(artifact_id))?;
        let steps = |kind: i64| -> Result<Vec<LineageStep>, StoreError> {
            let mut statement = conn.prepare_cached(
                "SELECT e.execution_id, p.step_key FROM Event e LEFT JOIN EventPath p ON p.event_id = e.id
                 WHERE e.artifact_id = ?1 AND e.type = ?2 ORDER BY e.execution_id",
            )?;
            let found = statement
                .query_map(params![artifact_id, kind], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            found
                .into_iter()
                .map(|(id, name)| {
                    let mut execution = read_execution(&conn, id)?;
                    execution.run_id = run_of_execution(&conn, id)?;
                    Ok(LineageStep {
                        execution,
                        name: name.unwrap_or_default(),
                    })
                })
                .collect()
        };
        let producers = steps(event::OUTPUT)?;
        let consumers = steps(event::INPUT)?;
        let mut inputs = Vec::new();
        if let Some(producer) = producers.first() {
            for (name, id) in &producer.execution.inputs {
                if let Some(a) = read_artifact(&conn, *id)? {
                    inputs.push((name.clone(), a));
                }
            }
        }
        Ok(Lineage {
            artifact,
            producers,
            inputs,
            consumers,
        })
    }

    /// The newest COMPLETE execution of this pipeline with this fingerprint whose artifacts
    /// are still on disk.
    pub fn find_cached(
        &self,
        run: &RunHandle,
        fingerprint: &str,
    ) -> Result<Option<CachedExecution>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT e.id FROM ExecutionProperty p
             JOIN Execution e ON e.id = p.execution_id
             JOIN Association a ON a.context_id = ?2 AND a.execution_id = e.id
             WHERE p.name = 'cache_fingerprint' AND p.is_custom_property = 1 AND p.string_value = ?1
               AND e.last_known_state = ?3
             ORDER BY e.id DESC LIMIT 5",
        )?;
        let candidates = statement
            .query_map(
                params![fingerprint, run.pipeline_context_id, state::COMPLETE],
                |row| row.get::<_, i64>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        for id in candidates {
            if let Some(reusable) = reusable(&conn, id)? {
                return Ok(Some(reusable));
            }
        }
        Ok(None)
    }

    /// The newest execution of the task at `path` in this run that completed (or was a cache
    /// hit) and whose artifacts are still on disk: what a retry of the run reuses.
    pub fn find_succeeded_in_run(
        &self,
        run: &RunHandle,
        path: &str,
    ) -> Result<Option<CachedExecution>, StoreError> {
        let conn = self.conn();
        let found = conn
            .prepare_cached(
                "SELECT e.id FROM Association a
                 JOIN Execution e ON e.id = a.execution_id
                 JOIN ExecutionProperty p ON p.execution_id = e.id AND p.name = 'kfbox.path' AND p.is_custom_property = 1
                 WHERE a.context_id = ?1 AND p.string_value = ?2 AND e.last_known_state IN (?3, ?4)
                 ORDER BY e.id DESC LIMIT 1",
            )?
            .query_row(
                params![run.context_id, path, state::COMPLETE, state::CACHED],
                |row| row.get::<_, i64>(0),
            )
            .optional()?;
        match found {
            Some(id) => reusable(&conn, id),
            None => Ok(None),
        }
    }

    /// Delete a run's records. Returns the artifact URIs no other run uses (safe to remove from
    /// disk) and those another run's cached executions still use (to keep).
    pub fn delete_run(&self, run: &RunRow) -> Result<(Vec<String>, Vec<String>), StoreError> {
        // A run whose process is gone is not active, even before recovery could mark it (on a
        // full disk it cannot: deleting is how space comes back).
        if run.state == "RUNNING" && self.run_process_alive(&run.run_id)? {
            return Err(StoreError::RunActive(run.run_id.clone()));
        }
        self.write(|tx| {
            let plan = deletion_plan(tx, run)?;
            for artifact in &plan.removable {
                for sql in [
                    "DELETE FROM ArtifactProperty WHERE artifact_id = ?1",
                    "DELETE FROM Attribution WHERE artifact_id = ?1",
                    "DELETE FROM Artifact WHERE id = ?1",
                ] {
                    tx.execute(sql, [artifact.0])?;
                }
            }
            for execution in &plan.executions {
                for sql in [
                    "DELETE FROM EventPath WHERE event_id IN (SELECT id FROM Event WHERE execution_id = ?1)",
                    "DELETE FROM Event WHERE execution_id = ?1",
                    "DELETE FROM ExecutionProperty WHERE execution_id = ?1",
                    "DELETE FROM Association WHERE execution_id = ?1",
                    "DELETE FROM Execution WHERE id = ?1",
                ] {
                    tx.execute(sql, [execution])?;
                }
            }
            for context in plan.child_contexts.iter().chain([&run.context_id]) {
                for sql in [
                    "DELETE FROM Attribution WHERE context_id = ?1",
                    "DELETE FROM ContextProperty WHERE context_id = ?1",
                    "DELETE FROM ParentContext WHERE context_id = ?1",
                    "DELETE FROM Context WHERE id = ?1",
                ] {
                    tx.execute(sql, [context])?;
                }
            }
            tx.execute("DELETE FROM kfbox_run_value WHERE run_id = ?1", [&run.run_id])?;
            tx.execute("DELETE FROM kfbox_run WHERE run_id = ?1", [&run.run_id])?;
            tx.execute("DELETE FROM kfbox_api_run WHERE run_id = ?1", [&run.run_id])?;
            Ok(plan.uris())
        })
    }
}

/// What deleting a run touches: its executions and those of its child contexts (debug
/// executions), the artifacts only it uses (id, URI), and the URIs of its artifacts that
/// executions of other runs still use.
struct DeletionPlan {
    executions: Vec<i64>,
    child_contexts: Vec<i64>,
    removable: Vec<(i64, Option<String>)>,
    kept: Vec<String>,
}

impl DeletionPlan {
    fn uris(self) -> (Vec<String>, Vec<String>) {
        let removable = self
            .removable
            .into_iter()
            .filter_map(|(_, uri)| uri)
            .collect();
        (removable, self.kept)
    }
}

fn deletion_plan(conn: &Connection, run: &RunRow) -> Result<DeletionPlan, StoreError> {
    let child_contexts: Vec<i64> = conn
        .prepare("SELECT context_id FROM ParentContext WHERE parent_context_id = ?1")?
        .query_map([run.context_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut executions = Vec::new();
    for context in child_contexts.iter().chain([&run.context_id]) {
        let associated = conn
            .prepare_cached("SELECT execution_id FROM Association WHERE context_id = ?1")?
            .query_map([context], |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        executions.extend(associated);
    }
    let mine: HashSet<i64> = executions.iter().copied().collect();
    let artifacts: Vec<i64> = conn
        .prepare("SELECT artifact_id FROM Attribution WHERE context_id = ?1")?
        .query_map([run.context_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut removable = Vec::new();
    let mut kept = Vec::new();
    for artifact in artifacts {
        let users: Vec<i64> = conn
            .prepare_cached("SELECT execution_id FROM Event WHERE artifact_id = ?1")?
            .query_map([artifact], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let uri: Option<String> = conn
            .query_row("SELECT uri FROM Artifact WHERE id = ?1", [artifact], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        if users.iter().any(|u| !mine.contains(u)) {
            kept.extend(uri);
        } else {
            removable.push((artifact, uri));
        }
    }
    Ok(DeletionPlan {
        executions,
        child_contexts,
        removable,
        kept,
    })
}

/// What deleting a run removed from disk.
#[derive(Debug, Clone, Serialize)]
pub struct DeletedRun {
    pub artifacts_removed: usize,
    /// Artifacts in the run's directory that cached executions of other runs still use.
    pub artifacts_kept: Vec<String>,
}

impl Store {
    /// Delete a run's records and its files. Only files inside kfbox's own run directories
    /// (`runs_dir`) are ever removed, checked by their real paths: imported artifacts point at
    /// the user's files, and a step may have set its artifact's URI anywhere. A file may sit in
    /// another run's directory when this run reused it through the cache.
    pub fn discard_run(&self, run: &RunRow, runs_dir: &Path) -> Result<DeletedRun, StoreError> {
        let (removable, kept) = match self.delete_run(run) {
            Ok(uris) => uris,
            // Deleting the records needs a little space: on a full disk the files go first.
            Err(e) if is_disk_full(&e) => {
                let (removable, kept) = deletion_plan(&self.conn(), run)?.uris();
                remove_run_files(run, runs_dir, &removable, &kept)?;
                self.delete_run(run)?
            }
            Err(e) => return Err(e),
        };
        remove_run_files(run, runs_dir, &removable, &kept)
    }
}

/// Remove the files of a run: the artifacts only it used, then its directory (or, when other
/// runs still use artifacts inside it, everything else of it).
fn remove_run_files(
    run: &RunRow,
    runs_dir: &Path,
    removable: &[String],
    kept: &[String],
) -> Result<DeletedRun, StoreError> {
    let run_dir = Path::new(&run.run_dir);
    let files = |e: Confinement| StoreError::Files(Box::new(e));
    let artifacts_removed = removable
        .iter()
        .filter(|uri| matches!(remove_under(runs_dir, Path::new(uri)), Ok(true)))
        .count();
    let artifacts_kept: Vec<String> = kept
        .iter()
        .filter(|u| Path::new(u).starts_with(run_dir))
        .cloned()
        .collect();
    if artifacts_kept.is_empty() {
        remove_under(runs_dir, run_dir).map_err(files)?;
    } else {
        for name in ["logs", "tasks", "workspace", "summary.json"] {
            remove_under(runs_dir, &run_dir.join(name)).map_err(files)?;
        }
    }
    Ok(DeletedRun {
        artifacts_removed,
        artifacts_kept,
    })
}

/// An execution's outputs for reuse, or `None` when some output artifact's files are gone.
fn reusable(conn: &Connection, id: i64) -> Result<Option<CachedExecution>, StoreError> {
    let execution = read_execution(conn, id)?;
    let mut artifacts: BTreeMap<String, Vec<ArtifactRow>> = BTreeMap::new();
    for (name, artifact_id) in &execution.outputs {
        match read_artifact(conn, *artifact_id)? {
            Some(a) if still_on_disk(&a.uri) => artifacts.entry(name.clone()).or_default().push(a),
            _ => return Ok(None),
        }
    }
    Ok(Some(CachedExecution {
        execution_id: id,
        run_id: run_of_execution(conn, id)?,
        outputs: execution
            .props
            .get(props::OUTPUTS)
            .and_then(Prop::as_struct)
            .cloned()
            .unwrap_or_default(),
        artifacts,
    }))
}

/// Whether an artifact's files are still there. Some artifacts are never written as files
/// (metrics live in metadata), so the directory the step wrote into stands for them.
fn still_on_disk(uri: &str) -> bool {
    let path = std::path::Path::new(uri);
    if !path.is_absolute() {
        return true;
    }
    path.exists() || path.parent().is_some_and(|p| p.is_dir())
}

fn parse_page_token(token: &str) -> Result<(i64, String), StoreError> {
    token
        .split_once('.')
        .and_then(|(created, id)| Some((created.parse().ok()?, id.to_owned())))
        .ok_or_else(|| StoreError::BadPageToken(token.to_owned()))
}

fn run_of_execution(conn: &Connection, execution: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT r.run_id FROM Association a JOIN kfbox_run r ON r.context_id = a.context_id
             WHERE a.execution_id = ?1",
        )?
        .query_row([execution], |r| r.get(0))
        .optional()?)
}

pub(crate) fn read_execution(conn: &Connection, id: i64) -> Result<ExecutionRow, StoreError> {
    let (type_name, state) = conn
        .prepare_cached(
            "SELECT t.name, e.last_known_state FROM Execution e JOIN Type t ON t.id = e.type_id WHERE e.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })?;
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    let mut statement = conn.prepare_cached(
        "SELECT e.artifact_id, e.type, p.step_key FROM Event e LEFT JOIN EventPath p ON p.event_id = e.id
         WHERE e.execution_id = ?1 ORDER BY e.id",
    )?;
    let events = statement.query_map([id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for found in events {
        let (artifact, kind, name) = found?;
        let entry = (name.unwrap_or_default(), artifact);
        match kind {
            event::INPUT => inputs.push(entry),
            event::OUTPUT => outputs.push(entry),
            _ => {}
        }
    }
    Ok(ExecutionRow {
        id,
        type_name,
        state: state_name(state),
        props: read_props(conn, "ExecutionProperty", "execution_id", id)?,
        inputs,
        outputs,
        run_id: None,
    })
}

fn read_artifact(conn: &Connection, id: i64) -> Result<Option<ArtifactRow>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT t.name, a.uri, a.create_time_since_epoch FROM Artifact a JOIN Type t ON t.id = a.type_id WHERE a.id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .optional()?;
    let Some((type_name, uri, created_at)) = found else {
        return Ok(None);
    };
    let metadata = read_props(conn, "ArtifactProperty", "artifact_id", id)?
        .into_iter()
        .map(|(k, v)| (k, v.to_metadata()))
        .collect();
    let run_id = conn
        .prepare_cached(
            "SELECT r.run_id FROM Attribution a JOIN kfbox_run r ON r.context_id = a.context_id
             WHERE a.artifact_id = ?1 ORDER BY a.id LIMIT 1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(Some(ArtifactRow {
        id,
        type_name,
        uri: uri.unwrap_or_default(),
        created_at,
        metadata,
        run_id,
    }))
}

fn read_props(
    conn: &Connection,
    table: &str,
    column: &str,
    id: i64,
) -> Result<BTreeMap<String, Prop>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT name, int_value, double_value, string_value, bool_value FROM {table} WHERE {column} = ?1 AND is_custom_property = 1"
    ))?;
    let rows = statement.query_map([id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Prop::from_columns(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
        ))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        if let (name, Some(value)) = row? {
            out.insert(name, value);
        }
    }
    Ok(out)
}
