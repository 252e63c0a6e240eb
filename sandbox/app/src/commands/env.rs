//! `kfbox env`: the managed Python environments.

use kfbox_cli::EnvArgs;
use kfbox_python::PythonEnvs;

use crate::printer::Printer;
use crate::settings::GlobalSettings;
use crate::ExitStatus;

pub async fn env(
    settings: &GlobalSettings,
    printer: &Printer,
    args: EnvArgs,
) -> anyhow::Result<ExitStatus> {
    let envs = PythonEnvs::new(settings.python_dir(), settings.python.clone());
    if args.repair {
        let removed = {
            let envs = envs.clone();
            tokio::task::spawn_blocking(move || envs.repair()).await??
        };
        if removed.is_empty() {
            printer.note("all environments are healthy");
        }
        for name in removed {
            printer.note(&format!(
                "removed broken environment {name}; it is rebuilt on next use"
            ));
        }
    }
    if args.prepare {
        let envs = envs.clone();
        let quiet = settings.quiet;
        let printer = printer.clone();
        tokio::task::spawn_blocking(move || {
            let progress = |line: &str| {
                if !quiet {
                    printer.note(line);
                }
            };
            envs.base(&progress)
        })
        .await??;
    }
    let list = envs.list()?;
    if args.json {
        printer.data(&serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        printer.note(&format!(
            "no environments yet under {} (the first Python step creates one; `kfbox env --prepare` does it now)",
            envs.root().display()
        ));
    } else {
        for env in list {
            let state = if env.ready { "ready" } else { "incomplete" };
            printer.data(&format!(
                "{:<40} {:<10} python {:<8} {}",
                env.name,
                state,
                env.python_version,
                env.requirements.join(" ")
            ));
        }
    }
    Ok(ExitStatus::Success)
}
