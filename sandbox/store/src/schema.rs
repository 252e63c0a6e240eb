//! The store's schema: ML Metadata's tables (schema version 10, as the `ml-metadata` package
//! expects them) and kfbox's own tables beside them, applied as numbered migrations.
//!
//! MLMD refuses a file unless every one of its tables exists with its exact columns, `MLMDEnv`
//! holds the single row `10` and its built-in simple types are present; so migration 1 creates
//! all of that exactly. kfbox's tables are list views over MLMD's rows and carry no fact that
//! MLMD does not also hold.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::StoreError;
use crate::run_values;

/// The MLMD schema version this store writes and reads.
pub const MLMD_SCHEMA_VERSION: i64 = 10;

/// Migrations in order; the store's version (`PRAGMA user_version`) is how many have run.
const MIGRATIONS: &[&str] = &[
    MLMD_TABLES_AND_RUN_INDEX,
    API_CATALOG,
    API_ROW_PER_RUN,
    run_values::RUN_VALUES,
];

/// The newest store version this build knows.
fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// MLMD's v10 tables and indexes for SQLite, column for column, plus kfbox's run index.
const MLMD_TABLES_AND_RUN_INDEX: &str = r#"
CREATE TABLE IF NOT EXISTS `Type` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT, `name` VARCHAR(255) NOT NULL, `version` VARCHAR(255),
  `type_kind` TINYINT(1) NOT NULL, `description` TEXT, `input_type` TEXT, `output_type` TEXT,
  `external_id` VARCHAR(255) UNIQUE);
CREATE TABLE IF NOT EXISTS `TypeProperty` (
  `type_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL, `data_type` INT NULL,
  PRIMARY KEY (`type_id`, `name`));
CREATE TABLE IF NOT EXISTS `ParentType` (
  `type_id` INT NOT NULL, `parent_type_id` INT NOT NULL, PRIMARY KEY (`type_id`, `parent_type_id`));
CREATE TABLE IF NOT EXISTS `Artifact` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT, `type_id` INT NOT NULL, `uri` TEXT, `state` INT,
  `name` VARCHAR(255), `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` INT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` INT NOT NULL DEFAULT 0, UNIQUE(`type_id`, `name`));
CREATE TABLE IF NOT EXISTS `ArtifactProperty` (
  `artifact_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL, `is_custom_property` TINYINT(1) NOT NULL,
  `int_value` INT, `double_value` DOUBLE, `string_value` TEXT, `byte_value` BLOB,
  `proto_value` BLOB, `bool_value` BOOLEAN,
  PRIMARY KEY (`artifact_id`, `name`, `is_custom_property`));
CREATE TABLE IF NOT EXISTS `Execution` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT, `type_id` INT NOT NULL, `last_known_state` INT,
  `name` VARCHAR(255), `external_id` VARCHAR(255) UNIQUE,
  `create_time_since_epoch` INT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` INT NOT NULL DEFAULT 0, UNIQUE(`type_id`, `name`));
CREATE TABLE IF NOT EXISTS `ExecutionProperty` (
  `execution_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL, `is_custom_property` TINYINT(1) NOT NULL,
  `int_value` INT, `double_value` DOUBLE, `string_value` TEXT, `byte_value` BLOB,
  `proto_value` BLOB, `bool_value` BOOLEAN,
  PRIMARY KEY (`execution_id`, `name`, `is_custom_property`));
CREATE TABLE IF NOT EXISTS `Event` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT, `artifact_id` INT NOT NULL, `execution_id` INT NOT NULL,
  `type` INT NOT NULL, `milliseconds_since_epoch` INT,
  UNIQUE(`artifact_id`, `execution_id`, `type`));
CREATE TABLE IF NOT EXISTS `EventPath` (
  `event_id` INT NOT NULL, `is_index_step` TINYINT(1) NOT NULL, `step_index` INT, `step_key` TEXT);
CREATE TABLE IF NOT EXISTS `MLMDEnv` (`schema_version` INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS `Context` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT, `type_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL,
  `external_id` VARCHAR(255) UNIQUE, `create_time_since_epoch` INT NOT NULL DEFAULT 0,
  `last_update_time_since_epoch` INT NOT NULL DEFAULT 0, UNIQUE(`type_id`, `name`));
CREATE TABLE IF NOT EXISTS `ContextProperty` (
  `context_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL, `is_custom_property` TINYINT(1) NOT NULL,
  `int_value` INT, `double_value` DOUBLE, `string_value` TEXT, `byte_value` BLOB,
  `proto_value` BLOB, `bool_value` BOOLEAN,
  PRIMARY KEY (`context_id`, `name`, `is_custom_property`));
CREATE TABLE IF NOT EXISTS `ParentContext` (
  `context_id` INT NOT NULL, `parent_context_id` INT NOT NULL,
  PRIMARY KEY (`context_id`, `parent_context_id`));
CREATE TABLE IF NOT EXISTS `Association` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT, `context_id` INT NOT NULL, `execution_id` INT NOT NULL,
  UNIQUE(`context_id`, `execution_id`));
CREATE TABLE IF NOT EXISTS `Attribution` (
  `id` INTEGER PRIMARY KEY AUTOINCREMENT, `context_id` INT NOT NULL, `artifact_id` INT NOT NULL,
  UNIQUE(`context_id`, `artifact_id`));

CREATE INDEX IF NOT EXISTS `idx_artifact_uri` ON `Artifact`(`uri`);
CREATE INDEX IF NOT EXISTS `idx_artifact_create_time_since_epoch` ON `Artifact`(`create_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_artifact_last_update_time_since_epoch` ON `Artifact`(`last_update_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_event_execution_id` ON `Event`(`execution_id`);
CREATE INDEX IF NOT EXISTS `idx_parentcontext_parent_context_id` ON `ParentContext`(`parent_context_id`);
CREATE INDEX IF NOT EXISTS `idx_type_name` ON `Type`(`name`);
CREATE INDEX IF NOT EXISTS `idx_execution_create_time_since_epoch` ON `Execution`(`create_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_execution_last_update_time_since_epoch` ON `Execution`(`last_update_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_context_create_time_since_epoch` ON `Context`(`create_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_context_last_update_time_since_epoch` ON `Context`(`last_update_time_since_epoch`);
CREATE INDEX IF NOT EXISTS `idx_eventpath_event_id` ON `EventPath`(`event_id`);
CREATE INDEX IF NOT EXISTS `idx_artifact_property_int` ON `ArtifactProperty`(`name`, `is_custom_property`, `int_value`) WHERE `int_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_artifact_property_double` ON `ArtifactProperty`(`name`, `is_custom_property`, `double_value`) WHERE `double_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_artifact_property_string` ON `ArtifactProperty`(`name`, `is_custom_property`, `string_value`) WHERE `string_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_execution_property_int` ON `ExecutionProperty`(`name`, `is_custom_property`, `int_value`) WHERE `int_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_execution_property_double` ON `ExecutionProperty`(`name`, `is_custom_property`, `double_value`) WHERE `double_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_execution_property_string` ON `ExecutionProperty`(`name`, `is_custom_property`, `string_value`) WHERE `string_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_context_property_int` ON `ContextProperty`(`name`, `is_custom_property`, `int_value`) WHERE `int_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_context_property_double` ON `ContextProperty`(`name`, `is_custom_property`, `double_value`) WHERE `double_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_context_property_string` ON `ContextProperty`(`name`, `is_custom_property`, `string_value`) WHERE `string_value` IS NOT NULL;
CREATE INDEX IF NOT EXISTS `idx_type_external_id` ON `Type`(`external_id`);
CREATE INDEX IF NOT EXISTS `idx_artifact_external_id` ON `Artifact`(`external_id`);
CREATE INDEX IF NOT EXISTS `idx_execution_external_id` ON `Execution`(`external_id`);
CREATE INDEX IF NOT EXISTS `idx_context_external_id` ON `Context`(`external_id`);

INSERT INTO `MLMDEnv` (`schema_version`) SELECT 10 WHERE NOT EXISTS (SELECT 1 FROM `MLMDEnv`);
INSERT INTO `Type` (`name`, `type_kind`)
  SELECT v.name, v.kind FROM (
    SELECT 'mlmd.Dataset' AS name, 1 AS kind UNION ALL SELECT 'mlmd.Model', 1
    UNION ALL SELECT 'mlmd.Metrics', 1 UNION ALL SELECT 'mlmd.Statistics', 1
    UNION ALL SELECT 'mlmd.Train', 0 UNION ALL SELECT 'mlmd.Transform', 0
    UNION ALL SELECT 'mlmd.Process', 0 UNION ALL SELECT 'mlmd.Evaluate', 0
    UNION ALL SELECT 'mlmd.Deploy', 0) AS v
  WHERE NOT EXISTS (SELECT 1 FROM `Type` WHERE `name` = v.name AND `version` IS NULL);

-- Reverse lookups MLMD lacks: lineage walks events by artifact, runs list executions by context.
CREATE INDEX `kfbox_event_artifact` ON `Event`(`artifact_id`, `type`);
CREATE INDEX `kfbox_association_execution` ON `Association`(`execution_id`);
CREATE INDEX `kfbox_attribution_artifact` ON `Attribution`(`artifact_id`);

-- One row per run, newest first: what `kfbox runs list` pages through.
CREATE TABLE `kfbox_run` (
  `run_id` TEXT PRIMARY KEY NOT NULL,
  `context_id` INTEGER NOT NULL,
  `root_execution_id` INTEGER,
  `display_name` TEXT NOT NULL,
  `pipeline_name` TEXT NOT NULL,
  `state` TEXT NOT NULL,
  `created_at` INTEGER NOT NULL,
  `finished_at` INTEGER,
  `error` TEXT,
  `run_dir` TEXT NOT NULL,
  `pid` INTEGER,
  `pid_started` INTEGER);
CREATE INDEX `kfbox_run_created` ON `kfbox_run`(`created_at` DESC, `run_id` DESC);
CREATE INDEX `kfbox_run_pipeline` ON `kfbox_run`(`pipeline_name`, `created_at` DESC, `run_id` DESC);
CREATE INDEX `kfbox_run_active` ON `kfbox_run`(`state`) WHERE `state` = 'RUNNING';
"#;

/// The API server's own records (experiments, pipelines and versions, recurring runs, the API
/// fields of runs), kept beside MLMD as the backend keeps them in its own database.
/// `kfbox_api_run.created_at` repeats the run's creation time so that one index serves a page
/// of an experiment's runs, newest first, however large or small the experiment.
const API_CATALOG: &str = r#"
CREATE TABLE `kfbox_experiment` (
  `experiment_id` TEXT PRIMARY KEY NOT NULL,
  `display_name` TEXT NOT NULL UNIQUE,
  `description` TEXT NOT NULL DEFAULT '',
  `created_at` INTEGER NOT NULL,
  `storage_state` TEXT NOT NULL DEFAULT 'AVAILABLE',
  `last_run_created_at` INTEGER);
CREATE INDEX `kfbox_experiment_created` ON `kfbox_experiment`(`created_at`, `experiment_id`);
CREATE TABLE `kfbox_pipeline` (
  `pipeline_id` TEXT PRIMARY KEY NOT NULL,
  `name` TEXT NOT NULL UNIQUE,
  `display_name` TEXT NOT NULL,
  `description` TEXT NOT NULL DEFAULT '',
  `created_at` INTEGER NOT NULL);
CREATE INDEX `kfbox_pipeline_created` ON `kfbox_pipeline`(`created_at`, `pipeline_id`);
CREATE TABLE `kfbox_pipeline_version` (
  `pipeline_version_id` TEXT PRIMARY KEY NOT NULL,
  `pipeline_id` TEXT NOT NULL,
  `name` TEXT NOT NULL,
  `display_name` TEXT NOT NULL,
  `description` TEXT NOT NULL DEFAULT '',
  `created_at` INTEGER NOT NULL,
  `pipeline_spec` TEXT NOT NULL,
  UNIQUE(`pipeline_id`, `name`));
CREATE INDEX `kfbox_pipeline_version_created` ON `kfbox_pipeline_version`(`pipeline_id`, `created_at`);
CREATE TABLE `kfbox_api_run` (
  `run_id` TEXT PRIMARY KEY NOT NULL,
  `experiment_id` TEXT,
  `storage_state` TEXT NOT NULL DEFAULT 'AVAILABLE',
  `description` TEXT NOT NULL DEFAULT '',
  `pipeline_id` TEXT,
  `pipeline_version_id` TEXT,
  `recurring_run_id` TEXT,
  `runtime_config` TEXT NOT NULL DEFAULT '{}',
  `service_account` TEXT NOT NULL DEFAULT '',
  `pipeline_spec` TEXT NOT NULL);
CREATE INDEX `kfbox_api_run_experiment` ON `kfbox_api_run`(`experiment_id`);
CREATE INDEX `kfbox_api_run_recurring` ON `kfbox_api_run`(`recurring_run_id`);
CREATE TABLE `kfbox_recurring_run` (
  `recurring_run_id` TEXT PRIMARY KEY NOT NULL,
  `display_name` TEXT NOT NULL,
  `experiment_id` TEXT,
  `mode` TEXT NOT NULL,
  `created_at` INTEGER NOT NULL,
  `updated_at` INTEGER NOT NULL,
  `last_fired_at` INTEGER,
  `body` TEXT NOT NULL);
"#;

/// Every run gets its API row (runs of `kfbox run` under the `Default` experiment, which
/// exists from here on), with its creation time repeated so that
/// `(experiment_id, created_at, run_id)` serves an experiment's newest-first pages however
/// large or small the experiment; and the run list sorts by name through an index.
const API_ROW_PER_RUN: &str = r#"
ALTER TABLE `kfbox_api_run` ADD COLUMN `created_at` INTEGER NOT NULL DEFAULT 0;
INSERT INTO `kfbox_experiment` (`experiment_id`, `display_name`, `description`, `created_at`)
  SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
           || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
         'Default', 'All runs created without specifying an experiment are grouped here.',
         CAST(strftime('%s', 'now') AS INTEGER) * 1000
  WHERE NOT EXISTS (SELECT 1 FROM `kfbox_experiment` WHERE `display_name` = 'Default');
INSERT INTO `kfbox_api_run` (`run_id`, `experiment_id`, `pipeline_spec`)
  SELECT `run_id`, (SELECT `experiment_id` FROM `kfbox_experiment` WHERE `display_name` = 'Default'), ''
  FROM `kfbox_run` WHERE `run_id` NOT IN (SELECT `run_id` FROM `kfbox_api_run`);
UPDATE `kfbox_api_run` SET `created_at` =
  (SELECT `created_at` FROM `kfbox_run` r WHERE r.`run_id` = `kfbox_api_run`.`run_id`);
UPDATE `kfbox_api_run` SET `experiment_id` =
  (SELECT `experiment_id` FROM `kfbox_experiment` WHERE `display_name` = 'Default')
  WHERE `experiment_id` IS NULL;
DROP INDEX `kfbox_api_run_experiment`;
CREATE INDEX `kfbox_api_run_experiment` ON `kfbox_api_run`(`experiment_id`, `created_at`, `run_id`);
CREATE INDEX `kfbox_api_run_created` ON `kfbox_api_run`(`created_at`, `run_id`);
CREATE INDEX `kfbox_run_name` ON `kfbox_run`(`display_name`, `run_id`);
"#;

/// Bring the schema up to date, or refuse a store that a newer kfbox (or MLMD) wrote.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let latest = latest_version();
    let version = user_version(conn)?;
    check_not_newer(version, latest)?;
    if version == latest {
        return check_mlmd_version(conn);
    }
    // Another process may be migrating right now: decide again under the write lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = user_version(&tx)?;
    check_not_newer(version, latest)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        if *sql == run_values::RUN_VALUES {
            run_values::backfill_parameters(&tx)?;
        }
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    check_mlmd_version(conn)
}

/// Check, without writing, that the store is at kfbox's current version (for read-only use).
pub fn check_current(conn: &Connection) -> Result<(), StoreError> {
    let latest = latest_version();
    let version = user_version(conn)?;
    check_not_newer(version, latest)?;
    if version < latest {
        return Err(StoreError::Precondition(format!(
            "the store is at version {version} and needs an upgrade to {latest}, which a read-only store cannot take"
        )));
    }
    check_mlmd_version(conn)
}

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

fn check_not_newer(found: i64, known: i64) -> Result<(), StoreError> {
    if found > known {
        Err(StoreError::NewerSchema { found, known })
    } else {
        Ok(())
    }
}

fn check_mlmd_version(conn: &Connection) -> Result<(), StoreError> {
    let found: Option<i64> = conn
        .query_row("SELECT MAX(schema_version) FROM MLMDEnv", [], |row| {
            row.get(0)
        })
        .optional()?
        .flatten();
    match found {
        Some(MLMD_SCHEMA_VERSION) => Ok(()),
        found => Err(StoreError::MlmdSchema {
            found: found.unwrap_or(0),
            known: MLMD_SCHEMA_VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn runs_recorded_before_the_api_catalog_join_the_default_experiment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kfbox.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MLMD_TABLES_AND_RUN_INDEX).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO kfbox_run (run_id, context_id, display_name, pipeline_name, state, created_at, run_dir)
             VALUES ('old', 1, 'old', 'p', 'SUCCEEDED', 1, '/tmp/old')",
            [],
        )
        .unwrap();
        drop(conn);
        let store = crate::db::Store::open(&path).unwrap();
        let default = store.default_experiment().unwrap();
        assert_eq!(default.experiment_id.len(), 36, "{default:?}");
        let run = store.api_run("old").unwrap();
        assert_eq!(run.fields.experiment_id, Some(default.experiment_id));
        assert_eq!(run.storage_state, "AVAILABLE");
    }

    #[test]
    fn a_store_with_the_first_catalog_gets_a_row_and_a_time_for_every_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kfbox.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MLMD_TABLES_AND_RUN_INDEX).unwrap();
        conn.execute_batch(API_CATALOG).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO kfbox_run (run_id, context_id, display_name, pipeline_name, state, created_at, run_dir)
               VALUES ('cli', 1, 'cli', 'p', 'SUCCEEDED', 1000, '/tmp/a'),
                      ('api', 2, 'api', 'p', 'SUCCEEDED', 2000, '/tmp/b');
             INSERT INTO kfbox_experiment (experiment_id, display_name, created_at) VALUES ('e1', 'mine', 1);
             INSERT INTO kfbox_api_run (run_id, experiment_id, pipeline_spec) VALUES ('api', 'e1', '{}');",
        )
        .unwrap();
        drop(conn);
        let store = crate::db::Store::open(&path).unwrap();
        let default = store.default_experiment().unwrap().experiment_id;
        assert_eq!(
            store.api_run("cli").unwrap().fields.experiment_id,
            Some(default)
        );
        assert_eq!(
            store
                .api_run("api")
                .unwrap()
                .fields
                .experiment_id
                .as_deref(),
            Some("e1")
        );
        let newest = store
            .list_api_runs(&crate::listing::ListQuery {
                descending: true,
                page_size: 1,
                ..crate::listing::ListQuery::default()
            })
            .unwrap();
        assert_eq!(newest.total_size, 2);
        assert_eq!(newest.items[0].run.run_id, "api");
    }
}
