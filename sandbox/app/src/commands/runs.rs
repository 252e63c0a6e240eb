//! `kfbox runs list|get|delete` and `kfbox logs`: reading run history from the store.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kfbox_cli::{LogsArgs, RunArg, RunsCommand, RunsListArgs};
use kfbox_engine::model::{
    ArtifactRef, RunState, RunSummary, TaskKind, TaskOutputs, TaskRecord, TaskState,
};
use kfbox_store::value::Prop;
use kfbox_store::{props, DeletedRun, ExecutionRow, RunFilter, RunRow, RunSelector, Store};
use serde_json::{json, Map, Value};

use crate::human;
use crate::printer::Printer;
use crate::settings::GlobalSettings;
use crate::ExitStatus;

pub fn runs(
    settings: &GlobalSettings,
    printer: &Printer,
    command: RunsCommand,
) -> anyhow::Result<ExitStatus> {
    match command {
        RunsCommand::List(args) => list(&settings.open_store_for_reading(printer)?, printer, args),
        RunsCommand::Get(args) => get(&settings.open_store_for_reading(printer)?, printer, args),
        RunsCommand::Delete(args) => {
            delete(settings, &settings.open_store(printer)?, printer, args)
        }
    }
}

fn list(store: &Store, printer: &Printer, args: RunsListArgs) -> anyhow::Result<ExitStatus> {
    let filter = RunFilter {
        pipeline: args.pipeline,
        state: args.state.map(|s| s.as_str().to_owned()),
    };
    let page = store.list_runs(&filter, args.page_token.as_deref(), args.limit as usize)?;
    if args.json {
        let runs: Vec<Value> = page.runs.iter().map(run_json).collect();
        let out = json!({"runs": runs, "next_page_token": page.next_page_token});
        printer.data(&serde_json::to_string_pretty(&out)?);
        return Ok(ExitStatus::Success);
    }
    if page.runs.is_empty() {
        printer.note("No runs recorded yet. Start one with `kfbox run PIPELINE.yaml`.");
        return Ok(ExitStatus::Success);
    }
    let now = chrono::Utc::now();
    // 8 + 2 + 9 + 2 + 8 + 2 + 7 + 2 leaves 40 columns of 80 for the name.
    let mut out = format!(
        "{:<8}  {:<9}  {:<8}  {:>7}  {}\n",
        "RUN", "STATE", "CREATED", "TOOK", "NAME"
    );
    for run in &page.runs {
        let took = run
            .finished_at
            .map_or_else(String::new, |f| human::duration(f - run.created_at));
        out.push_str(&format!(
            "{:<8}  {:<9}  {:<8}  {:>7}  {}\n",
            &run.run_id[..run.run_id.len().min(8)],
            run.state,
            human::ago(run.created_at, now),
            took,
            human::fit(&run.display_name, 40)
        ));
    }
    printer.data(out.trim_end());
    if let Some(token) = &page.next_page_token {
        printer.note(&format!("more: kfbox runs list --page-token {token}"));
    }
    Ok(ExitStatus::Success)
}

fn run_json(run: &RunRow) -> Value {
    json!({
        "run_id": run.run_id,
        "display_name": run.display_name,
        "pipeline": run.pipeline_name,
        "state": run.state,
        "created_at": human::rfc3339(run.created_at),
        "finished_at": run.finished_at.map(human::rfc3339),
        "error": run.error,
        "run_dir": run.run_dir,
    })
}

fn get(store: &Store, printer: &Printer, args: RunArg) -> anyhow::Result<ExitStatus> {
    let run = store.find_run(&RunSelector(args.run))?;
    let summary = summary_from_store(store, &run)?;
    if args.json {
        printer.data(&serde_json::to_string_pretty(&summary)?);
    } else {
        printer.data(&super::run::render_summary(&summary));
    }
    Ok(ExitStatus::Success)
}

fn delete(
    settings: &GlobalSettings,
    store: &Store,
    printer: &Printer,
    args: RunArg,
) -> anyhow::Result<ExitStatus> {
    let run = store.find_run(&RunSelector(args.run))?;
    let DeletedRun {
        artifacts_removed: removed,
        artifacts_kept: kept_here,
    } = store.discard_run(&run, &settings.runs_dir())?;
    if args.json {
        let out = json!({
            "run_id": run.run_id,
            "deleted": true,
            "artifacts_removed": removed,
            "artifacts_kept": kept_here,
        });
        printer.data(&serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = format!("Deleted run {} ({removed} artifacts removed", run.run_id);
        if !kept_here.is_empty() {
            text.push_str(&format!(
                "; {} kept: cached executions of other runs use them",
                kept_here.len()
            ));
        }
        text.push(')');
        printer.data(&text);
    }
    Ok(ExitStatus::Success)
}

/// The run as `kfbox run --json` reported it, rebuilt from the store (also while it runs).
pub(crate) fn summary_from_store(store: &Store, run: &RunRow) -> anyhow::Result<RunSummary> {
    let executions = store.run_executions(run)?;
    let artifact_ref = |id: i64| -> Option<ArtifactRef> {
        let row = store.artifact(id).ok()?;
        let mut metadata = row.metadata;
        metadata.remove(props::STORE_SESSION_INFO);
        metadata.remove(props::DISPLAY_NAME);
        Some(ArtifactRef {
            uri: row.uri,
            metadata,
        })
    };
    let listed_ids = |e: &ExecutionRow| -> BTreeMap<String, Vec<ArtifactRef>> {
        let Some(map) = e
            .props
            .get(props::OUTPUT_ARTIFACTS)
            .and_then(Prop::as_struct)
        else {
            return BTreeMap::new();
        };
        map.iter()
            .map(|(name, ids)| {
                let refs = ids
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_i64)
                    .filter_map(artifact_ref)
                    .collect();
                (name.clone(), refs)
            })
            .collect()
    };
    let mut tasks = Vec::new();
    let mut outputs = Map::new();
    for execution in &executions {
        let kind = execution.text(props::KIND).unwrap_or_default();
        let parameters = execution
            .props
            .get(props::OUTPUTS)
            .and_then(Prop::as_struct)
            .cloned()
            .unwrap_or_default();
        if kind == "root" {
            outputs = parameters;
            for (name, refs) in listed_ids(execution) {
                outputs.insert(name, serde_json::to_value(refs)?);
            }
            continue;
        }
        let kind = match kind {
            "container" => TaskKind::Container,
            "importer" => TaskKind::Importer,
            "dag" => TaskKind::Dag,
            "loop" => TaskKind::Loop,
            _ => continue,
        };
        let artifacts = match kind {
            TaskKind::Dag | TaskKind::Loop => listed_ids(execution),
            TaskKind::Container | TaskKind::Importer => {
                let mut map: BTreeMap<String, Vec<ArtifactRef>> = BTreeMap::new();
                for (name, id) in &execution.outputs {
                    if let Some(r) = artifact_ref(*id) {
                        map.entry(name.clone()).or_default().push(r);
                    }
                }
                map
            }
        };
        let text = |name: &str| execution.text(name).map(str::to_owned);
        tasks.push(TaskRecord {
            name: text(props::TASK_NAME).unwrap_or_default(),
            path: text(props::PATH).unwrap_or_default(),
            kind,
            state: task_state(execution),
            attempts: execution.int(props::ATTEMPTS).unwrap_or(0) as u32,
            started_at: text(props::STARTED_AT),
            finished_at: text(props::FINISHED_AT),
            outputs: TaskOutputs {
                parameters,
                artifacts,
            },
            error: text(props::ERROR),
            reason: text(props::REASON),
            iterations: execution.int(props::ITERATION_COUNT).map(|n| n as usize),
            log: text(props::LOG),
        });
    }
    tasks.sort_by(|a, b| {
        let key = |t: &TaskRecord| t.started_at.clone().or(t.finished_at.clone());
        key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
    });
    let state = match run.state.as_str() {
        "SUCCEEDED" => RunState::Succeeded,
        "CANCELED" => RunState::Canceled,
        "RUNNING" => RunState::Running,
        _ => RunState::Failed,
    };
    Ok(RunSummary {
        run_id: run.run_id.clone(),
        pipeline: run.pipeline_name.clone(),
        state,
        outputs,
        tasks,
        started_at: human::rfc3339(run.created_at),
        finished_at: human::rfc3339(
            run.finished_at
                .unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
        ),
        run_dir: run.run_dir.clone(),
        error: run.error.clone(),
    })
}

fn task_state(execution: &ExecutionRow) -> TaskState {
    match execution.text(props::STATE) {
        Some("SUCCEEDED") => TaskState::Succeeded,
        Some("FAILED") => TaskState::Failed,
        Some("SKIPPED") => TaskState::Skipped,
        Some("CANCELED") => TaskState::Canceled,
        Some("CACHED") => TaskState::Cached,
        _ => match execution.state {
            "COMPLETE" => TaskState::Succeeded,
            "FAILED" => TaskState::Failed,
            "CACHED" => TaskState::Cached,
            "CANCELED" => TaskState::Canceled,
            _ => TaskState::Running,
        },
    }
}

/// `kfbox logs RUN [TASK] [--follow]`.
pub async fn logs(
    settings: &GlobalSettings,
    printer: &Printer,
    args: LogsArgs,
) -> anyhow::Result<ExitStatus> {
    let store = settings.open_store_for_reading(printer)?;
    let run = store.find_run(&RunSelector(args.run.clone()))?;
    let mut offsets: BTreeMap<PathBuf, u64> = BTreeMap::new();
    loop {
        // A run whose process died would otherwise be followed forever (a store that cannot
        // be written leaves that to a later command).
        for message in store.recover_abandoned_runs().unwrap_or_default() {
            printer.warning(&message);
        }
        let run = store.find_run(&RunSelector(run.run_id.clone()))?;
        let ended = run.state != "RUNNING";
        let logs = task_logs(&store, &run, args.task.as_deref())?;
        if logs.is_empty() && ended {
            match &args.task {
                Some(task) => anyhow::bail!(
                    "run {} has no task `{task}` with a log (see `kfbox runs get {}`)",
                    run.run_id,
                    run.run_id
                ),
                None => anyhow::bail!("run {} has no task logs", run.run_id),
            }
        }
        let several = logs.len() > 1;
        for (path, file) in &logs {
            let offset = offsets.entry(file.clone()).or_insert(0);
            let Some(text) = read_from(&settings.runs_dir(), file, offset)? else {
                continue;
            };
            if several {
                printer.data(&format!("==> {path} <=="));
            }
            printer.data(text.trim_end_matches('\n'));
        }
        if !args.follow || ended {
            return Ok(ExitStatus::Success);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Log files of a run's tasks, in task order: all of them, or those of one task path or name.
fn task_logs(
    store: &Store,
    run: &RunRow,
    task: Option<&str>,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for execution in store.run_executions(run)? {
        let (Some(path), Some(log)) = (execution.text(props::PATH), execution.text(props::LOG))
        else {
            continue;
        };
        let name = execution.text(props::TASK_NAME).unwrap_or_default();
        if task.is_some_and(|t| t != path && t != name) {
            continue;
        }
        found.push((path.to_owned(), PathBuf::from(log)));
    }
    Ok(found)
}

/// What a log gained since `offset` (None when nothing), advancing the offset. Logs are read
/// only inside the run directories.
fn read_from(runs_dir: &Path, file: &Path, offset: &mut u64) -> anyhow::Result<Option<String>> {
    let real = match kfbox_paths::resolve_under(runs_dir, file) {
        Ok(real) => real,
        Err(kfbox_paths::Confinement::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut handle = fs_err::File::open(real)?;
    handle.seek(SeekFrom::Start(*offset))?;
    let mut bytes = Vec::new();
    handle.read_to_end(&mut bytes)?;
    if bytes.is_empty() {
        return Ok(None);
    }
    *offset += bytes.len() as u64;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}
