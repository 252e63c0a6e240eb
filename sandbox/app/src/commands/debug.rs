//! `kfbox debug RUN TASK`: one Python task of a recorded run, run again in this terminal on the
//! inputs it had (its recorded command: the ExecutorInput with its parameters and its input
//! artifacts' URIs), its outputs in a fresh directory under `KFBOX_HOME/debug/`. The run itself
//! is left as it was.

use std::path::Path;
use std::process::Command;

use anyhow::Context;
use kfbox_cli::DebugArgs;
use kfbox_process::{
    install_component_runner, path_with, use_component_runner, COMPONENT_RUNNER_ENV,
    COMPONENT_SOURCE_ENV,
};
use kfbox_python::LightweightStep;
use kfbox_step::failure::{Failure, FAILURE_FILE_ENV};
use kfbox_step::record::StepRecord;
use kfbox_store::{props, DebugExecution, RunSelector};

use crate::debug_notebook::{self, DebugNotebook};
use crate::env_progress::EnvProgress;
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
    if LightweightStep::detect(&record.argv()).is_none() {
        anyhow::bail!(
            "task `{path}` runs image `{}` with its own command; `kfbox debug` runs Python components (`@dsl.component`)",
            record.image
        );
    };

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
    let lightweight = LightweightStep::detect(&record.argv_in(&new_task, &new_artifacts))
        .expect("the same command, other paths");

    let envs = settings.python_envs();
    let progress = EnvProgress::new(settings, printer, "");
    let requirements = lightweight.requirements.clone();
    let env = tokio::task::spawn_blocking(move || {
        envs.for_requirements(&requirements, &|update| progress.update(update))
    })
    .await??;
    for name in &record.withheld_env {
        printer.warning(&format!(
            "`{name}` held a Secret's value in the run and is left out here; set it in your environment if the component needs it"
        ));
    }
    let title = format!("task `{path}` of run {}", run.run_id);
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
    let took = started.elapsed().as_secs_f64();
    let outputs = outputs(&new_task);
    let error = (!status.success()).then(|| {
        Failure::read(&failure_file)
            .unwrap_or_default()
            .describe(status.code().unwrap_or(-1))
    });
    let recorded = store.record_debug_execution(
        &run,
        &DebugExecution {
            of_execution: task.id,
            task_path: path.clone(),
            succeeded: status.success(),
            error: error.clone(),
            started_at,
            finished_at: now_ms(),
            outputs_dir: here.display().to_string(),
            outputs: outputs.clone(),
            code: code.map(|c| c.display().to_string()),
        },
    )?;
    let shown = |state: &str| format!("{state} {path} (debug execution {recorded}) in {took:.1}s");
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
