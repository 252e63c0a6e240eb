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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Write `<pid> <start time>` of a step's process group leader to `file`.
pub fn note_process(file: &Path, pid: u32) -> std::io::Result<()> {
    let started = start_time(pid.into()).unwrap_or(0);
    std::fs::write(file, format!("{pid} {started}\n"))
}

/// Kill the process group a note names, if its leader is still the process that was noted.
fn stop_noted_process(file: &Path) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().ok());
    let (Some(Some(pid)), Some(Some(started))) = (fields.next(), fields.next()) else {
        return;
    };
    if started != 0 && start_time(pid) == Some(started) {
        if let Ok(raw) = i32::try_from(pid) {
            tracing::warn!(pid, "stopping a step left running by a dead kfbox");
            let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

fn is_alive(pid: i64, started: i64) -> bool {
    if std::path::Path::new("/proc/self/stat").exists() {
        return start_time(pid).is_some_and(|t| started == 0 || t == started);
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

impl Store {
    /// Mark runs whose kfbox process is gone as FAILED (done on every open; callers that
    /// watch a run for long call it again).
    pub fn recover_abandoned_runs(&self) -> Result<(), StoreError> {
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
            tracing::warn!(run_id, "{error}; marking it FAILED");
            self.write(|tx| {
                // Another process may have recovered it first.
                let still_running: bool = tx.query_row(
                    "SELECT COUNT(*) > 0 FROM kfbox_run WHERE run_id = ?1 AND state = 'RUNNING'",
                    [&run_id],
                    |r| r.get(0),
                )?;
                if !still_running {
                    return Ok(());
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
                    if let Some(note) = note {
                        stop_noted_process(Path::new(&note));
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
                end_run(tx, &run_id, context, "FAILED", Some(&error), now)
            })?;
        }
        Ok(())
    }
}
