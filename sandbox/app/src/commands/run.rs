//! `kfbox run`: execute a compiled pipeline locally.

use std::sync::Arc;
use std::time::Duration;

use std::path::PathBuf;

use anyhow::Context;
use kfbox_cli::{RerunArgs, RunArgs};
use kfbox_engine::model::{RunState, RunSummary};
use kfbox_engine::recorded::recorded_root;
use kfbox_engine::{
    launch, parse_assignments, resolve_root_artifacts, resolve_root_parameters, GivenValue, Launch,
    Runtime,
};
use kfbox_process::ProcessExecutor;
use kfbox_python::Choice;
use kfbox_spec::parse_pipeline;
use kfbox_step::events::EventSink;
use kfbox_store::RunSelector;
use tokio_util::sync::CancellationToken;

use super::remote_run::{run_on_target, RemoteRunRequest};
use crate::executors::StepRouter;
use crate::exit::{ExitStatus, UsageError};
use crate::pipeline_file::{Loader, PipelineFile};
use crate::printer::Printer;
use crate::reporter::Reporter;
use crate::settings::{parallelism, plan_gpus, GlobalSettings};
use crate::summary::render_summary;
use crate::watch::FileWatch;

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
    let status = if args.watch {
        watch(settings, printer, &args, &cancel).await
    } else {
        match load(&mut Loader::default(), settings, printer, &args).await {
            Ok(file) => run_once(settings, printer, &args, file, cancel.child_token()).await,
            Err(e) => Err(e),
        }
    };
    interrupts.abort();
    status
}

/// `--watch`: run, and run again whenever the pipeline file or a local module its compile
/// loaded changes; a change during a run cancels it and starts again. A file that does not
/// compile or load is reported and waited on. Ctrl-C stops; the last run's status is the
/// command's.
async fn watch(
    settings: &GlobalSettings,
    printer: &Printer,
    args: &RunArgs,
    cancel: &CancellationToken,
) -> anyhow::Result<ExitStatus> {
    let mut files = FileWatch::new()?;
    let mut loader = Loader::warm();
    let mut status = Ok(ExitStatus::Success);
    while !cancel.is_cancelled() {
        let loaded = load(&mut loader, settings, printer, args).await;
        let mut watched = vec![args.pipeline.clone()];
        if let Ok(PipelineFile {
            compiled: Some(compiled),
            ..
        }) = &loaded
        {
            watched.extend(compiled.modules.iter().cloned());
        } else if loaded.is_err() {
            // The modules it loaded last time are still what it imports, most likely.
            watched.extend(files.files().map(std::path::Path::to_owned));
        }
        files.set_files(&watched)?;
        match loaded {
            Err(e) => {
                printer.error(&e);
                status = Err(e);
            }
            Ok(file) => {
                let run_cancel = cancel.child_token();
                let execution = run_once(settings, printer, args, file, run_cancel.clone());
                tokio::pin!(execution);
                tokio::select! {
                    ended = &mut execution => status = ended,
                    changed = files.changed() => {
                        printer.note(&format!(
                            "{} changed: canceling this run and starting again",
                            changed.display()
                        ));
                        run_cancel.cancel();
                        let _ = execution.await;
                        continue;
                    }
                }
                if let Err(e) = &status {
                    printer.error(e);
                }
            }
        }
        let shown: Vec<String> = files.files().map(|f| f.display().to_string()).collect();
        printer.note(&format!(
            "watching {} for changes (Ctrl-C stops)",
            shown.join(", ")
        ));
        tokio::select! {
            () = cancel.cancelled() => break,
            changed = files.changed() => printer.note(&format!(
                "{} changed: running it again",
                changed.display()
            )),
        }
    }
    status
}

/// `kfbox runs rerun RUN`: the run's recorded pipeline again, with its parameter values
/// except those given.
pub async fn rerun(
    settings: &GlobalSettings,
    printer: &Printer,
    args: RerunArgs,
) -> anyhow::Result<ExitStatus> {
    let store = settings.open_store_for_reading(printer)?;
    let run = store.find_run(&RunSelector(args.run.clone()))?;
    let spec = store
        .api_run_spec(&run.run_id)?
        .filter(|spec| !spec.is_empty())
        .with_context(|| format!("run {} has no recorded pipeline to run again", run.run_id))?;
    let source = PathBuf::from(format!("run {}", run.run_id));
    let pipeline = parse_pipeline(&source, &spec)?;
    let recorded = recorded_root(&store.run_executions(&run)?)
        .and_then(|root| root.inputs)
        .unwrap_or_default();
    let given = parse_assignments("--param", &args.params)?;
    // The run's values as `--param` would give them, then the changes.
    let mut params: Vec<String> = recorded
        .iter()
        .filter(|(name, _)| !given.iter().any(|(g, _)| g == *name))
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => format!("{name}={text}"),
            other => format!("{name}={other}"),
        })
        .collect();
    params.extend(args.params);
    let run_args = RunArgs {
        pipeline: source,
        pipeline_name: None,
        component: None,
        params,
        artifacts: Vec::new(),
        json: args.json,
        parallelism: None,
        run_name: None,
        no_cache: args.no_cache,
        executor: args.executor,
        gpu: None,
        watch: false,
        target: None,
        target_token: None,
    };
    let file = PipelineFile {
        pipeline,
        compiled: None,
    };
    let cancel = CancellationToken::new();
    let interrupts = tokio::spawn(cancel_on_signal(cancel.clone(), printer.clone(), false));
    let status = run_once(settings, printer, &run_args, file, cancel).await;
    interrupts.abort();
    status
}

/// The pipeline the command names, compiled first when it is a Python file.
async fn load(
    loader: &mut Loader,
    settings: &GlobalSettings,
    printer: &Printer,
    args: &RunArgs,
) -> anyhow::Result<PipelineFile> {
    let choice = match (&args.pipeline_name, &args.component) {
        (_, Some(component)) => Choice::Component(component.clone()),
        (name, None) => Choice::Pipeline(name.clone()),
    };
    loader.load(settings, printer, &args.pipeline, choice).await
}

/// One run of the pipeline as it was loaded.
async fn run_once(
    settings: &GlobalSettings,
    printer: &Printer,
    args: &RunArgs,
    file: PipelineFile,
    cancel: CancellationToken,
) -> anyhow::Result<ExitStatus> {
    let PipelineFile { pipeline, compiled } = file;
    let assignments = parse_assignments("--param", &args.params)?;
    let given: Vec<(String, GivenValue)> = assignments
        .into_iter()
        .map(|(name, text)| (name, GivenValue::Text(text)))
        .collect();
    let in_file = |errors: Vec<kfbox_engine::ParamError>| {
        UsageError::all(
            errors
                .into_iter()
                .map(|e| anyhow::anyhow!("{}: {e}", args.pipeline.display())),
        )
    };
    let parameters = resolve_root_parameters(&pipeline.spec, &given).map_err(in_file)?;
    if let Some(target) = &args.target {
        let summary = run_on_target(
            settings,
            printer,
            RemoteRunRequest {
                target,
                token: args.target_token.clone(),
                pipeline,
                parameters,
                display_name: args.run_name.clone(),
                reuse_cache: settings.cache && !args.no_cache,
            },
            cancel,
        )
        .await?;
        return finish(printer, args, &summary);
    }
    let artifacts = parse_assignments("--artifact", &args.artifacts)
        .map_err(|e| vec![e])
        .and_then(|given| resolve_root_artifacts(&pipeline.spec, &given))
        .map_err(in_file)?;
    let config = settings.load_config()?;
    let gpus = plan_gpus(&config, args.gpu, printer).await;
    let envs = settings.python_envs();
    let pipeline_dir = std::path::absolute(&args.pipeline)
        .ok()
        .and_then(|p| p.parent().map(ToOwned::to_owned))
        .unwrap_or_default();
    let executor = StepRouter::prepare(
        args.executor,
        config,
        ProcessExecutor::new(envs, settings.warm_workers()),
        &pipeline.spec,
        settings.home.path(),
        pipeline_dir,
        printer,
    )
    .await?
    .with_functions(compiled.map(|c| c.functions).unwrap_or_default());
    let runtime = Runtime {
        store: Arc::new(settings.open_store(printer)?),
        runs_dir: settings.home.runs_dir(),
        step_slots: Arc::new(tokio::sync::Semaphore::new(parallelism(args.parallelism))),
        reuse_cache: settings.cache && !args.no_cache,
        gpus,
        namespace: settings.home.namespace(),
    };
    let pipeline_name = pipeline.spec.pipeline_info.name.clone();
    let launched = launch(
        &runtime,
        Launch {
            spec_text: pipeline.source.to_string(),
            pipeline: Arc::new(pipeline),
            parameters,
            artifacts,
            display_name: args.run_name.clone(),
            experiment_id: None,
            retry_of: None,
        },
    )?;
    if let Some(server) = crate::instance::running_url(settings) {
        // The store is the server's too: the UI shows this run live.
        printer.note(&format!(
            "In the UI: {server}/#/runs/details/{}",
            launched.run_id()
        ));
    }
    let (events, receiver) = EventSink::channel();
    let reporter = Reporter::new(settings, printer.clone(), &pipeline_name);
    let reporting = tokio::spawn(reporter.consume(receiver));
    let summary = launched.execute(Arc::new(executor), events, cancel).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), reporting).await;
    finish(printer, args, &summary)
}

/// Prints the summary and maps the run's state to the exit status.
fn finish(printer: &Printer, args: &RunArgs, summary: &RunSummary) -> anyhow::Result<ExitStatus> {
    if args.json {
        printer.data(&serde_json::to_string_pretty(summary)?);
    } else {
        printer.data(&render_summary(summary));
    }
    Ok(match summary.state {
        RunState::Succeeded => ExitStatus::Success,
        RunState::Failed | RunState::Canceled | RunState::Running => ExitStatus::Failure,
    })
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
