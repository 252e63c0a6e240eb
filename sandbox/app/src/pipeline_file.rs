//! The pipeline file a command is given: the IR as the SDK's compiler wrote it (YAML or JSON),
//! or a Python file that defines the pipeline, compiled first by kfbox's managed kfp SDK in a
//! process of its own.

use std::path::Path;

use kfbox_python::{compile_file, Choice, CompileError, CompiledFile, Env, WarmCompiler};
use kfbox_spec::{load_pipeline, parse_pipeline, LoadedPipeline};

use crate::env_progress::EnvProgress;
use crate::exit::UsageError;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub struct PipelineFile {
    pub pipeline: LoadedPipeline,
    /// What compiling a Python file found; none for a compiled file.
    pub compiled: Option<CompiledFile>,
}

/// Whether `path` names a Python file, which must be compiled before it runs.
pub fn is_python(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "py")
}

/// Loads pipeline files; one made with [`Loader::warm`] keeps a compiler with the SDK imported
/// between loads of Python files (`--watch`: a save compiles without the SDK's import time).
#[derive(Default)]
pub struct Loader {
    keep_warm: bool,
    warm: Option<WarmCompiler>,
}

impl Loader {
    pub fn warm() -> Self {
        Self {
            keep_warm: true,
            warm: None,
        }
    }

    /// Load the pipeline at `path`; `choice` picks within a Python file.
    pub async fn load(
        &mut self,
        settings: &GlobalSettings,
        printer: &Printer,
        path: &Path,
        choice: Choice,
    ) -> anyhow::Result<PipelineFile> {
        if !is_python(path) {
            if choice != Choice::Pipeline(None) {
                return Err(UsageError::all([anyhow::anyhow!(
                    "{}: --pipeline and --component choose within a Python file; this file is compiled already",
                    path.display()
                )])
                .into());
            }
            return Ok(PipelineFile {
                pipeline: load_pipeline(path)?,
                compiled: None,
            });
        }
        let envs = settings.python_envs();
        let progress = EnvProgress::new(settings, printer, "");
        let env = tokio::task::spawn_blocking(move || envs.base(&|update| progress.update(update)))
            .await??;
        let compile_dir = settings.home.compile_dir();
        kfbox_paths::create_private_dir_all(&compile_dir)?;
        let scratch = tempfile::tempdir_in(&compile_dir)?;
        let file = std::path::absolute(path)?;
        let keep_warm = self.keep_warm;
        let warm = self.warm.take();
        let (compiled, warm) = {
            let scratch = scratch.path().to_owned();
            tokio::task::spawn_blocking(move || {
                compile(
                    &env,
                    warm,
                    keep_warm,
                    &compile_dir,
                    &file,
                    &choice,
                    &scratch,
                )
            })
            .await?
        };
        self.warm = warm;
        let compiled = compiled.map_err(|e| UsageError::all([anyhow::Error::new(e)]))?;
        let pipeline = parse_pipeline(path, &compiled.yaml)?;
        Ok(PipelineFile {
            pipeline,
            compiled: Some(compiled),
        })
    }
}

/// Compile with the warm compiler when there is one (started here when one is wanted), else
/// in a process of its own; a warm compiler that stopped is replaced by that. Returns the warm
/// compiler to keep.
fn compile(
    env: &Env,
    warm: Option<WarmCompiler>,
    keep_warm: bool,
    compile_dir: &Path,
    file: &Path,
    choice: &Choice,
    scratch: &Path,
) -> (Result<CompiledFile, CompileError>, Option<WarmCompiler>) {
    let warm = match warm {
        Some(warm) => Some(warm),
        None if keep_warm => WarmCompiler::start(env, compile_dir).ok(),
        None => None,
    };
    let Some(mut warm) = warm else {
        return (compile_file(env, file, choice, scratch), None);
    };
    match warm.compile(file, choice, scratch) {
        // The compiler itself stopped: this compile, and the next ones, in processes of their own.
        Err(CompileError::Failed { .. }) => (compile_file(env, file, choice, scratch), None),
        other => (other, Some(warm)),
    }
}
