//! What the API server keeps beside ML Metadata, as the backend keeps it in its own database:
//! experiments, pipelines and their versions, recurring runs, and each API-created run's
//! experiment, storage state and request.
//!
//! Every run has a `kfbox_api_run` row from `begin_run` on; runs started by `kfbox run` keep
//! its defaults: the `Default` experiment, AVAILABLE.

use rusqlite::{params, OptionalExtension, Row};

use crate::listing::{Field, Join, ListQuery, Page, Table};
use crate::query::RunRow;
use crate::record::exec;
use crate::{now_ms, Store, StoreError};

/// The experiment runs go to when none is named.
pub const DEFAULT_EXPERIMENT: &str = "Default";
const DEFAULT_DESCRIPTION: &str =
    "All runs created without specifying an experiment are grouped here.";

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentRow {
    pub experiment_id: String,
    pub display_name: String,
    pub description: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// `AVAILABLE` or `ARCHIVED`.
    pub storage_state: String,
    pub last_run_created_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRow {
    pub pipeline_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineVersionRow {
    pub pipeline_version_id: String,
    pub pipeline_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created_at: i64,
    /// The PipelineSpec (or its `pipeline_spec` + `platform_spec` wrapper) as JSON.
    pub pipeline_spec: String,
}

/// What the API records about a run besides MLMD's records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiRunFields {
    pub experiment_id: Option<String>,
    pub description: String,
    pub pipeline_id: Option<String>,
    pub pipeline_version_id: Option<String>,
    pub recurring_run_id: Option<String>,
    /// `RuntimeConfig` as JSON.
    pub runtime_config: String,
    pub service_account: String,
}

#[derive(Debug, Clone)]
pub struct ApiRunRow {
    pub run: RunRow,
    pub storage_state: String,
    /// Runs started outside the API have the `Default` experiment here.
    pub fields: ApiRunFields,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecurringRunRow {
    pub recurring_run_id: String,
    pub display_name: String,
    pub experiment_id: Option<String>,
    /// `ENABLE` or `DISABLE`.
    pub mode: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The schedule time of the last run it started, in milliseconds.
    pub last_fired_at: Option<i64>,
    /// The API object as created (spec, trigger, runtime config...), as JSON.
    pub body: String,
}

static EXPERIMENTS: Table = Table {
    resource: "experiments",
    select: &[
        "experiment_id",
        "display_name",
        "description",
        "created_at",
        "storage_state",
        "last_run_created_at",
    ],
    from: "kfbox_experiment",
    join: None,
    id: "experiment_id",
    fields: &[
        Field::text("experiment_id", "experiment_id"),
        Field::text("id", "experiment_id"),
        Field::text("display_name", "display_name"),
        Field::text("name", "display_name"),
        Field::text("description", "description"),
        Field::time("created_at", "created_at"),
        Field::text("storage_state", "storage_state"),
        Field::time("last_run_created_at", "last_run_created_at").nullable(),
    ],
};

static PIPELINES: Table = Table {
    resource: "pipelines",
    select: &[
        "pipeline_id",
        "name",
        "display_name",
        "description",
        "created_at",
    ],
    from: "kfbox_pipeline",
    join: None,
    id: "pipeline_id",
    fields: &[
        Field::text("pipeline_id", "pipeline_id"),
        Field::text("id", "pipeline_id"),
        Field::text("name", "name"),
        Field::text("display_name", "display_name"),
        Field::text("description", "description"),
        Field::time("created_at", "created_at"),
    ],
};

static VERSIONS: Table = Table {
    resource: "pipeline versions",
    select: &[
        "pipeline_version_id",
        "pipeline_id",
        "name",
        "display_name",
        "description",
        "created_at",
        "pipeline_spec",
    ],
    from: "kfbox_pipeline_version",
    join: None,
    id: "pipeline_version_id",
    fields: &[
        Field::text("pipeline_version_id", "pipeline_version_id"),
        Field::text("id", "pipeline_version_id"),
        Field::text("pipeline_id", "pipeline_id"),
        Field::text("name", "name"),
        Field::text("display_name", "display_name"),
        Field::text("description", "description"),
        Field::time("created_at", "created_at"),
    ],
};

static RUNS: Table = Table {
    resource: "runs",
    select: &[
        "r.run_id",
        "r.display_name",
        "r.pipeline_name",
        "r.state",
        "r.created_at",
        "r.finished_at",
        "r.error",
        "r.run_dir",
        "r.context_id",
        "a.experiment_id",
        "a.storage_state",
        "a.description",
        "a.pipeline_id",
        "a.pipeline_version_id",
        "a.recurring_run_id",
        "a.runtime_config",
        "a.service_account",
    ],
    from: "kfbox_run r",
    join: Some(Join {
        prefix: "a.",
        clause: "JOIN kfbox_api_run a ON a.run_id = r.run_id",
        alone: "kfbox_api_run a",
        id: "a.run_id",
    }),
    id: "r.run_id",
    fields: &[
        Field::text("run_id", "r.run_id"),
        Field::text("id", "r.run_id"),
        Field::text("display_name", "r.display_name"),
        Field::text("name", "r.display_name"),
        Field::text("pipeline_name", "r.pipeline_name"),
        Field::text("state", "r.state"),
        Field::text("status", "r.state"),
        Field::time("created_at", "a.created_at"),
        Field::time("scheduled_at", "a.created_at"),
        Field::time("finished_at", "r.finished_at").nullable(),
        Field::text("experiment_id", "a.experiment_id").nullable(),
        Field::text("storage_state", "a.storage_state"),
        Field::text("description", "a.description"),
        Field::text("pipeline_id", "a.pipeline_id").nullable(),
        Field::text("pipeline_version_id", "a.pipeline_version_id").nullable(),
        Field::text("recurring_run_id", "a.recurring_run_id").nullable(),
    ],
};

static RECURRING: Table = Table {
    resource: "recurring runs",
    select: &[
        "recurring_run_id",
        "display_name",
        "experiment_id",
        "mode",
        "created_at",
        "updated_at",
        "last_fired_at",
        "body",
    ],
    from: "kfbox_recurring_run",
    join: None,
    id: "recurring_run_id",
    fields: &[
        Field::text("recurring_run_id", "recurring_run_id"),
        Field::text("id", "recurring_run_id"),
        Field::text("display_name", "display_name"),
        Field::text("name", "display_name"),
        Field::text("experiment_id", "experiment_id").nullable(),
        Field::text("mode", "mode"),
        Field::time("created_at", "created_at"),
        Field::time("updated_at", "updated_at"),
    ],
};

fn experiment_row(row: &Row<'_>) -> rusqlite::Result<ExperimentRow> {
    Ok(ExperimentRow {
        experiment_id: row.get(0)?,
        display_name: row.get(1)?,
        description: row.get(2)?,
        created_at: row.get(3)?,
        storage_state: row.get(4)?,
        last_run_created_at: row.get(5)?,
    })
}

fn pipeline_row(row: &Row<'_>) -> rusqlite::Result<PipelineRow> {
    Ok(PipelineRow {
        pipeline_id: row.get(0)?,
        name: row.get(1)?,
        display_name: row.get(2)?,
        description: row.get(3)?,
        created_at: row.get(4)?,
    })
}

fn version_row(row: &Row<'_>) -> rusqlite::Result<PipelineVersionRow> {
    Ok(PipelineVersionRow {
        pipeline_version_id: row.get(0)?,
        pipeline_id: row.get(1)?,
        name: row.get(2)?,
        display_name: row.get(3)?,
        description: row.get(4)?,
        created_at: row.get(5)?,
        pipeline_spec: row.get(6)?,
    })
}

fn api_run_row(row: &Row<'_>) -> rusqlite::Result<ApiRunRow> {
    Ok(ApiRunRow {
        run: RunRow::from_row(row)?,
        storage_state: row.get(10)?,
        fields: ApiRunFields {
            experiment_id: row.get(9)?,
            description: row.get(11)?,
            pipeline_id: row.get(12)?,
            pipeline_version_id: row.get(13)?,
            recurring_run_id: row.get(14)?,
            runtime_config: row.get(15)?,
            service_account: row.get(16)?,
        },
    })
}

fn recurring_row(row: &Row<'_>) -> rusqlite::Result<RecurringRunRow> {
    Ok(RecurringRunRow {
        recurring_run_id: row.get(0)?,
        display_name: row.get(1)?,
        experiment_id: row.get(2)?,
        mode: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        last_fired_at: row.get(6)?,
        body: row.get(7)?,
    })
}

fn one<T>(
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

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A unique-constraint failure becomes `Exists`; everything else stays a SQLite error.
fn unique(error: rusqlite::Error, what: &'static str, name: &str) -> StoreError {
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

impl Store {
    /// The first row of a query, if any.
    fn read_one<T>(
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

    // Experiments.

    pub fn create_experiment(
        &self,
        display_name: &str,
        description: &str,
    ) -> Result<ExperimentRow, StoreError> {
        let row = ExperimentRow {
            experiment_id: new_id(),
            display_name: display_name.to_owned(),
            description: description.to_owned(),
            created_at: now_ms(),
            storage_state: "AVAILABLE".into(),
            last_run_created_at: None,
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO kfbox_experiment (experiment_id, display_name, description, created_at, storage_state)
                 VALUES (?1, ?2, ?3, ?4, 'AVAILABLE')",
                params![row.experiment_id, row.display_name, row.description, row.created_at],
            )
            .map_err(|e| unique(e, "experiment", display_name))?;
            Ok(())
        })?;
        Ok(row)
    }

    /// The `Default` experiment (created if it was deleted).
    pub fn default_experiment(&self) -> Result<ExperimentRow, StoreError> {
        let id = self.write(default_experiment_id)?;
        self.experiment(&id)
    }

    pub fn experiment(&self, id: &str) -> Result<ExperimentRow, StoreError> {
        one(self, &EXPERIMENTS, id, experiment_row)
    }

    pub fn list_experiments(&self, query: &ListQuery) -> Result<Page<ExperimentRow>, StoreError> {
        self.list(&EXPERIMENTS, query, experiment_row)
    }

    /// Archive or unarchive an experiment; archiving also archives its runs, as the backend.
    pub fn set_experiment_storage(&self, id: &str, archived: bool) -> Result<(), StoreError> {
        let state = if archived { "ARCHIVED" } else { "AVAILABLE" };
        self.experiment(id)?;
        self.write(|tx| {
            apply(
                tx,
                "UPDATE kfbox_experiment SET storage_state = ?2 WHERE experiment_id = ?1",
                params![id, state],
            )?;
            if archived {
                apply(
                    tx,
                    "UPDATE kfbox_api_run SET storage_state = 'ARCHIVED' WHERE experiment_id = ?1",
                    params![id],
                )?;
            }
            Ok(())
        })
    }

    /// Delete an experiment; its runs stay, under no experiment.
    pub fn delete_experiment(&self, id: &str) -> Result<(), StoreError> {
        self.experiment(id)?;
        self.write(|tx| {
            apply(
                tx,
                "DELETE FROM kfbox_experiment WHERE experiment_id = ?1",
                params![id],
            )?;
            apply(
                tx,
                "UPDATE kfbox_recurring_run SET mode = 'DISABLE' WHERE experiment_id = ?1",
                params![id],
            )
        })
    }

    // Pipelines and versions.

    /// Create a pipeline, and its first version when `version` is given (one transaction).
    pub fn create_pipeline(
        &self,
        name: &str,
        display_name: &str,
        description: &str,
        version: Option<(&str, &str, &str)>,
        spec: &str,
    ) -> Result<(PipelineRow, Option<PipelineVersionRow>), StoreError> {
        let pipeline = PipelineRow {
            pipeline_id: new_id(),
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            description: description.to_owned(),
            created_at: now_ms(),
        };
        let version = version.map(|(name, display_name, description)| PipelineVersionRow {
            pipeline_version_id: new_id(),
            pipeline_id: pipeline.pipeline_id.clone(),
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            description: description.to_owned(),
            created_at: pipeline.created_at,
            pipeline_spec: spec.to_owned(),
        });
        self.write(|tx| {
            tx.execute(
                "INSERT INTO kfbox_pipeline (pipeline_id, name, display_name, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![pipeline.pipeline_id, pipeline.name, pipeline.display_name, pipeline.description, pipeline.created_at],
            )
            .map_err(|e| unique(e, "pipeline", name))?;
            if let Some(v) = &version {
                insert_version(tx, v)?;
            }
            Ok(())
        })?;
        Ok((pipeline, version))
    }

    pub fn create_pipeline_version(
        &self,
        pipeline_id: &str,
        name: &str,
        display_name: &str,
        description: &str,
        spec: &str,
    ) -> Result<PipelineVersionRow, StoreError> {
        self.pipeline(pipeline_id)?;
        let version = PipelineVersionRow {
            pipeline_version_id: new_id(),
            pipeline_id: pipeline_id.to_owned(),
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            description: description.to_owned(),
            created_at: now_ms(),
            pipeline_spec: spec.to_owned(),
        };
        self.write(|tx| insert_version(tx, &version))?;
        Ok(version)
    }

    pub fn pipeline(&self, id: &str) -> Result<PipelineRow, StoreError> {
        one(self, &PIPELINES, id, pipeline_row)
    }

    pub fn pipeline_by_name(&self, name: &str) -> Result<PipelineRow, StoreError> {
        let sql = format!(
            "SELECT {} FROM kfbox_pipeline WHERE name = ?1",
            PIPELINES.select.join(", ")
        );
        self.read_one(&sql, [name], pipeline_row)?
            .ok_or_else(|| StoreError::NotFound {
                what: "pipelines",
                id: name.to_owned(),
            })
    }

    pub fn list_pipelines(&self, query: &ListQuery) -> Result<Page<PipelineRow>, StoreError> {
        self.list(&PIPELINES, query, pipeline_row)
    }

    /// Delete a pipeline; one with versions only with `cascade`, as the backend.
    pub fn delete_pipeline(&self, id: &str, cascade: bool) -> Result<(), StoreError> {
        self.pipeline(id)?;
        self.write(|tx| {
            let versions: i64 = tx.query_row(
                "SELECT COUNT(*) FROM kfbox_pipeline_version WHERE pipeline_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            if versions > 0 && !cascade {
                return Err(StoreError::Precondition(format!(
                    "pipeline {id} has {versions} version(s); delete them first, or pass cascade=true"
                )));
            }
            apply(tx, "DELETE FROM kfbox_pipeline_version WHERE pipeline_id = ?1", params![id])?;
            apply(tx, "DELETE FROM kfbox_pipeline WHERE pipeline_id = ?1", params![id])
        })
    }

    pub fn pipeline_version(&self, id: &str) -> Result<PipelineVersionRow, StoreError> {
        one(self, &VERSIONS, id, version_row)
    }

    /// The newest version of a pipeline: the one runs get when they name only the pipeline.
    pub fn latest_pipeline_version(
        &self,
        pipeline_id: &str,
    ) -> Result<PipelineVersionRow, StoreError> {
        let sql = format!(
            "SELECT {} FROM kfbox_pipeline_version WHERE pipeline_id = ?1 ORDER BY created_at DESC, pipeline_version_id DESC LIMIT 1",
            VERSIONS.select.join(", ")
        );
        self.read_one(&sql, [pipeline_id], version_row)?
            .ok_or_else(|| {
                StoreError::Precondition(format!("pipeline {pipeline_id} has no versions"))
            })
    }

    pub fn list_pipeline_versions(
        &self,
        pipeline_id: &str,
        query: &ListQuery,
    ) -> Result<Page<PipelineVersionRow>, StoreError> {
        self.pipeline(pipeline_id)?;
        let mut query = query.clone();
        query.conditions.push(crate::listing::Condition {
            field: "pipeline_id".into(),
            op: crate::listing::Op::Equals,
            operand: crate::listing::Operand::Text(pipeline_id.to_owned()),
        });
        self.list(&VERSIONS, &query, version_row)
    }

    pub fn delete_pipeline_version(&self, id: &str) -> Result<(), StoreError> {
        self.pipeline_version(id)?;
        self.write(|tx| {
            apply(
                tx,
                "DELETE FROM kfbox_pipeline_version WHERE pipeline_version_id = ?1",
                params![id],
            )
        })
    }

    // Runs.

    /// Record what the API knows about a run that `begin_run` started.
    pub fn record_api_run(&self, run_id: &str, fields: &ApiRunFields) -> Result<(), StoreError> {
        self.write(|tx| {
            apply(
                tx,
                "UPDATE kfbox_api_run SET experiment_id = COALESCE(?2, experiment_id), description = ?3, pipeline_id = ?4,
                   pipeline_version_id = ?5, recurring_run_id = ?6, runtime_config = ?7, service_account = ?8
                 WHERE run_id = ?1",
                params![
                    run_id,
                    fields.experiment_id,
                    fields.description,
                    fields.pipeline_id,
                    fields.pipeline_version_id,
                    fields.recurring_run_id,
                    fields.runtime_config,
                    fields.service_account,
                ],
            )
        })
    }

    /// A run by its full id, with its API fields.
    pub fn api_run(&self, run_id: &str) -> Result<ApiRunRow, StoreError> {
        one(self, &RUNS, run_id, api_run_row).map_err(|e| match e {
            StoreError::NotFound { id, .. } => StoreError::RunNotFound(id),
            other => other,
        })
    }

    /// The spec a run was created from through the API (runs of `kfbox run` have none here).
    pub fn api_run_spec(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        self.read_one(
            "SELECT pipeline_spec FROM kfbox_api_run WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )
    }

    pub fn list_api_runs(&self, query: &ListQuery) -> Result<Page<ApiRunRow>, StoreError> {
        self.list(&RUNS, query, api_run_row)
    }

    pub fn set_run_storage(&self, run_id: &str, archived: bool) -> Result<(), StoreError> {
        let state = if archived { "ARCHIVED" } else { "AVAILABLE" };
        self.api_run(run_id)?;
        self.write(|tx| {
            apply(
                tx,
                "UPDATE kfbox_api_run SET storage_state = ?2 WHERE run_id = ?1",
                params![run_id, state],
            )
        })
    }

    /// Runs of a recurring run that have not ended.
    pub fn active_runs_of(&self, recurring_run_id: &str) -> Result<i64, StoreError> {
        Ok(self
            .read_one(
                "SELECT COUNT(*) FROM kfbox_api_run a JOIN kfbox_run r ON r.run_id = a.run_id
                 WHERE a.recurring_run_id = ?1 AND r.state = 'RUNNING'",
                [recurring_run_id],
                |r| r.get(0),
            )?
            .unwrap_or(0))
    }

    // Recurring runs.

    pub fn create_recurring_run(&self, row: &RecurringRunRow) -> Result<(), StoreError> {
        self.write(|tx| {
            apply(
                tx,
                "INSERT INTO kfbox_recurring_run (recurring_run_id, display_name, experiment_id, mode, created_at, updated_at, last_fired_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    row.recurring_run_id,
                    row.display_name,
                    row.experiment_id,
                    row.mode,
                    row.created_at,
                    row.updated_at,
                    row.last_fired_at,
                    row.body
                ],
            )
        })
    }

    pub fn recurring_run(&self, id: &str) -> Result<RecurringRunRow, StoreError> {
        one(self, &RECURRING, id, recurring_row)
    }

    pub fn list_recurring_runs(
        &self,
        query: &ListQuery,
    ) -> Result<Page<RecurringRunRow>, StoreError> {
        self.list(&RECURRING, query, recurring_row)
    }

    /// Every enabled recurring run, for the scheduler.
    pub fn enabled_recurring_runs(&self) -> Result<Vec<RecurringRunRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM kfbox_recurring_run WHERE mode = 'ENABLE'",
            RECURRING.select.join(", ")
        );
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement
            .query_map([], recurring_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn set_recurring_mode(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        self.recurring_run(id)?;
        let mode = if enabled { "ENABLE" } else { "DISABLE" };
        self.write(|tx| {
            apply(
                tx,
                "UPDATE kfbox_recurring_run SET mode = ?2, updated_at = ?3 WHERE recurring_run_id = ?1",
                params![id, mode, now_ms()],
            )
        })
    }

    /// Note the schedule time of the run just started for a recurring run.
    pub fn mark_recurring_fired(&self, id: &str, scheduled_at: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            apply(
                tx,
                "UPDATE kfbox_recurring_run SET last_fired_at = ?2 WHERE recurring_run_id = ?1",
                params![id, scheduled_at],
            )
        })
    }

    pub fn delete_recurring_run(&self, id: &str) -> Result<(), StoreError> {
        self.recurring_run(id)?;
        self.write(|tx| {
            apply(
                tx,
                "DELETE FROM kfbox_recurring_run WHERE recurring_run_id = ?1",
                params![id],
            )
        })
    }
}

/// The `Default` experiment's id, creating the experiment when it is missing.
pub(crate) fn default_experiment_id(tx: &rusqlite::Transaction<'_>) -> Result<String, StoreError> {
    let found: Option<String> = tx
        .prepare_cached("SELECT experiment_id FROM kfbox_experiment WHERE display_name = ?1")?
        .query_row([DEFAULT_EXPERIMENT], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    let id = new_id();
    apply(
        tx,
        "INSERT INTO kfbox_experiment (experiment_id, display_name, description, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, DEFAULT_EXPERIMENT, DEFAULT_DESCRIPTION, now_ms()],
    )?;
    Ok(id)
}

/// One statement through the statement cache, its row count unused.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    exec(tx, sql, params)?;
    Ok(())
}

fn insert_version(
    tx: &rusqlite::Transaction<'_>,
    version: &PipelineVersionRow,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO kfbox_pipeline_version (pipeline_version_id, pipeline_id, name, display_name, description, created_at, pipeline_spec)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            version.pipeline_version_id,
            version.pipeline_id,
            version.name,
            version.display_name,
            version.description,
            version.created_at,
            version.pipeline_spec
        ],
    )
    .map_err(|e| unique(e, "pipeline version", &version.name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use crate::{Condition, ListQuery, NewRun, Op, Operand, Store, StoreError};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kfbox.sqlite")).unwrap();
        (dir, store)
    }

    fn names(store: &Store, query: &ListQuery) -> (Vec<String>, Option<String>) {
        let page = store.list_experiments(query).unwrap();
        (
            page.items.into_iter().map(|e| e.display_name).collect(),
            page.next_page_token,
        )
    }

    #[test]
    fn lists_page_by_key_in_either_direction_and_tokens_keep_their_sort() {
        let (_dir, store) = store();
        for name in ["c", "a", "e", "b", "d"] {
            store.create_experiment(name, "").unwrap();
        }
        let mut query = ListQuery {
            sort_by: Some("display_name".into()),
            descending: true,
            page_size: 2,
            ..ListQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let (page, token) = names(&store, &query);
            seen.extend(page);
            match token {
                Some(token) => query.page_token = Some(token),
                None => break,
            }
        }
        // `Default` exists from the start.
        assert_eq!(seen, ["e", "d", "c", "b", "a", "Default"]);
        let first = store
            .list_experiments(&ListQuery {
                page_size: 2,
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(first.total_size, 6);
        let other_sort = ListQuery {
            sort_by: Some("display_name".into()),
            page_size: 2,
            page_token: first.next_page_token,
            ..ListQuery::default()
        };
        assert!(matches!(
            store.list_experiments(&other_sort),
            Err(StoreError::BadPageToken(_))
        ));
    }

    #[test]
    fn conditions_filter_and_unknown_fields_are_named() {
        let (_dir, store) = store();
        for name in ["train-a", "train-b", "eval"] {
            store.create_experiment(name, "").unwrap();
        }
        let query = |conditions: Vec<Condition>| ListQuery {
            conditions,
            sort_by: Some("name".into()),
            page_size: 10,
            ..ListQuery::default()
        };
        let substring = Condition {
            field: "display_name".into(),
            op: Op::IsSubstring,
            operand: Operand::Text("train".into()),
        };
        assert_eq!(
            names(&store, &query(vec![substring])).0,
            ["train-a", "train-b"]
        );
        let among = Condition {
            field: "name".into(),
            op: Op::In,
            operand: Operand::Texts(vec!["eval".into(), "train-b".into()]),
        };
        assert_eq!(names(&store, &query(vec![among])).0, ["eval", "train-b"]);
        let future = Condition {
            field: "created_at".into(),
            op: Op::GreaterThan,
            // Seconds, as the backend counts them: no experiment is that new.
            operand: Operand::Int(4_000_000_000),
        };
        assert!(names(&store, &query(vec![future])).0.is_empty());
        let unknown = Condition {
            field: "colour".into(),
            op: Op::Equals,
            operand: Operand::Text("red".into()),
        };
        match store.list_experiments(&query(vec![unknown])) {
            Err(e @ StoreError::UnknownField { .. }) => {
                assert!(e.to_string().contains("`colour`"), "{e}");
                assert!(e.to_string().contains("display_name"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let mistyped = Condition {
            field: "created_at".into(),
            op: Op::Equals,
            operand: Operand::Text("yesterday".into()),
        };
        assert!(matches!(
            store.list_experiments(&query(vec![mistyped])),
            Err(StoreError::BadFilter(_))
        ));
        assert!(matches!(
            store.create_experiment("eval", ""),
            Err(StoreError::Exists { .. })
        ));
    }

    #[test]
    fn runs_outside_the_api_list_under_default_and_deleting_a_run_drops_its_api_row() {
        let (dir, store) = store();
        let default = store.default_experiment().unwrap();
        assert_eq!(store.default_experiment().unwrap(), default);
        let run_dir = dir.path().join("runs/r1");
        std::fs::create_dir_all(&run_dir).unwrap();
        let handle = store
            .begin_run(&NewRun {
                run_id: "r1".into(),
                display_name: "r1".into(),
                pipeline_name: "p".into(),
                resource_name: "p-r1".into(),
                run_dir: run_dir.display().to_string(),
                parameters: Map::new(),
                pipeline_spec: String::new(),
                experiment_id: None,
            })
            .unwrap();
        let run = store.api_run("r1").unwrap();
        assert_eq!(
            run.fields.experiment_id.as_deref(),
            Some(default.experiment_id.as_str())
        );
        assert_eq!(run.storage_state, "AVAILABLE");
        store.set_run_storage("r1", true).unwrap();
        assert_eq!(store.api_run("r1").unwrap().storage_state, "ARCHIVED");
        store
            .finish_run(
                &handle,
                &crate::RunOutcome {
                    state: "SUCCEEDED".into(),
                    error: None,
                    outputs: Map::new(),
                    output_artifacts: Map::new(),
                },
            )
            .unwrap();
        let row = store.api_run("r1").unwrap().run;
        store.discard_run(&row, &dir.path().join("runs")).unwrap();
        assert!(matches!(
            store.api_run("r1"),
            Err(StoreError::RunNotFound(_))
        ));
        assert!(!run_dir.exists());
    }

    #[test]
    fn a_run_sets_the_last_run_of_its_own_experiment_only() {
        let (dir, store) = store();
        let default = store.default_experiment().unwrap();
        let other = store.create_experiment("eval", "").unwrap();
        let begin = |id: &str, experiment_id: Option<String>| {
            store
                .begin_run(&NewRun {
                    run_id: id.into(),
                    display_name: id.into(),
                    pipeline_name: "p".into(),
                    resource_name: format!("p-{id}"),
                    run_dir: dir.path().join(id).display().to_string(),
                    parameters: Map::new(),
                    pipeline_spec: String::new(),
                    experiment_id,
                })
                .unwrap();
        };
        begin("in-eval", Some(other.experiment_id.clone()));
        assert!(store
            .experiment(&other.experiment_id)
            .unwrap()
            .last_run_created_at
            .is_some());
        assert_eq!(
            store
                .experiment(&default.experiment_id)
                .unwrap()
                .last_run_created_at,
            None,
            "a run in another experiment is not Default's last run"
        );
        begin("from-the-cli", None);
        assert!(store
            .experiment(&default.experiment_id)
            .unwrap()
            .last_run_created_at
            .is_some());
        assert_eq!(
            store.api_run("in-eval").unwrap().fields.experiment_id,
            Some(other.experiment_id)
        );
    }
}
