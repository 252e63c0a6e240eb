//! `kfbox env`: the managed Python environments.

use anyhow::Context;
use kfbox_cli::{EnvArgs, EnvCommand};
use kfbox_lab::{CODELAB_REQUIREMENTS, LAB_REQUIREMENTS};
use kfbox_python::{SDK_REQUIREMENT, SEED_PACKAGES};

use crate::env_progress::EnvProgress;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub async fn env(
    settings: &GlobalSettings,
    printer: &Printer,
    args: EnvArgs,
) -> anyhow::Result<ExitStatus> {
    let envs = settings.python_envs();
    if let Some(EnvCommand::Bundle { dir }) = args.command {
        return bundle(settings, printer, dir).await;
    }
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
        let progress = EnvProgress::new(settings, printer, "");
        tokio::task::spawn_blocking(move || envs.base(&|update| progress.update(update))).await??;
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

/// `kfbox env bundle DIR`: wheels for everything kfbox installs, for a machine without a network.
async fn bundle(
    settings: &GlobalSettings,
    printer: &Printer,
    dir: std::path::PathBuf,
) -> anyhow::Result<ExitStatus> {
    let envs = settings.python_envs();
    let progress = EnvProgress::new(settings, printer, "");
    let made = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let progress = |update: kfbox_python::Update| progress.update(update);
            // The installer first: an offline machine needs it before anything else.
            envs.installer(&progress)?;
            let wheel = envs
                .installer_wheel()
                .context("kfbox's installer was fetched but its wheel is not kept")?;
            fs_err::create_dir_all(&dir)?;
            fs_err::copy(
                &wheel,
                dir.join(wheel.file_name().expect("a wheel has a name")),
            )?;
            let packages: Vec<String> = std::iter::once(SDK_REQUIREMENT)
                .chain(LAB_REQUIREMENTS.iter().copied())
                .chain(CODELAB_REQUIREMENTS.iter().copied())
                .chain(SEED_PACKAGES.iter().copied())
                .map(str::to_owned)
                .collect();
            envs.collect_wheels(&dir, &packages, &progress)?;
            Ok(fs_err::read_dir(&dir)?
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".whl"))
                .count())
        })
        .await?
    };
    match made {
        Ok(count) => {
            printer.data(&format!(
                "{count} wheels in {}; on a machine with the same Python and no network: kfbox up --offline --wheels {}",
                dir.display(),
                dir.display()
            ));
            Ok(ExitStatus::Success)
        }
        Err(e) => Err(e.context(format!("cannot write the wheelhouse {}", dir.display()))),
    }
}
