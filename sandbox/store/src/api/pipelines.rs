//! Pipelines: named, each with its versions (see `versions`).

use rusqlite::{params, Row};

use crate::db::Store;
use crate::error::StoreError;
use crate::listing::{Field, ListQuery, Page, Table};
use crate::sql::{apply, new_id, now_ms, one, unique};

use super::versions::{insert_version, PipelineVersionRow};

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRow {
    pub pipeline_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub created_at: i64,
}

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
    run_values: false,
};

fn pipeline_row(row: &Row<'_>) -> rusqlite::Result<PipelineRow> {
    Ok(PipelineRow {
        pipeline_id: row.get(0)?,
        name: row.get(1)?,
        display_name: row.get(2)?,
        description: row.get(3)?,
        created_at: row.get(4)?,
    })
}

impl Store {
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
}
