//! `kfbox debug RUN TASK`: one Python task of a recorded run, run again in this terminal on the
//! inputs it had (its recorded command: the ExecutorInput with its parameters and its input
//! artifacts' URIs), its outputs in a fresh directory under `KFBOX_HOME/debug/`. The run itself
//! is left as it was.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use kfbox_cli::DebugArgs;
use kfbox_process::ProcessExecutor;
use kfbox_process::{
    install_component_runner, path_with, use_component_runner, COMPONENT_RUNNER_ENV,
    COMPONENT_SOURCE_ENV,
};
use kfbox_python::LightweightStep;
use kfbox_step::events::{EventSink, RunEvent};
use kfbox_step::failure::{Failure, FAILURE_FILE_ENV};
use kfbox_step::record::StepRecord;
use kfbox_step::{Executor, Step};
use kfbox_store::{props, DebugExecution, RunSelector};
use tokio_util::sync::CancellationToken;

use crate::debug_notebook::{self, DebugNotebook};
use crate::env_progress::EnvProgress;
use crate::executors::StepRouter;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub async fn debug(
    settings: &GlobalSettings,
    printer: &Printer,
    args: DebugArgs,
) -> anyhow::Result<ExitStatus> {
    // Written to once, at the end: the debug execution, beside the run.
    let store = settings.open_store(printer)?;
    let run = store.find_run(&RunSelector(args.run.clone()))?;
    let executions = store.run_executions(&run)?;
    let matching: Vec<_> = executions
        .iter()
        .filter(|e| {
            e.text(props::PATH) == Some(args.task.as_str())
                || e.text(props::TASK_NAME) == Some(args.task.as_str())
        })
        .filter(|e| e.text(props::KIND) == Some("container"))
        .collect();
    let task = match matching.as_slice() {
        [one] => *one,
        [] => anyhow::bail!(
            "run {} has no step task `{}` (`kfbox runs get {}` lists its tasks)",
            run.run_id,
            args.task,
            run.run_id
        ),
        several => anyhow::bail!(
            "run {} has {} tasks named `{}`; give one's path: {}",
            run.run_id,
            several.len(),
            args.task,
            several
                .iter()
                .filter_map(|e| e.text(props::PATH))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let path = task.text(props::PATH).unwrap_or_default().to_owned();
    if task.text(props::CACHED_EXECUTION_ID).is_some() {
        anyhow::bail!(
            "task `{path}` of run {} reused an earlier execution from the cache and ran nothing; debug the run it reused (`kfbox runs get {}` names it)",
            run.run_id,
            run.run_id
        );
    }
    let task_dir = kfbox_paths::join_names(&Path::new(&run.run_dir).join("tasks"), &path)?;
    let record = StepRecord::read(&task_dir).with_context(|| {
        format!(
            "task `{path}` of run {} has no record of its step (it never started one)",
            run.run_id
        )
    })?;
    if LightweightStep::detect(&record.argv()).is_none()
        && (args.pdb || args.notebook || args.code.is_some())
    {
        anyhow::bail!(
            "task `{path}` runs image `{}` with its own command; --pdb, --notebook and --code are for Python components (`@dsl.component`)",
            record.image
        );
    }
    let debug_root = settings.home.debug_dir();
    kfbox_paths::create_private_dir_all(&debug_root)?;
    // The run id's start names the directory: a name from the store, checked as any other.
    let short: String = run.run_id.chars().take(8).collect();
    kfbox_paths::check_name(&short)?;
    let here = tempfile::Builder::new()
        .prefix(&format!("{short}-"))
        .tempdir_in(&debug_root)?
        .keep();
    let (new_task, new_artifacts) = (here.join("task"), here.join("artifacts"));
    let work_dir = new_task.join("work");
    for dir in [&work_dir, &new_artifacts, &new_task.join("outputs")] {
        fs_err::create_dir_all(dir)?;
    }
    let title = format!("task `{path}` of run {}", run.run_id);
    for name in &record.withheld_env {
        printer.warning(&format!(
            "`{name}` held a Secret's value in the run and is left out here; set it in your environment if the component needs it"
        ));
    }
    let debugged = Debugged {
        store: &store,
        run: &run,
        of_execution: task.id,
        path: &path,
        here: &here,
        code: None,
    };
    let Some(lightweight) = LightweightStep::detect(&record.argv_in(&new_task, &new_artifacts))
    else {
        printer.note(&format!(
            "debugging {title} on its recorded inputs; outputs in {}",
            here.display()
        ));
        let ended = run_container_step(settings, printer, &args, &record, &here).await?;
        return debugged.report(printer, ended);
    };

    let envs = settings.python_envs();
    let progress = EnvProgress::new(settings, printer, "");
    let requirements = lightweight.requirements.clone();
    let env = tokio::task::spawn_blocking(move || {
        envs.for_requirements(&requirements, &|update| progress.update(update))
    })
    .await??;
    if args.notebook {
        let packages_env =
            (!lightweight.requirements.packages.is_empty()).then_some(env.dir.as_path());
        return write_notebook(
            settings,
            printer,
            &lightweight,
            &record,
            &run.run_id,
            &title,
            packages_env,
        );
    }
    let runner = install_component_runner(settings.python_envs().root())?;
    let argv = use_component_runner(&lightweight.argv).with_context(|| {
        format!("task `{path}`'s command is not the one kfbox knows the SDK to write")
    })?;
    let code = match &args.code {
        Some(code) => {
            let code = std::path::absolute(code)?;
            if !code.is_file() {
                anyhow::bail!("--code {}: no such file", code.display());
            }
            Some(code)
        }
        None => None,
    };
    let failure_file = here.join("failure.json");
    printer.note(&format!(
        "debugging {title} on its recorded inputs; outputs in {}",
        here.display()
    ));
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .envs(record.env.iter().map(|(k, v)| (k, v)))
        .env("PYTHONUNBUFFERED", "1")
        .env("PATH", path_with(&env.bin_dir))
        .env("VIRTUAL_ENV", &env.dir)
        .env(COMPONENT_RUNNER_ENV, &runner)
        .env(FAILURE_FILE_ENV, &failure_file)
        .env("KFBOX_HIDE_EXECUTOR", "1")
        .current_dir(&work_dir);
    if args.pdb {
        command.env("KFBOX_POST_MORTEM", "1");
    }
    if let Some(code) = &code {
        command.env("KFBOX_COMPONENT_CODE", code);
    }
    let started = std::time::Instant::now();
    let started_at = now_ms();
    let status = command
        .status()
        .with_context(|| format!("cannot start `{}`", argv[0]))?;
    let ended = Ended {
        error: (!status.success()).then(|| {
            Failure::read(&failure_file)
                .unwrap_or_default()
                .describe(status.code().unwrap_or(-1))
        }),
        outputs: outputs(&new_task),
        started_at,
        took: started.elapsed().as_secs_f64(),
    };
    Debugged {
        code: code.map(|c| c.display().to_string()),
        ..debugged
    }
    .report(printer, ended)
}

/// How a debug execution ended.
struct Ended {
    error: Option<String>,
    /// The output parameters it wrote.
    outputs: serde_json::Map<String, serde_json::Value>,
    started_at: i64,
    took: f64,
}

/// A debug execution of one of a run's tasks, to be recorded beside the run and told.
struct Debugged<'a> {
    store: &'a kfbox_store::Store,
    run: &'a kfbox_store::RunRow,
    of_execution: i64,
    path: &'a str,
    here: &'a Path,
    code: Option<String>,
}

impl Debugged<'_> {
    fn report(self, printer: &Printer, ended: Ended) -> anyhow::Result<ExitStatus> {
        let Ended {
            error,
            outputs,
            started_at,
            took,
        } = ended;
        let recorded = self.store.record_debug_execution(
            self.run,
            &DebugExecution {
                of_execution: self.of_execution,
                task_path: self.path.to_owned(),
                succeeded: error.is_none(),
                error: error.clone(),
                started_at,
                finished_at: now_ms(),
                outputs_dir: self.here.display().to_string(),
                outputs: outputs.clone(),
                code: self.code,
            },
        )?;
        let path = self.path;
        let shown =
            |state: &str| format!("{state} {path} (debug execution {recorded}) in {took:.1}s");
        match error {
            None => {
                printer.data(&format!("✓ {}", shown("SUCCEEDED")));
                for (name, value) in &outputs {
                    printer.data(&format!(
                        "  {} = {}",
                        crate::human::shown(name),
                        crate::human::shown(&value.to_string())
                    ));
                }
                Ok(ExitStatus::Success)
            }
            Some(said) => {
                printer.data(&format!("✗ {}\n    {said}", shown("FAILED")));
                Ok(ExitStatus::Failure)
            }
        }
    }
}

/// A container component's step again, through the executor a run would give it (Docker, or a
/// host process), its log shown as it is written. Its output files are its own to write, as in
/// the run; kfbox makes their directories.
async fn run_container_step(
    settings: &GlobalSettings,
    printer: &Printer,
    args: &DebugArgs,
    record: &StepRecord,
    here: &Path,
) -> anyhow::Result<Ended> {
    let (new_task, new_artifacts) = (here.join("task"), here.join("artifacts"));
    let argv = record.argv_in(&new_task, &new_artifacts);
    for arg in &argv {
        let file = Path::new(arg);
        if file.starts_with(&new_task) || file.starts_with(&new_artifacts) {
            if let Some(parent) = file.parent() {
                fs_err::create_dir_all(parent)?;
            }
        }
    }
    let (command, rest) = argv.split_at(record.command.len().min(argv.len()));
    let debug_id = here
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let step = Step {
        task_path: record.task_path.clone(),
        run_id: format!("debug-{debug_id}"),
        image: record.image.clone(),
        command: command.to_vec(),
        args: rest.to_vec(),
        env: record.env.clone(),
        work_dir: new_task.join("work"),
        log_path: new_task.join("log.txt"),
        process_file: new_task.join("process"),
        mounts: record.mounts_in(&new_task, &new_artifacts),
        resources: Default::default(),
        gpus: None,
        pod: Default::default(),
        volumes: Vec::new(),
        masked: Vec::new(),
    };
    let router = StepRouter::prepare_for(
        args.executor,
        settings.load_config()?,
        ProcessExecutor::new(settings.python_envs(), settings.warm_workers()),
        &[(step.image.as_str(), step.argv())],
        settings.home.path(),
        std::env::current_dir()?,
        printer,
    )
    .await?;
    let (events, mut warnings) = EventSink::channel();
    // Ctrl-C stops the step as it would stop a run's (its container removed), then kfbox.
    let stop = CancellationToken::new();
    let interrupt = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        })
    };
    let ran = CancellationToken::new();
    let started = std::time::Instant::now();
    let started_at = now_ms();
    let (exit, shown) = tokio::join!(
        async {
            let exit = router.run(&step, &events, &stop).await;
            ran.cancel();
            exit
        },
        follow_log(printer, here, &step.log_path, &ran)
    );
    interrupt.abort();
    drop(events);
    while let Ok(event) = warnings.try_recv() {
        if let RunEvent::Warning(text) = event {
            printer.warning(&text);
        }
    }
    shown?;
    let error = match exit {
        Ok(exit) => exit.failure(&step),
        Err(e) => Some(kfbox_step::error_chain(&e)),
    };
    Ok(Ended {
        error,
        outputs: container_outputs(&new_task.join("outputs")),
        started_at,
        took: started.elapsed().as_secs_f64(),
    })
}

/// Show the lines a step writes to its log (under `root`) as they come, until `done`.
async fn follow_log(
    printer: &Printer,
    root: &Path,
    log: &Path,
    done: &CancellationToken,
) -> anyhow::Result<()> {
    let (mut offset, mut pending) = (0, Vec::new());
    loop {
        let finished = done.is_cancelled();
        if let Some(bytes) = super::runs::read_from(root, log, &mut offset)? {
            pending.extend(bytes);
        }
        // Whole lines while it runs; what is left once it has ended.
        let upto = match pending.iter().rposition(|&b| b == b'\n') {
            _ if finished => pending.len(),
            Some(at) => at + 1,
            None => 0,
        };
        if upto > 0 {
            let lines: Vec<u8> = pending.drain(..upto).collect();
            printer.data(String::from_utf8_lossy(&lines).trim_end_matches('\n'));
        }
        if finished {
            return Ok(());
        }
        tokio::select! {
            () = done.cancelled() => {}
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
    }
}

/// The output parameters a container step wrote: one file each in its `outputs` directory.
/// Only regular files are read (a step's link to elsewhere is not followed), as text.
fn container_outputs(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return serde_json::Map::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let text = fs_err::read_to_string(entry.path()).ok()?;
            Some((name, serde_json::Value::String(text)))
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The task as a notebook in the lab's workspace, `debug/<run>-<task>.ipynb` (a new name when
/// one is there: the user may have edited it), and where the running lab shows it.
fn write_notebook(
    settings: &GlobalSettings,
    printer: &Printer,
    step: &LightweightStep,
    record: &StepRecord,
    run_id: &str,
    title: &str,
    packages_env: Option<&Path>,
) -> anyhow::Result<ExitStatus> {
    let (Some(source), Some(function), Some(executor_input)) =
        (step.source(), step.function(), step.executor_input())
    else {
        anyhow::bail!("{title}: its command is not the one kfbox knows the SDK to write");
    };
    if !debug_notebook::is_identifier(function) {
        anyhow::bail!("{title}: `{function}` is not a Python function name");
    }
    // Where the run's frames pointed (the user's file) means nothing to a notebook's cells.
    let notebook_env: Vec<_> = record
        .env
        .iter()
        .filter(|(name, _)| name != COMPONENT_SOURCE_ENV)
        .cloned()
        .collect();
    let notebook = DebugNotebook {
        title: title.to_owned(),
        executor_input: &executor_input,
        source,
        function,
        env: &notebook_env,
        packages_env,
    }
    .render();
    let dir = settings.home.workspace().join("debug");
    kfbox_paths::create_private_dir_all(&dir)?;
    let stem = notebook_stem(run_id, &record.task_path)?;
    let (name, file) = (1..)
        .map(|n| match n {
            1 => format!("{stem}.ipynb"),
            n => format!("{stem}-{n}.ipynb"),
        })
        .map(|name| {
            let file = fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(&name));
            (name, file)
        })
        .find(|(_, file)| !matches!(file, Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists))
        .expect("some name is free");
    let mut file = file?;
    std::io::Write::write_all(
        &mut file,
        &serde_json::to_vec_pretty(&notebook).expect("JSON serializes"),
    )?;
    printer.data(&format!(
        "wrote {}: {title}, its inputs loaded, its code, the call",
        dir.join(&name).display()
    ));
    match crate::instance::running_server(settings).and_then(|s| s.lab_url) {
        Some(lab) => printer.data(&format!(
            "open it in the lab: {}",
            lab_page(&lab, &format!("debug/{name}"))
        )),
        None => printer.note("`kfbox up` starts the lab, where it is under debug/"),
    }
    Ok(ExitStatus::Success)
}

/// `<run8>-<task path, its levels joined by '-'>`, each part a checked name.
fn notebook_stem(run_id: &str, task_path: &str) -> anyhow::Result<String> {
    let run8: String = run_id.chars().take(8).collect();
    kfbox_paths::check_name(&run8)?;
    kfbox_paths::check_names(task_path)?;
    let stem = format!("{run8}-{}", task_path.replace('/', "-"));
    kfbox_paths::check_name(&stem)?;
    Ok(stem)
}

/// The lab's address for `page` (a workspace path), from the address `kfbox up` recorded
/// (`http://HOST:PORT/<page>?token=T`).
fn lab_page(lab_url: &str, page: &str) -> String {
    let origin_end = lab_url
        .match_indices('/')
        .nth(2)
        .map_or(lab_url.len(), |(at, _)| at);
    let query = lab_url.find('?').map_or("", |at| &lab_url[at..]);
    format!("{}/lab/tree/{page}{query}", &lab_url[..origin_end])
}

/// The output parameters the component wrote (`executor_output.json`, as the SDK writes it).
fn outputs(task_dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    fs_err::read_to_string(task_dir.join("executor_output.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|output| output["parameterValues"].as_object().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_address_of_a_workspace_file() {
        assert_eq!(
            lab_page(
                "http://127.0.0.1:8889/lab/tree/welcome.ipynb?token=ab",
                "debug/x.ipynb"
            ),
            "http://127.0.0.1:8889/lab/tree/debug/x.ipynb?token=ab"
        );
        assert_eq!(
            lab_page("http://127.0.0.1:8889/lab?token=ab", "debug/x.ipynb"),
            "http://127.0.0.1:8889/lab/tree/debug/x.ipynb?token=ab"
        );
    }

    #[test]
    fn a_notebook_is_named_by_run_and_task() {
        assert_eq!(
            notebook_stem("1a2b3c4d-55", "loop/iteration-0/train").unwrap(),
            "1a2b3c4d-loop-iteration-0-train"
        );
        assert!(notebook_stem("1a2b3c4d", "a/../b").is_err());
        assert!(notebook_stem("../", "train").is_err());
    }
}
