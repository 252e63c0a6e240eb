//! The kfbox command line, as clap types. Parsing only: no behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Environment variables kfbox reads, in one place.
pub mod env_vars {
    /// Where kfbox keeps runs and Python environments (default: the platform data directory).
    pub const KFBOX_HOME: &str = "KFBOX_HOME";
    /// The Python interpreter used to create managed environments.
    pub const KFBOX_PYTHON: &str = "KFBOX_PYTHON";
    /// Log filter for diagnostics on stderr (tracing `EnvFilter` syntax), e.g. `debug`.
    pub const KFBOX_LOG: &str = "KFBOX_LOG";
    /// Disables colour when set to anything.
    pub const NO_COLOR: &str = "NO_COLOR";
}

#[derive(Debug, Parser)]
#[command(
    name = "kfbox",
    version,
    about = "Kubeflow Pipelines on your laptop: run pipelines compiled by the kfp SDK, correctly and in parallel",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// When to use colour on stderr.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only errors and the requested data.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Where kfbox keeps its data.
    #[arg(long, global = true, env = env_vars::KFBOX_HOME, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The Python interpreter used to create managed environments.
    #[arg(long, global = true, env = env_vars::KFBOX_PYTHON, value_name = "PATH")]
    pub python: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a compiled pipeline (PipelineSpec YAML or JSON) to completion.
    Run(RunArgs),
    /// Show the managed Python environments, or repair them.
    Env(EnvArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file written by `kfp.compiler.Compiler().compile(...)`.
    pub pipeline: PathBuf,
    /// A pipeline parameter, NAME=VALUE; lists and structs as JSON. Repeatable.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A pipeline input artifact, NAME=PATH (a local file or directory). Repeatable.
    #[arg(long = "artifact", short = 'a', value_name = "NAME=PATH")]
    pub artifacts: Vec<String>,
    /// Print one JSON summary on stdout and nothing else there.
    #[arg(long)]
    pub json: bool,
    /// How many steps may run at once [default: 4 per CPU core, at least 8].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// A display name for the run (`{{$.pipeline_job_name}}`).
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Remove environments that are incomplete or broken; they are rebuilt on next use.
    #[arg(long)]
    pub repair: bool,
    /// Create the base environment (the kfp SDK) now instead of on first use.
    #[arg(long)]
    pub prepare: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
