//! Runs whose kfbox process died (kill -9, power loss, a crash) are found on the next open and
//! marked FAILED, with every execution still RUNNING.
//!
//! A run records its process id and that process's start time: a pid alone could have been
//! reused by an unrelated process since. Steps are noted the same way (by the executor, in the
//! file their execution's `kfbox.process_file` names), and a dead run's steps still running
//! are killed with their process group.

use std::path::Path;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use rusqlite::{params, OptionalExtension};

use crate::record::{end_run, exec, put_props, state, Owner};
use crate::value::Prop;
use crate::{now_ms, props, Store, StoreError};

/// This process's id and start time (clock ticks since boot; 0 where the OS does not say).
pub(crate) fn this_process() -> (i64, i64) {
    let pid = std::process::id() as i64;
    (pid, start_time(pid).unwrap_or(0))
}

fn start_time(pid: i64) -> Option<i64> {
    proc_stat(pid).map(|(_, started)| started)
}

/// State letter and start time of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: i64) -> Option<(String, i64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields are counted after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.to_owned();
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// Write `<pid> <start time>` of a step's process group leader to `file`.
pub fn note_process(file: &Path, pid: u32) -> std::io::Result<()> {
    let started = start_time(pid.into()).unwrap_or(0);
    std::fs::write(file, format!("{pid} {started}\n"))
}

/// Kill the process group a note names, if its leader is still the process that was noted.
/// Returns whether it did.
fn stop_noted_process(file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().ok());
    let (Some(Some(pid)), Some(Some(started))) = (fields.next(), fields.next()) else {
        return false;
    };
    if started == 0 || start_time(pid) != Some(started) {
        return false;
    }
    i32::try_from(pid).is_ok_and(|raw| killpg(Pid::from_raw(raw), Signal::SIGKILL).is_ok())
}

/// `<pid> <start time>` of this process: a name for it that survives pid reuse, for labels on
/// what it starts outside the store (containers).
pub fn process_identity() -> String {
    let (pid, started) = this_process();
    format!("{pid} {started}")
}

/// Whether the process a [`process_identity`] names still runs.
pub fn identity_alive(identity: &str) -> bool {
    let mut fields = identity.split_whitespace().map(|f| f.parse::<i64>().ok());
    match (fields.next(), fields.next()) {
        (Some(Some(pid)), Some(Some(started))) => is_alive(pid, started),
        _ => false,
    }
}

fn is_alive(pid: i64, started: i64) -> bool {
    if std::path::Path::new("/proc/self/stat").exists() {
        // A zombie has ended; only its parent's reaping is missing.
        return proc_stat(pid)
            .is_some_and(|(state, t)| state != "Z" && (started == 0 || t == started));
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

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
        Ok(pid.is_some_and(|pid| pid != 0 && is_alive(pid, started.unwrap_or(0))))
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
            if pid != 0 && is_alive(pid, started.unwrap_or(0)) {
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

    use crate::{NewRun, RunFilter, RunOutcome, Store};

    #[test]
    fn a_process_that_ended_is_not_alive_even_before_it_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let identity = format!(
            "{} {}",
            child.id(),
            super::start_time(child.id().into()).unwrap()
        );
        assert!(super::identity_alive(&identity));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while super::identity_alive(&identity) {
            assert!(
                std::time::Instant::now() < deadline,
                "still alive after it ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Not reaped until now: it was a zombie while the loop above saw it as ended.
        assert!(std::fs::metadata(format!("/proc/{}", child.id())).is_ok());
        child.wait().unwrap();
        assert!(!super::identity_alive(&format!("{} 0", child.id())));
    }

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
