//! Pipeline versions: each holds a compiled spec; runs name a version, or a pipeline's newest.

use rusqlite::{params, Row};

use crate::db::Store;
use crate::error::StoreError;
use crate::listing::{Condition, Field, ListQuery, Op, Operand, Page, Table};
use crate::sql::{apply, new_id, now_ms, one, unique};

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
    run_values: false,
};

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

pub(super) fn insert_version(
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

impl Store {
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
        query.conditions.push(Condition {
            field: "pipeline_id".into(),
            op: Op::Equals,
            operand: Operand::Text(pipeline_id.to_owned()),
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
}
