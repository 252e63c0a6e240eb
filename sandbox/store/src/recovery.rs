//! Runs whose kfbox process died (kill -9, power loss, a crash) are found on the next open and
//! marked FAILED, with every execution still RUNNING.
//!
//! A run records its process id and that process's start time: a pid alone could have been
//! reused by an unrelated process since. Steps are noted the same way (by the executor, in the
//! file their execution's `kfbox.process_file` names), and a dead run's steps still running
//! are stopped through `kfbox_step::process`.

use std::path::Path;

use kfbox_step::process::{stop_noted_process, ProcessIdentity};
use rusqlite::{params, OptionalExtension};

use crate::db::Store;
use crate::error::StoreError;
use crate::props;
use crate::record::end_run;
use crate::sql::{exec, now_ms, put_props, state, Owner};
use crate::value::Prop;

/// Every `kfbox_run` column from MLMD's rows: the run context, its properties, its parent
/// pipeline context and its root execution.
const REBUILD_RUN_INDEX: &str = "
INSERT OR REPLACE INTO kfbox_run (run_id, context_id, root_execution_id, display_name,
  pipeline_name, state, created_at, finished_at, error, run_dir, pid, pid_started)
SELECT c.name, c.id,
  (SELECT e.id FROM Execution e JOIN Type et ON et.id = e.type_id
     WHERE et.name = 'system.DAGExecution' AND e.name = 'run/' || c.name),
  COALESCE((SELECT string_value FROM ContextProperty
     WHERE context_id = c.id AND name = 'kfbox.display_name'), c.name),
  COALESCE((SELECT p.name FROM ParentContext pc JOIN Context p ON p.id = pc.parent_context_id
     WHERE pc.context_id = c.id), ''),
  COALESCE((SELECT string_value FROM ContextProperty
     WHERE context_id = c.id AND name = 'kfbox.state'), 'FAILED'),
  COALESCE((SELECT int_value FROM ContextProperty
     WHERE context_id = c.id AND name = 'kfbox.created_at'), c.create_time_since_epoch),
  (SELECT int_value FROM ContextProperty WHERE context_id = c.id AND name = 'kfbox.finished_at'),
  (SELECT string_value FROM ContextProperty WHERE context_id = c.id AND name = 'kfbox.error'),
  COALESCE((SELECT string_value FROM ContextProperty
     WHERE context_id = c.id AND name = 'kfbox.run_dir'), ''),
  (SELECT int_value FROM ContextProperty WHERE context_id = c.id AND name = 'kfbox.pid'),
  (SELECT int_value FROM ContextProperty WHERE context_id = c.id AND name = 'kfbox.pid_started')
FROM Context c JOIN Type t ON t.id = c.type_id
WHERE t.name = 'system.PipelineRun' AND t.type_kind = 2";

impl Store {
    /// Rebuild kfbox's run index from MLMD's records alone (for migrations that reshape it,
    /// or a file whose index was lost). Returns the number of runs indexed.
    pub fn rebuild_run_index(&self) -> Result<usize, StoreError> {
        self.write(|tx| {
            exec(tx, "DELETE FROM kfbox_run", [])?;
            Ok(exec(tx, REBUILD_RUN_INDEX, [])?)
        })
    }

    /// Whether the kfbox process that runs `run_id` is still alive.
    pub(crate) fn run_process_alive(&self, run_id: &str) -> Result<bool, StoreError> {
        let (pid, started): (Option<i64>, Option<i64>) = self.conn().query_row(
            "SELECT pid, pid_started FROM kfbox_run WHERE run_id = ?1",
            [run_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(pid.is_some_and(|pid| {
            ProcessIdentity {
                pid,
                started: started.unwrap_or(0),
            }
            .is_alive()
        }))
    }

    /// Mark runs whose kfbox process is gone as FAILED (done on every open; callers that
    /// watch a run for long call it again).
    /// Returns what was recovered, one sentence per run.
    pub fn recover_abandoned_runs(&self) -> Result<Vec<String>, StoreError> {
        let mut recovered = Vec::new();
        let active: Vec<(String, i64, Option<i64>, Option<i64>)> = {
            let conn = self.conn();
            let mut statement = conn.prepare(
                "SELECT run_id, context_id, pid, pid_started FROM kfbox_run WHERE state = 'RUNNING'",
            )?;
            let rows = statement
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        for (run_id, context, pid, started) in active {
            let pid = pid.unwrap_or(0);
            let owner = ProcessIdentity {
                pid,
                started: started.unwrap_or(0),
            };
            if owner.is_alive() {
                continue;
            }
            let error = format!(
                "the kfbox process running this run (pid {pid}) ended without finishing it (killed or crashed)"
            );
            let mut stopped = 0;
            let recovered_now = self.write(|tx| {
                // Another process may have recovered it first.
                let still_running: bool = tx.query_row(
                    "SELECT COUNT(*) > 0 FROM kfbox_run WHERE run_id = ?1 AND state = 'RUNNING'",
                    [&run_id],
                    |r| r.get(0),
                )?;
                if !still_running {
                    return Ok(false);
                }
                let now = now_ms();
                let running: Vec<i64> = tx
                    .prepare(
                        "SELECT e.id FROM Association a JOIN Execution e ON e.id = a.execution_id
                         WHERE a.context_id = ?1 AND e.last_known_state = ?2",
                    )?
                    .query_map(params![context, state::RUNNING], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for execution in running {
                    let note: Option<String> = tx
                        .prepare_cached(
                            "SELECT string_value FROM ExecutionProperty WHERE execution_id = ?1 AND name = ?2 AND is_custom_property = 1",
                        )?
                        .query_row(params![execution, props::PROCESS_FILE], |r| r.get(0))
                        .optional()?;
                    if note.is_some_and(|note| stop_noted_process(Path::new(&note))) {
                        stopped += 1;
                    }
                    exec(
                        tx,
                        "UPDATE Execution SET last_known_state = ?2, last_update_time_since_epoch = ?3 WHERE id = ?1",
                        params![execution, state::FAILED, now],
                    )?;
                    put_props(
                        tx,
                        Owner::Execution(execution),
                        &[
                            (props::STATE, Prop::Text("FAILED".into())),
                            (props::ERROR, Prop::Text(error.clone())),
                            (
                                props::FINISHED_AT,
                                Prop::Text(
                                    chrono::Utc::now()
                                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                                ),
                            ),
                        ],
                    )?;
                }
                end_run(tx, &run_id, context, "FAILED", Some(&error), now)?;
                Ok(true)
            })?;
            if recovered_now {
                let mut message = format!("run {run_id}: {error}; marked FAILED");
                if stopped > 0 {
                    message.push_str(&format!(", and stopped {stopped} step(s) it left running"));
                }
                recovered.push(message);
            }
        }
        Ok(recovered)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use crate::db::Store;
    use crate::query::RunFilter;
    use crate::record::{NewRun, RunOutcome};

    #[test]
    fn the_run_index_is_rebuilt_from_mlmd_records_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kfbox.sqlite")).unwrap();
        for i in 0..3 {
            let run = store
                .begin_run(&NewRun {
                    run_id: format!("run-{i}"),
                    display_name: format!("name-{i}"),
                    pipeline_name: "p".into(),
                    resource_name: format!("p-{i}"),
                    run_dir: format!("/runs/{i}"),
                    parameters: Map::new(),
                    pipeline_spec: String::new(),
                    experiment_id: None,
                })
                .unwrap();
            if i < 2 {
                let outcome = RunOutcome {
                    state: if i == 0 { "SUCCEEDED" } else { "FAILED" }.into(),
                    error: (i == 1).then(|| "boom".to_owned()),
                    outputs: Map::new(),
                    output_artifacts: Map::new(),
                };
                store.finish_run(&run, &outcome).unwrap();
            }
        }
        let listed = |store: &Store| -> Vec<String> {
            store
                .list_runs(&RunFilter::default(), None, 10)
                .unwrap()
                .runs
                .iter()
                .map(|r| serde_json::to_string(r).unwrap())
                .collect()
        };
        let before = listed(&store);
        assert_eq!(before.len(), 3);
        assert_eq!(store.rebuild_run_index().unwrap(), 3);
        assert_eq!(listed(&store), before);
        // The live run keeps its process, so recovery still tells it from a dead one.
        drop(store);
        let reopened = Store::open(&dir.path().join("kfbox.sqlite")).unwrap();
        let running = reopened
            .list_runs(
                &RunFilter {
                    state: Some("RUNNING".into()),
                    ..RunFilter::default()
                },
                None,
                10,
            )
            .unwrap();
        assert_eq!(
            running.runs.len(),
            1,
            "this process is alive: run-2 still runs"
        );
    }
}
