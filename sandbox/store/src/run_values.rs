//! Each run's parameter values and logged metrics by name (`parameters.lr`,
//! `metrics.accuracy`), so that run lists sort and filter by them (as MLflow's runs table does)
//! through an index. A list view over MLMD's rows: the root execution's inputs and the run's
//! `system.Metrics` artifacts.
//!
//! Names live in `kfbox_value_name`; a list query refers to a name by its id there, an integer
//! the store itself issued, so that no text a client sends is ever part of the SQL.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use crate::error::StoreError;
use crate::props;
use crate::value::Prop;

pub(crate) const PARAMETERS: &str = "parameters.";
pub(crate) const METRICS: &str = "metrics.";

/// The tables, and the metrics of runs recorded before them (the parameters need Rust to
/// decode: [`backfill_parameters`]).
pub(crate) const RUN_VALUES: &str = r#"
CREATE TABLE `kfbox_value_name` (
  `id` INTEGER PRIMARY KEY,
  `name` TEXT NOT NULL UNIQUE);
CREATE TABLE `kfbox_run_value` (
  `name_id` INTEGER NOT NULL,
  `run_id` TEXT NOT NULL,
  `value`,
  PRIMARY KEY (`name_id`, `run_id`)) WITHOUT ROWID;
CREATE INDEX `kfbox_run_value_order` ON `kfbox_run_value`(`name_id`, `value`, `run_id`);
CREATE INDEX `kfbox_run_value_run` ON `kfbox_run_value`(`run_id`);
INSERT OR IGNORE INTO `kfbox_value_name` (`name`)
  SELECT 'metrics.' || p.name FROM ArtifactProperty p
  JOIN Artifact a ON a.id = p.artifact_id JOIN Type t ON t.id = a.type_id
  WHERE t.name = 'system.Metrics' AND p.name <> 'display_name'
    AND COALESCE(p.double_value, p.int_value) IS NOT NULL;
INSERT OR REPLACE INTO `kfbox_run_value` (`name_id`, `run_id`, `value`)
  SELECT n.id, r.run_id, COALESCE(p.double_value, p.int_value) FROM kfbox_run r
  JOIN Attribution at ON at.context_id = r.context_id
  JOIN Artifact a ON a.id = at.artifact_id JOIN Type t ON t.id = a.type_id
  JOIN ArtifactProperty p ON p.artifact_id = a.id
  JOIN kfbox_value_name n ON n.name = 'metrics.' || p.name
  WHERE t.name = 'system.Metrics' AND COALESCE(p.double_value, p.int_value) IS NOT NULL
  ORDER BY a.id;
"#;

/// The parameter values of runs recorded before the tables existed, from their roots' inputs.
pub(crate) fn backfill_parameters(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let roots: Vec<(String, Option<String>)> = tx
        .prepare(
            "SELECT r.run_id, p.string_value FROM kfbox_run r
             JOIN ExecutionProperty p ON p.execution_id = r.root_execution_id AND p.name = ?1",
        )?
        .query_map([props::INPUTS], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (run_id, text) in roots {
        if let Some(Prop::Struct(parameters)) = Prop::from_columns(None, None, text, None) {
            put_parameters(tx, &run_id, &parameters)?;
        }
    }
    Ok(())
}

pub(crate) fn put_parameters(
    tx: &Transaction<'_>,
    run_id: &str,
    parameters: &Map<String, Value>,
) -> Result<(), StoreError> {
    for (name, value) in parameters {
        let id = name_id_or_new(tx, &format!("{PARAMETERS}{name}"))?;
        exec(
            tx,
            "INSERT OR REPLACE INTO kfbox_run_value (name_id, run_id, value) VALUES (?1, ?2, ?3)",
            params![id, run_id, sql_value(value)],
        )?;
    }
    Ok(())
}

/// The metrics of `artifact`, when it is a `system.Metrics` one, as values of `run_id`
/// (a metric logged twice in a run keeps the last artifact's value).
pub(crate) fn put_metrics(
    tx: &Transaction<'_>,
    run_id: &str,
    artifact: i64,
) -> Result<(), StoreError> {
    const METRIC_PROPS: &str = "FROM ArtifactProperty p
         JOIN Artifact a ON a.id = p.artifact_id JOIN Type t ON t.id = a.type_id
         WHERE a.id = ?1 AND t.name = 'system.Metrics' AND p.name <> 'display_name'
           AND COALESCE(p.double_value, p.int_value) IS NOT NULL";
    exec(
        tx,
        &format!("INSERT OR IGNORE INTO kfbox_value_name (name) SELECT 'metrics.' || p.name {METRIC_PROPS}"),
        [artifact],
    )?;
    exec(
        tx,
        &format!(
            "INSERT OR REPLACE INTO kfbox_run_value (name_id, run_id, value)
             SELECT (SELECT n.id FROM kfbox_value_name n WHERE n.name = 'metrics.' || p.name), ?2,
                    COALESCE(p.double_value, p.int_value) {METRIC_PROPS}"
        ),
        params![artifact, run_id],
    )?;
    Ok(())
}

/// One statement through the connection's statement cache (as `sql::exec`, which sits above
/// the list views that read these values).
fn exec(tx: &Transaction<'_>, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params)
}

fn name_id_or_new(tx: &Transaction<'_>, name: &str) -> Result<i64, StoreError> {
    if let Some(id) = name_id(tx, name)? {
        return Ok(id);
    }
    exec(
        tx,
        "INSERT INTO kfbox_value_name (name) VALUES (?1)",
        [name],
    )?;
    Ok(tx.last_insert_rowid())
}

pub(crate) fn name_id(conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM kfbox_value_name WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?)
}

/// Numbers sort as numbers, text as text (after every number), anything else as its JSON.
fn sql_value(value: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(*b as i64),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Sql::Text(s.clone()),
        other => Sql::Text(other.to_string()),
    }
}

pub(crate) fn json_value(value: rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as Sql;
    match value {
        Sql::Integer(i) => Value::from(i),
        Sql::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Sql::Text(t) => Value::String(t),
        _ => Value::Null,
    }
}
