//! Recurring runs: their schedules, modes and the last time each fired.

use rusqlite::{params, Row};

use crate::db::Store;
use crate::error::StoreError;
use crate::listing::{Field, ListQuery, Page, Table};
use crate::sql::{apply, now_ms, one};

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
    run_values: false,
};

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

impl Store {
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
