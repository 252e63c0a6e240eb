//! The API's fields of runs: experiment, storage state and the request that created them.
//!
//! Every run has a `kfbox_api_run` row from `begin_run` on; runs started by `kfbox run` keep
//! its defaults: the `Default` experiment, AVAILABLE.

use std::collections::BTreeMap;

use rusqlite::{params, Row};
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::StoreError;
use crate::listing::{Field, Join, ListQuery, Page, Table};
use crate::run_index::RunRow;
use crate::run_values::json_value;
use crate::sql::{apply, one};

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
    run_values: true,
};

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

impl Store {
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

    /// The names runs have values under (`parameters.lr`, `metrics.accuracy`), sorted: what a
    /// run list can show, sort and filter by.
    pub fn run_value_names(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let names = conn
            .prepare_cached(
                "SELECT n.name FROM kfbox_value_name n
                 WHERE EXISTS (SELECT 1 FROM kfbox_run_value v WHERE v.name_id = n.id)
                 ORDER BY n.name LIMIT 1000",
            )?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// Each run's parameter and metric values, by name.
    pub fn run_values(
        &self,
        run_ids: &[String],
    ) -> Result<BTreeMap<String, Map<String, Value>>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT n.name, v.value FROM kfbox_run_value v JOIN kfbox_value_name n ON n.id = v.name_id
             WHERE v.run_id = ?1",
        )?;
        let mut all = BTreeMap::new();
        for run_id in run_ids {
            let values = statement
                .query_map([run_id], |row| {
                    Ok((row.get::<_, String>(0)?, json_value(row.get(1)?)))
                })?
                .collect::<Result<Map<_, _>, _>>()?;
            all.insert(run_id.clone(), values);
        }
        Ok(all)
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
}
