//! Debug executions: a task of a recorded run executed again by `kfbox debug`. Each is an
//! execution of the task's type in a `kfbox.Debug` context whose parent is the run's context,
//! so that MLMD readers and kfbox see it beside the run and never as one of its tasks; deleting
//! the run deletes them.

use rusqlite::params;
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::StoreError;
use crate::props;
use crate::query::{read_execution, ExecutionRow};
use crate::record::{context_named, type_id, ExecutionType, TypeKind};
use crate::run_index::RunRow;
use crate::sql::{exec, put_props, state, Owner};
use crate::value::Prop;

const DEBUG_CONTEXT: &str = "kfbox.Debug";

/// A debug execution, once it ended.
#[derive(Debug, Clone)]
pub struct DebugExecution {
    /// The execution of the run it re-executed.
    pub of_execution: i64,
    pub task_path: String,
    pub succeeded: bool,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: i64,
    /// Where it wrote its outputs (never the run's directory).
    pub outputs_dir: String,
    /// The output parameters it wrote.
    pub outputs: Map<String, Value>,
    /// `--code`: the file its function came from, when not the run's code.
    pub code: Option<String>,
}

impl Store {
    /// Record a debug execution of one of `run`'s tasks; its id.
    pub fn record_debug_execution(
        &self,
        run: &RunRow,
        debug: &DebugExecution,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            let context_type = type_id(tx, DEBUG_CONTEXT, TypeKind::Context)?;
            let (context, created) = context_named(
                tx,
                context_type,
                &format!("debug/{}", run.run_id),
                debug.started_at,
            )?;
            if created {
                exec(
                    tx,
                    "INSERT INTO ParentContext (context_id, parent_context_id) VALUES (?1, ?2)",
                    params![context, run.context_id],
                )?;
            }
            let execution_type = type_id(
                tx,
                ExecutionType::Container.type_name(),
                TypeKind::Execution,
            )?;
            let last_state = if debug.succeeded {
                state::COMPLETE
            } else {
                state::FAILED
            };
            exec(
                tx,
                "INSERT INTO Execution (type_id, last_known_state, create_time_since_epoch, last_update_time_since_epoch) VALUES (?1, ?2, ?3, ?4)",
                params![execution_type, last_state, debug.started_at, debug.finished_at],
            )?;
            let id = tx.last_insert_rowid();
            let mut values = vec![
                (props::PATH, Prop::Text(debug.task_path.clone())),
                (props::KIND, Prop::Text("debug".into())),
                (props::DEBUG_OF, Prop::Int(debug.of_execution)),
                (
                    props::STATE,
                    Prop::Text(if debug.succeeded { "SUCCEEDED" } else { "FAILED" }.into()),
                ),
                (props::STARTED_AT, Prop::Int(debug.started_at)),
                (props::FINISHED_AT, Prop::Int(debug.finished_at)),
                (props::DEBUG_OUTPUTS_DIR, Prop::Text(debug.outputs_dir.clone())),
                (props::OUTPUTS, Prop::Struct(debug.outputs.clone())),
            ];
            values.extend(debug.error.clone().map(|e| (props::ERROR, Prop::Text(e))));
            values.extend(debug.code.clone().map(|c| (props::DEBUG_CODE, Prop::Text(c))));
            put_props(tx, Owner::Execution(id), &values)?;
            exec(
                tx,
                "INSERT INTO Association (context_id, execution_id) VALUES (?1, ?2)",
                params![context, id],
            )?;
            Ok(id)
        })
    }

    /// The debug executions of `run`'s tasks, oldest first.
    pub fn debug_executions(&self, run: &RunRow) -> Result<Vec<ExecutionRow>, StoreError> {
        let conn = self.conn();
        let ids = conn
            .prepare_cached(
                "SELECT a.execution_id FROM ParentContext p
                 JOIN Context c ON c.id = p.context_id
                 JOIN Type t ON t.id = c.type_id AND t.name = ?2
                 JOIN Association a ON a.context_id = c.id
                 WHERE p.parent_context_id = ?1 ORDER BY a.execution_id",
            )?
            .query_map(params![run.context_id, DEBUG_CONTEXT], |row| {
                row.get::<_, i64>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        ids.into_iter()
            .map(|id| read_execution(&conn, id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunOutcome;

    #[test]
    fn debug_executions_sit_beside_their_run_and_go_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kfbox.sqlite")).unwrap();
        let handle = crate::record::begin_test_run(&store, dir.path(), "r1", Map::new());
        store
            .finish_run(
                &handle,
                &RunOutcome {
                    state: "FAILED".into(),
                    error: None,
                    outputs: Map::new(),
                    output_artifacts: Map::new(),
                },
            )
            .unwrap();
        let run = store.api_run("r1").unwrap().run;
        let debug = |succeeded| DebugExecution {
            of_execution: handle.root_execution_id,
            task_path: "train".into(),
            succeeded,
            error: (!succeeded).then(|| "ZeroDivisionError: division by zero".into()),
            started_at: 1,
            finished_at: 2,
            outputs_dir: "/d".into(),
            outputs: Map::new(),
            code: None,
        };
        let first = store.record_debug_execution(&run, &debug(false)).unwrap();
        let second = store.record_debug_execution(&run, &debug(true)).unwrap();
        let recorded = store.debug_executions(&run).unwrap();
        assert_eq!(
            recorded.iter().map(|e| e.id).collect::<Vec<_>>(),
            [first, second]
        );
        assert_eq!(recorded[0].state, "FAILED");
        assert_eq!(recorded[1].text(props::STATE), Some("SUCCEEDED"));
        assert!(store
            .run_executions(&run)
            .unwrap()
            .iter()
            .all(|e| e.id != first && e.id != second));

        store.discard_run(&run, &dir.path().join("runs")).unwrap();
        let conn = store.conn();
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM Execution WHERE id IN (?1, ?2)",
                params![first, second],
                |r| r.get(0),
            )
            .unwrap();
        let contexts: i64 = conn
            .query_row("SELECT COUNT(*) FROM Context", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
        // The pipeline's context stays, as it does for every deleted run.
        assert_eq!(contexts, 1);
    }
}
