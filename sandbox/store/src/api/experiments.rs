//! Experiments: the `Default` one exists before anyone asks, as on a cluster.

use rusqlite::{params, OptionalExtension, Row};

use crate::db::Store;
use crate::error::StoreError;
use crate::listing::{Field, ListQuery, Page, Table};
use crate::sql::{apply, new_id, now_ms, one, unique};

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
    run_values: false,
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

impl Store {
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
}
