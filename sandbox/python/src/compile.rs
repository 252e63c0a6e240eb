//! A pipeline defined in a Python file, compiled to the IR by the managed `kfp` SDK in a
//! process of its own (`kfbox run FILE.py`): the user's code never runs inside kfbox.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde::Deserialize;

use crate::envs::Env;

const SCRIPT: &str = include_str!("../../../embedded/python/compile_pipeline.py");

/// What to compile from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Its one `@dsl.pipeline`, or the one with this Python name or pipeline name.
    Pipeline(Option<String>),
    /// One of its components, alone, as a pipeline of one task.
    Component(String),
}

/// The file compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFile {
    /// The IR, as the SDK's compiler wrote it.
    pub yaml: String,
    /// The Python name of what was compiled.
    pub name: String,
    /// The local Python files the compile loaded: the file and the modules it imports from
    /// beside it (what `--watch` watches).
    pub modules: Vec<PathBuf>,
    /// Where each lightweight component's function is defined, by function name.
    pub functions: BTreeMap<String, FunctionSource>,
}

/// Where a component's function is: its file and the line of its `def`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct FunctionSource {
    pub file: PathBuf,
    pub def_line: u32,
}

/// What the script wrote: what it compiled, or why it could not.
#[derive(Deserialize)]
struct Report {
    error: Option<String>,
    #[serde(flatten)]
    compiled: Option<Compiled>,
}

#[derive(Deserialize)]
struct Compiled {
    name: String,
    modules: Vec<PathBuf>,
    functions: BTreeMap<String, FunctionSource>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The user's code raised while it was imported or compiled: its traceback.
    #[error("{} raised while it was compiled:\n{}", file.display(), traceback.trim_end())]
    Raised { file: PathBuf, traceback: String },
    /// No single pipeline or component answers the choice.
    #[error("{}: {}", file.display(), why.trim_end())]
    NoChoice { file: PathBuf, why: String },
    #[error("the kfp SDK could not compile {}: {}", file.display(), said.trim_end())]
    Failed { file: PathBuf, said: String },
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Compile `file` with the SDK of `env`, working in `scratch` (a directory of the caller's,
/// emptied by it).
pub fn compile_file(
    env: &Env,
    file: &Path,
    choice: &Choice,
    scratch: &Path,
) -> Result<CompiledFile, CompileError> {
    let script = write_script(scratch)?;
    let (out, report) = (scratch.join("pipeline.yaml"), scratch.join("report.json"));
    let mut command = Command::new(&env.python);
    command.arg(&script).arg(file).arg(&out).arg(&report);
    match choice {
        Choice::Pipeline(None) => {}
        Choice::Pipeline(Some(name)) => {
            command.arg("--pipeline").arg(name);
        }
        Choice::Component(name) => {
            command.arg("--component").arg(name);
        }
    }
    let output = command.output().map_err(io(&env.python))?;
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    compiled(file, output.status.code(), &out, &report, || said)
}

/// A compiler that keeps the SDK imported between compiles (`kfbox run --watch`): one Python
/// process that compiles each request in a process forked from it, so that a save is compiled
/// in a fraction of the SDK's import time and nothing of the user's code outlives its compile.
pub struct WarmCompiler {
    child: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
}

impl WarmCompiler {
    /// Start one with the SDK of `env`; its script is written into `dir`.
    pub fn start(env: &Env, dir: &Path) -> Result<Self, CompileError> {
        let script = write_script(dir)?;
        let mut child = Command::new(&env.python)
            .arg(&script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io(&env.python))?;
        let requests = child.stdin.take().expect("piped");
        let answers = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self {
            child,
            requests,
            answers,
        })
    }

    /// As [`compile_file`]; an error of kind [`CompileError::Failed`] means the compiler
    /// itself stopped: [`compile_file`] still works.
    pub fn compile(
        &mut self,
        file: &Path,
        choice: &Choice,
        scratch: &Path,
    ) -> Result<CompiledFile, CompileError> {
        let (out, report) = (scratch.join("pipeline.yaml"), scratch.join("report.json"));
        let (kind, name) = match choice {
            Choice::Pipeline(name) => ("pipeline", name.as_deref()),
            Choice::Component(name) => ("component", Some(name.as_str())),
        };
        let request = serde_json::json!({
            "file": file, "out": out, "report": report, "kind": kind, "name": name,
        });
        let stopped = |why: String| CompileError::Failed {
            file: file.to_owned(),
            said: format!("kfbox's compiler process stopped: {why}"),
        };
        writeln!(self.requests, "{request}").map_err(|e| stopped(e.to_string()))?;
        self.requests.flush().map_err(|e| stopped(e.to_string()))?;
        let mut answer = String::new();
        match self.answers.read_line(&mut answer) {
            Ok(0) => return Err(stopped("it ended".to_owned())),
            Err(e) => return Err(stopped(e.to_string())),
            Ok(_) => {}
        }
        let status = answer.trim().parse::<i32>().ok();
        compiled(file, status, &out, &report, || {
            format!("the compile ended with status {}", answer.trim())
        })
    }
}

impl Drop for WarmCompiler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CompileError {
    let path = path.to_owned();
    move |source| CompileError::Io { path, source }
}

fn write_script(dir: &Path) -> Result<PathBuf, CompileError> {
    let script = dir.join("compile_pipeline.py");
    fs_err::write(&script, SCRIPT).map_err(io(&script))?;
    Ok(script)
}

/// What a compile that ended with `status` produced, from the files the script wrote; `said`
/// is what it printed, for a compile that failed in an unexpected way.
fn compiled(
    file: &Path,
    status: Option<i32>,
    out: &Path,
    report: &Path,
    said: impl FnOnce() -> String,
) -> Result<CompiledFile, CompileError> {
    let failed = |said: String| CompileError::Failed {
        file: file.to_owned(),
        said,
    };
    let Ok(text) = fs_err::read_to_string(report) else {
        return Err(failed(said()));
    };
    let report: Report = serde_json::from_str(&text)
        .map_err(|e| failed(format!("its report is not what kfbox wrote ({e}): {text}")))?;
    let report = match (status, report.error, report.compiled) {
        (Some(0), None, Some(compiled)) => compiled,
        (Some(3), Some(traceback), _) => {
            return Err(CompileError::Raised {
                file: file.to_owned(),
                traceback,
            })
        }
        (Some(4), Some(why), _) => {
            return Err(CompileError::NoChoice {
                file: file.to_owned(),
                why,
            })
        }
        _ => return Err(failed(said())),
    };
    Ok(CompiledFile {
        yaml: fs_err::read_to_string(out).map_err(io(out))?,
        name: report.name,
        modules: report.modules,
        functions: report.functions,
    })
}
