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
};
use kfbox_python::LightweightStep;
use kfbox_step::failure::{Failure, FAILURE_FILE_ENV};
use kfbox_step::record::StepRecord;
use kfbox_store::{props, RunSelector};

use crate::env_progress::EnvProgress;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub async fn debug(
    settings: &GlobalSettings,
    printer: &Printer,
    args: DebugArgs,
) -> anyhow::Result<ExitStatus> {
    let store = settings.open_store_for_reading(printer)?;
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
    for name in &record.withheld_env {
        printer.warning(&format!(
            "`{name}` held a Secret's value in the run and is left out here; set it in your environment if the component needs it"
        ));
    }
    let failure_file = here.join("failure.json");
    printer.note(&format!(
        "debugging task `{path}` of run {} on its recorded inputs; outputs in {}",
        run.run_id,
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
    let status = command
        .status()
        .with_context(|| format!("cannot start `{}`", argv[0]))?;
    let took = started.elapsed().as_secs_f64();
    match status.code() {
        Some(0) => {
            printer.data(&format!("✓ SUCCEEDED {path} (debug) in {took:.1}s"));
            for (name, value) in outputs(&new_task) {
                printer.data(&format!("  {name} = {value}"));
            }
            Ok(ExitStatus::Success)
        }
        code => {
            let said = Failure::read(&failure_file)
                .unwrap_or_default()
                .describe(code.unwrap_or(-1));
            printer.data(&format!(
                "✗ FAILED {path} (debug) in {took:.1}s\n    {said}"
            ));
            Ok(ExitStatus::Failure)
        }
    }
}

/// The output parameters the component wrote (`executor_output.json`, as the SDK writes it).
fn outputs(task_dir: &Path) -> Vec<(String, String)> {
    let Ok(text) = fs_err::read_to_string(task_dir.join("executor_output.json")) else {
        return Vec::new();
    };
    let Ok(output) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    output["parameterValues"]
        .as_object()
        .map(|values| {
            values
                .iter()
                .map(|(k, v)| {
                    (
                        crate::human::shown(k).into_owned(),
                        crate::human::shown(&v.to_string()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
