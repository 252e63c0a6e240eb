//! kfbox's commands. The only crate that prints or decides exit codes.

mod commands;
mod config;
mod debug_notebook;
mod env_progress;
mod executors;
mod exit;
mod home;
mod human;
mod instance;
pub mod json;
mod pipeline_file;
mod printer;
mod reporter;
mod settings;
mod signals;
mod summary;
mod watch;

use std::process::ExitCode;

use clap::Parser;
use kfbox_cli::{Cli, Command};
use kfbox_namespace::ObjectKind;

use exit::{ExitStatus, UsageError};

pub fn main() -> ExitCode {
    // Run data, the store and logs are nobody else's business on a shared machine; steps
    // inherit this too, so what they write into the run is private as well.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    let settings = settings::GlobalSettings::resolve(&cli.global);
    settings::init_tracing(&settings);
    let printer = printer::Printer::new(settings.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            printer.error(&anyhow::anyhow!(e).context("cannot start the async runtime"));
            return ExitStatus::Error.into();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => commands::run(&settings, &printer, args).await,
            Command::Check(args) => commands::check(&printer, args),
            Command::Env(args) => commands::env(&settings, &printer, args).await,
            Command::Runs(args) => commands::runs(&settings, &printer, args.into_command()).await,
            Command::Logs(args) => commands::logs(&settings, &printer, args).await,
            Command::Debug(args) => commands::debug(&settings, &printer, args).await,
            Command::Artifacts(args) => {
                commands::artifacts(&settings, &printer, args.into_command())
            }
            Command::Lineage(args) => commands::lineage(&settings, &printer, args),
            Command::Images(args) => commands::images(&settings, &printer, args).await,
            Command::Cluster(args) => commands::cluster(&settings, &printer, args).await,
            Command::Volumes(args) => commands::volumes(&settings, &printer, args),
            Command::Secrets(args) => {
                commands::objects(&settings, &printer, ObjectKind::Secret, args)
            }
            Command::ConfigMaps(args) => {
                commands::objects(&settings, &printer, ObjectKind::ConfigMap, args)
            }
            Command::Doctor(args) => commands::doctor(&settings, &printer, args).await,
            Command::Up(args) => commands::up(&settings, &printer, args).await,
            Command::Lab(args) => commands::lab(&settings, &printer, args).await,
            Command::Status(args) => commands::status(&settings, &printer, args).await,
            Command::Down(args) => commands::down(&settings, &printer, args).await,
        }
    });
    match result {
        Ok(status) => status.into(),
        // The one place an error becomes exit code 2.
        Err(error) => {
            match error.downcast_ref::<UsageError>() {
                Some(UsageError(problems)) => problems.iter().for_each(|p| printer.error(p)),
                None => printer.error(&error),
            }
            ExitStatus::Error.into()
        }
    }
}
