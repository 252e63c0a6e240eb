//! `kfbox run`: execute a compiled pipeline locally.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::DateTime;
use console::style;
use kfbox_cli::{GpuChoice, RunArgs};
use kfbox_engine::events::EventSink;
use kfbox_engine::model::RuntimeArtifact;
use kfbox_engine::model::{RunState, RunSummary};
use kfbox_engine::{
    execute, parse_assignments, resolve_root_artifacts, resolve_root_parameters, GivenValue,
    RunOptions,
};
use kfbox_gpu::{GpuPlan, GpuPolicy};
use kfbox_process::ProcessExecutor;
use kfbox_spec::load_pipeline;
use kfbox_spec::value::value_to_text;
use kfbox_store::{NewArtifact, NewRun, RunHandle, Store};
use std::collections::BTreeMap;
use tokio_util::sync::CancellationToken;

use crate::executors::StepRouter;
use crate::human::shown;
use crate::printer::Printer;
use crate::reporter::{state_label, Reporter};
use crate::settings::{default_parallelism, GlobalSettings};
use crate::ExitStatus;

pub async fn run(
    settings: &GlobalSettings,
    printer: &Printer,
    args: RunArgs,
) -> anyhow::Result<ExitStatus> {
    let cancel = CancellationToken::new();
    let interrupts = tokio::spawn(cancel_on_signal(
        cancel.clone(),
        printer.clone(),
        args.watch,
    ));
    let mut status = run_once(settings, printer, &args, cancel.child_token()).await;
    while args.watch && !cancel.is_cancelled() {
        printer.note(&format!(
            "watching {} for changes (Ctrl-C stops)",
            args.pipeline.display()
        ));
        tokio::select! {
            () = cancel.cancelled() => break,
            () = changed(&args.pipeline) => {}
        }
        printer.note(&format!(
            "{} changed: running it again",
            args.pipeline.display()
        ));
        status = run_once(settings, printer, &args, cancel.child_token()).await;
    }
    interrupts.abort();
    status
}

/// Returns once the file's contents differ from what they were when called, and have stayed
/// the same for a moment (a compiler may write it in pieces).
async fn changed(path: &std::path::Path) {
    const POLL: Duration = Duration::from_millis(200);
    let read = || std::fs::read(path).ok();
    let before = read();
    loop {
        tokio::time::sleep(POLL).await;
        let now = read();
        if now != before {
            tokio::time::sleep(POLL).await;
            if read() == now && now.is_some() {
                return;
            }
        }
    }
}

/// One run of the pipeline file as it is now.
async fn run_once(
    settings: &GlobalSettings,
    printer: &Printer,
    args: &RunArgs,
    cancel: CancellationToken,
) -> anyhow::Result<ExitStatus> {
    let pipeline = match load_pipeline(&args.pipeline) {
        Ok(pipeline) => pipeline,
        Err(e) => {
            printer.error(&anyhow::Error::new(e));
            return Ok(ExitStatus::Error);
        }
    };
    let assignments = match parse_assignments("--param", &args.params) {
        Ok(a) => a,
        Err(e) => {
            printer.error(&anyhow::Error::new(e));
            return Ok(ExitStatus::Error);
        }
    };
    let given: Vec<(String, GivenValue)> = assignments
        .into_iter()
        .map(|(name, text)| (name, GivenValue::Text(text)))
        .collect();
    let parameters = match resolve_root_parameters(&pipeline.spec, &given) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                printer.error(&anyhow::anyhow!("{}: {e}", args.pipeline.display()));
            }
            return Ok(ExitStatus::Error);
        }
    };
    let artifacts = match parse_assignments("--artifact", &args.artifacts)
        .map_err(|e| vec![e])
        .and_then(|given| resolve_root_artifacts(&pipeline.spec, &given))
    {
        Ok(a) => a,
        Err(errors) => {
            for e in errors {
                printer.error(&anyhow::anyhow!("{}: {e}", args.pipeline.display()));
            }
            return Ok(ExitStatus::Error);
        }
    };
    let config = match settings.load_config() {
        Ok(config) => config,
        Err(e) => {
            printer.error(&anyhow::Error::new(e));
            return Ok(ExitStatus::Error);
        }
    };
    let gpus = plan_gpus(&config, args.gpu, printer).await;
    let envs = settings.python_envs();
    let pipeline_dir = std::path::absolute(&args.pipeline)
        .ok()
        .and_then(|p| p.parent().map(ToOwned::to_owned))
        .unwrap_or_default();
    let executor = StepRouter::prepare(
        args.executor,
        config,
        ProcessExecutor::new(envs),
        &pipeline.spec,
        &settings.home,
        pipeline_dir,
        printer,
    )
    .await?;
    let store = Arc::new(settings.open_store(printer)?);
    let run_id = uuid::Uuid::new_v4().to_string();
    let run_dir = settings.runs_dir().join(&run_id);
    fs_err::create_dir_all(&run_dir).context("cannot create the run directory")?;
    let pipeline_name = pipeline.spec.pipeline_info.name.clone();
    let run_name = args
        .run_name
        .clone()
        .unwrap_or_else(|| format!("{pipeline_name}-{}", &run_id[..8]));
    let record = store
        .begin_run(&NewRun {
            run_id: run_id.clone(),
            display_name: run_name.clone(),
            pipeline_name: pipeline_name.clone(),
            resource_name: kfbox_engine::resource_name(&pipeline_name, &run_id),
            run_dir: run_dir.display().to_string(),
            parameters: parameters.clone(),
            pipeline_spec: pipeline.source.to_string(),
            experiment_id: None,
        })
        .context("cannot record the run in the store")?;
    let artifacts = record_root_artifacts(&store, &record, artifacts)?;
    let options = RunOptions {
        run_id: run_id.clone(),
        run_name,
        run_dir: run_dir.clone(),
        parameters,
        artifacts,
        step_slots: Arc::new(tokio::sync::Semaphore::new(
            args.parallelism
                .map_or_else(default_parallelism, |n| n as usize)
                .max(1),
        )),
        store: store.clone(),
        record: record.clone(),
        reuse_cache: settings.cache && !args.no_cache,
        retry: false,
        gpus,
    };
    if let Some(server) = super::server::running_url(settings) {
        // The store is the server's too: the UI shows this run live.
        printer.note(&format!("In the UI: {server}/#/runs/details/{run_id}"));
    }
    let executor = Arc::new(executor);
    let (events, receiver) = EventSink::channel();
    let reporter = Reporter::new(settings, printer.clone(), &pipeline_name);
    let reporting = tokio::spawn(reporter.consume(receiver));
    let summary = execute(Arc::new(pipeline), options, executor, events, cancel).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reporting).await;
    // The run is over whatever happens here: its state, not a full disk, decides the exit.
    let summary_path = run_dir.join("summary.json");
    if let Err(e) = fs_err::write(&summary_path, serde_json::to_string_pretty(&summary)?) {
        printer.warning(&format!("cannot write the run summary: {e}"));
    }
    if args.json {
        printer.data(&serde_json::to_string_pretty(&summary)?);
    } else {
        printer.data(&render_summary(&summary));
    }
    Ok(match summary.state {
        RunState::Succeeded => ExitStatus::Success,
        RunState::Failed | RunState::Canceled | RunState::Running => ExitStatus::Failure,
    })
}

/// The machine's GPUs and what requests do without them (`--gpu`, else `gpu.policy`).
pub(crate) async fn plan_gpus(
    config: &crate::config::Config,
    choice: Option<GpuChoice>,
    printer: &Printer,
) -> GpuPlan {
    let policy = match choice.or(config.gpu.policy) {
        Some(GpuChoice::Require) => GpuPolicy::Require,
        Some(GpuChoice::Prefer) | None => GpuPolicy::Prefer,
        Some(GpuChoice::Ignore) => GpuPolicy::Ignore,
    };
    let inventory = tokio::task::spawn_blocking(kfbox_gpu::detect)
        .await
        .unwrap_or_default();
    if let Some(problem) = &inventory.problem {
        printer.warning(&format!("no GPU will be used: {problem}"));
    }
    GpuPlan::new(inventory.gpus.len(), config.gpu.share, policy)
}

/// Root input artifacts are recorded first, so steps that use them have INPUT events to them.
fn record_root_artifacts(
    store: &Store,
    record: &RunHandle,
    mut artifacts: BTreeMap<String, Vec<RuntimeArtifact>>,
) -> anyhow::Result<BTreeMap<String, Vec<RuntimeArtifact>>> {
    let new: Vec<(String, NewArtifact)> = artifacts
        .iter()
        .flat_map(|(name, list)| {
            list.iter().map(|a| {
                let artifact = NewArtifact {
                    schema_title: a.schema_title.clone(),
                    uri: a.uri.clone(),
                    metadata: a.metadata.clone(),
                };
                (name.clone(), artifact)
            })
        })
        .collect();
    let ids = store
        .record_artifacts(record, &new)
        .context("cannot record the run's input artifacts")?;
    let mut ids = ids.into_iter();
    for artifact in artifacts.values_mut().flatten() {
        artifact.id = ids.next();
    }
    Ok(artifacts)
}

/// Ctrl-C, SIGTERM and SIGHUP (the terminal closed) cancel the run: steps live in process
/// groups of their own, so no terminal signal reaches them unless kfbox passes it on.
async fn cancel_on_signal(cancel: CancellationToken, printer: Printer, watching: bool) {
    crate::signals::stop_requested(true).await;
    printer.note(if watching {
        "stopping: running steps (if any) are canceled..."
    } else {
        "canceling the run: stopping running steps..."
    });
    cancel.cancel();
}

pub(crate) fn seconds_between(start: &str, end: &str) -> Option<f64> {
    let start = DateTime::parse_from_rfc3339(start).ok()?;
    let end = DateTime::parse_from_rfc3339(end).ok()?;
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

pub(crate) fn render_summary(summary: &RunSummary) -> String {
    let mut out = String::new();
    let took = seconds_between(&summary.started_at, &summary.finished_at).unwrap_or_default();
    let state = match summary.state {
        RunState::Succeeded => style(summary.state.as_str()).green().bold(),
        RunState::Failed => style(summary.state.as_str()).red().bold(),
        RunState::Canceled => style(summary.state.as_str()).yellow().bold(),
        RunState::Running => style(summary.state.as_str()).blue().bold(),
    };
    out.push_str(&format!(
        "Run {} of {}: {state} in {took:.1}s\n",
        summary.run_id,
        style(shown(&summary.pipeline)).bold()
    ));
    // 2 + 14 + 1 + 2 + 8 + 2 + 7 leaves 44 of 80 columns for the task path.
    let width = summary
        .tasks
        .iter()
        .map(|t| t.path.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 44);
    out.push_str(&format!(
        "  {:<14} {:<width$}  {:>8}  {:>7}\n",
        "STATE", "TASK", "ATTEMPTS", "TIME"
    ));
    for task in &summary.tasks {
        let took = match (&task.started_at, &task.finished_at) {
            (Some(s), Some(f)) => {
                seconds_between(s, f).map_or(String::new(), |t| format!("{t:.1}s"))
            }
            _ => String::new(),
        };
        let label = state_label(task.state);
        let pad = 14usize.saturating_sub(console::measure_text_width(&label));
        out.push_str(&format!(
            "  {label}{} {:<width$}  {:>8}  {:>7}\n",
            " ".repeat(pad),
            crate::human::fit_left(&task.path, width),
            task.attempts,
            took
        ));
        // Errors run to several lines (an installer's last ones, a hint): each indented.
        if let Some(error) = &task.error {
            for line in crate::human::shown_lines(error).lines() {
                out.push_str(&format!("      {}\n", style(line).red()));
            }
        }
        if let Some(reason) = &task.reason {
            out.push_str(&format!("      {}\n", style(shown(reason)).dim()));
        }
    }
    if !summary.outputs.is_empty() {
        out.push_str("Outputs:\n");
        for (name, value) in &summary.outputs {
            out.push_str(&format!(
                "  {} = {}\n",
                shown(name),
                shown(&value_to_text(value))
            ));
        }
    }
    out.push_str(&format!("Logs and artifacts: {}", summary.run_dir));
    out
}
