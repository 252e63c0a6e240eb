//! `kfbox runs list|get|delete` and `kfbox logs`: reading run history from the store.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kfbox_cli::{LogsArgs, RunArg, RunsCommand, RunsListArgs};
use kfbox_engine::recorded::recorded_summary;
use kfbox_step::diagnostics::ComponentLines;
use kfbox_store::{props, DeletedRun, RunFilter, RunRow, RunSelector, Store};

use crate::exit::ExitStatus;
use crate::human;
use crate::json::{DeletedRunReport, RunList, RunListing};
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub async fn runs(
    settings: &GlobalSettings,
    printer: &Printer,
    command: RunsCommand,
) -> anyhow::Result<ExitStatus> {
    match command {
        RunsCommand::Rerun(args) => super::run::rerun(settings, printer, args).await,
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
        let list = RunList {
            runs: page.runs.iter().map(listing).collect(),
            next_page_token: page.next_page_token.clone(),
        };
        printer.data(&serde_json::to_string_pretty(&list)?);
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

fn listing(run: &RunRow) -> RunListing {
    RunListing {
        run_id: run.run_id.clone(),
        display_name: run.display_name.clone(),
        pipeline: run.pipeline_name.clone(),
        state: run.state.clone(),
        created_at: human::rfc3339(run.created_at),
        finished_at: run.finished_at.map(human::rfc3339),
        error: run.error.clone(),
        run_dir: run.run_dir.clone(),
    }
}

fn get(store: &Store, printer: &Printer, args: RunArg) -> anyhow::Result<ExitStatus> {
    let run = store.find_run(&RunSelector(args.run))?;
    let summary = recorded_summary(store, &run)?;
    let debugged = store.debug_executions(&run)?;
    if args.json {
        let mut json = serde_json::to_value(&summary)?;
        if !debugged.is_empty() {
            json["debug_executions"] = debugged.iter().map(debug_json).collect();
        }
        printer.data(&serde_json::to_string_pretty(&json)?);
    } else {
        let mut text = crate::summary::render_summary(&summary);
        if !debugged.is_empty() {
            text.push_str("\nDebug executions (kfbox debug; not part of the run):\n");
            for execution in &debugged {
                let line = debug_json(execution);
                text.push_str(&format!(
                    "  {:<9} {} #{}  {}  {}\n",
                    line["state"].as_str().unwrap_or_default(),
                    human::shown(line["task"].as_str().unwrap_or_default()),
                    execution.id,
                    line["outputs_dir"].as_str().unwrap_or_default(),
                    line["error"].as_str().unwrap_or_default(),
                ));
            }
        }
        printer.data(text.trim_end());
    }
    Ok(ExitStatus::Success)
}

/// A debug execution as `runs get` shows it.
fn debug_json(execution: &kfbox_store::ExecutionRow) -> serde_json::Value {
    let time = |name| execution.int(name).map(human::rfc3339);
    serde_json::json!({
        "id": execution.id,
        "task": execution.text(props::PATH),
        "state": execution.text(props::STATE),
        "error": execution.text(props::ERROR),
        "started_at": time(props::STARTED_AT),
        "finished_at": time(props::FINISHED_AT),
        "outputs_dir": execution.text(props::DEBUG_OUTPUTS_DIR),
        "code": execution.text(props::DEBUG_CODE),
        "outputs": execution.props.get(props::OUTPUTS).map(|p| p.to_json()),
    })
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
    } = store.discard_run(&run, &settings.home.runs_dir())?;
    if args.json {
        let report = DeletedRunReport {
            run_id: run.run_id.clone(),
            deleted: true,
            artifacts_removed: removed,
            artifacts_kept: kept_here.clone(),
        };
        printer.data(&serde_json::to_string_pretty(&report)?);
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

/// `kfbox logs RUN [TASK] [--follow]`.
pub async fn logs(
    settings: &GlobalSettings,
    printer: &Printer,
    args: LogsArgs,
) -> anyhow::Result<ExitStatus> {
    let store = settings.open_store_for_reading(printer)?;
    let run = store.find_run(&RunSelector(args.run.clone()))?;
    let mut offsets: BTreeMap<PathBuf, u64> = BTreeMap::new();
    // Unless every line is asked for, the component's own lines only (see
    // `kfbox_step::diagnostics`).
    let mut filters: BTreeMap<PathBuf, ComponentLines> = BTreeMap::new();
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
        let last = !args.follow || ended;
        for (path, file) in &logs {
            let offset = offsets.entry(file.clone()).or_insert(0);
            let mut bytes = read_from(&settings.home.runs_dir(), file, offset)?.unwrap_or_default();
            if !args.all {
                let filter = filters.entry(file.clone()).or_default();
                bytes = filter.feed(&bytes);
                if last {
                    bytes.extend(filter.finish());
                }
            }
            if bytes.is_empty() {
                continue;
            }
            if several {
                printer.data(&format!("==> {path} <=="));
            }
            printer.data(String::from_utf8_lossy(&bytes).trim_end_matches('\n'));
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
pub(crate) fn read_from(
    runs_dir: &Path,
    file: &Path,
    offset: &mut u64,
) -> anyhow::Result<Option<Vec<u8>>> {
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
    Ok(Some(bytes))
}
