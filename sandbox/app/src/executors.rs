//! Which executor runs each step: the `--executor` choice, then `kfbox.toml`'s image rules,
//! then `auto`; `wasm:` images always go to the WebAssembly runtime.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use kfbox_cli::ExecutorKind;
use kfbox_docker::DockerExecutor;
use kfbox_process::ProcessExecutor;
use kfbox_python::{FunctionSource, LightweightStep};
use kfbox_spec::ir::PipelineSpec;
use kfbox_step::events::{EventSink, WarnOnce};
use kfbox_step::{Executor, ExecutorError, Step, StepExit};
use kfbox_wasi::WasiExecutor;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::printer::Printer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Process,
    /// `required`: chosen by name (flag or config), so no fallback without Docker.
    Docker {
        required: bool,
    },
    Wasi,
}

/// The route for one image. Lightweight Python components are processes under `auto`: kfbox's
/// managed environments start them faster than any container.
fn route(chosen: Option<ExecutorKind>, config: &Config, image: &str, lightweight: bool) -> Route {
    if image.starts_with(kfbox_wasi::SCHEME) {
        return Route::Wasi;
    }
    match chosen.or_else(|| config.executor_for(image)) {
        Some(ExecutorKind::Process) => Route::Process,
        Some(ExecutorKind::Docker) => Route::Docker { required: true },
        None | Some(ExecutorKind::Auto) if lightweight => Route::Process,
        None | Some(ExecutorKind::Auto) => Route::Docker { required: false },
    }
}

pub struct StepRouter {
    chosen: Option<ExecutorKind>,
    config: Config,
    process: ProcessExecutor,
    /// The Docker executor, or why there is none.
    docker: Result<DockerExecutor, String>,
    wasi: Option<WasiExecutor>,
    /// Tasks already warned about (one warning per task, not per attempt).
    warned: WarnOnce,
    /// Where the run's lightweight components are defined, by function name, when it came
    /// from a Python file: their failures then name the user's file and line.
    functions: BTreeMap<String, FunctionSource>,
}

impl StepRouter {
    /// Connect to what the pipeline's steps will need, and only that: a pipeline of
    /// lightweight components never touches Docker.
    pub async fn prepare(
        chosen: Option<ExecutorKind>,
        config: Config,
        process: ProcessExecutor,
        spec: &PipelineSpec,
        home: &std::path::Path,
        pipeline_dir: PathBuf,
        printer: &Printer,
    ) -> anyhow::Result<Self> {
        let images: Vec<(&str, Vec<String>)> = spec
            .deployment_spec
            .executors
            .values()
            .filter_map(|e| e.container.as_ref())
            .map(|c| {
                (
                    c.image.as_str(),
                    c.command.iter().chain(&c.args).cloned().collect(),
                )
            })
            .collect();
        Self::prepare_for(
            chosen,
            config,
            process,
            &images,
            home,
            pipeline_dir,
            printer,
        )
        .await
    }

    /// As [`Self::prepare`], for steps given by image and command line.
    pub async fn prepare_for(
        chosen: Option<ExecutorKind>,
        config: Config,
        process: ProcessExecutor,
        steps: &[(&str, Vec<String>)],
        home: &std::path::Path,
        pipeline_dir: PathBuf,
        printer: &Printer,
    ) -> anyhow::Result<Self> {
        let routes: Vec<Route> = steps
            .iter()
            .map(|(image, argv)| {
                let lightweight = LightweightStep::detect(argv).is_some();
                route(chosen, &config, image, lightweight)
            })
            .collect();
        let docker = if routes.iter().any(|r| matches!(r, Route::Docker { .. })) {
            match kfbox_docker::connect().await {
                Ok(client) => match DockerExecutor::new(client, home).await {
                    Ok((executor, reaped)) => {
                        if reaped > 0 {
                            printer.warning(&format!(
                                "removed {reaped} container(s) left running by a kfbox that was killed"
                            ));
                        }
                        Ok(executor)
                    }
                    Err(e) => Err(kfbox_step::error_chain(&e)),
                },
                Err(e) => Err(e.to_string()),
            }
        } else {
            Err("no step of this pipeline runs in Docker".to_owned())
        };
        let wasi = if routes.contains(&Route::Wasi) {
            let limits = config.wasi_limits().map_err(anyhow::Error::msg)?;
            Some(WasiExecutor::new(pipeline_dir, limits)?)
        } else {
            None
        };
        Ok(Self {
            chosen,
            config,
            process,
            docker,
            wasi,
            warned: WarnOnce::default(),
            functions: BTreeMap::new(),
        })
    }

    /// Tell steps where their components' functions are defined (a run of a Python file).
    pub fn with_functions(mut self, functions: BTreeMap<String, FunctionSource>) -> Self {
        self.functions = functions;
        self
    }

    /// The step with `KFBOX_COMPONENT_SOURCE` set, when its function's definition is known.
    fn with_component_source(&self, mut step: Step) -> Step {
        let argv = step.argv();
        let source = argv
            .iter()
            .position(|a| a == "--function_to_execute")
            .and_then(|at| argv.get(at + 1))
            .and_then(|function| self.functions.get(function));
        if let Some(source) = source {
            step.env.push((
                kfbox_process::COMPONENT_SOURCE_ENV.to_owned(),
                serde_json::to_string(source).expect("paths serialize"),
            ));
        }
        step
    }

    /// A host process runs as the user who runs kfbox: a security context that names another
    /// user or group applies only in a container, and says so.
    fn warn_about_identity(&self, step: &Step, events: &EventSink) {
        let Some(security) = step.pod.security else {
            return;
        };
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let other_user = security.run_as_user.is_some_and(|user| user != uid);
        let other_group = security.run_as_group.is_some_and(|group| group != gid);
        let root = security.run_as_non_root && uid == 0;
        if other_user || other_group || root {
            self.warned.warn(events, format!("identity {}", step.task_path), || {
                format!(
                    "task `{}`: set_security_context applies to containers (`--executor docker`); as a host process the step runs as you (uid {uid}, gid {gid})",
                    step.task_path
                )
            });
        }
    }
}

#[async_trait]
impl Executor for StepRouter {
    fn shares_host_files(&self, step: &Step) -> bool {
        let lightweight = LightweightStep::detect(&step.argv()).is_some();
        match route(self.chosen, &self.config, &step.image, lightweight) {
            Route::Process => true,
            Route::Wasi => false,
            // Without a daemon, `auto` runs container steps on the host.
            Route::Docker { required } => self.docker.is_err() && !required,
        }
    }

    fn prepare(&self, step: Step) -> Step {
        let lightweight = LightweightStep::detect(&step.argv()).is_some();
        match route(self.chosen, &self.config, &step.image, lightweight) {
            // kfbox's component runner maps the component's frames to the user's file.
            Route::Process => self.with_component_source(step),
            _ => step,
        }
    }

    async fn run(
        &self,
        step: &Step,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        let lightweight = LightweightStep::detect(&step.argv()).is_some();
        match route(self.chosen, &self.config, &step.image, lightweight) {
            Route::Process => {
                self.warn_about_identity(step, events);
                self.process.run(step, events, cancel).await
            }
            Route::Wasi => match &self.wasi {
                Some(wasi) => wasi.run(step, events, cancel).await,
                None => Err(ExecutorError::Environment(
                    "the WebAssembly runtime was not prepared".into(),
                )),
            },
            Route::Docker { required } => match (&self.docker, required) {
                (Ok(docker), _) => {
                    let offline;
                    let step = match self.process.envs().offline_wheelhouses() {
                        Some(wheelhouses) if lightweight => {
                            offline = offline_prelude(step, wheelhouses);
                            &offline
                        }
                        _ => step,
                    };
                    let exit = docker.run(step, events, cancel).await?;
                    match exit {
                        StepExit::Exited(code) if code != 0 && lightweight => {
                            match prelude_failure(step, code) {
                                Some(why) => Err(ExecutorError::Environment(why)),
                                None => Ok(exit),
                            }
                        }
                        other => Ok(other),
                    }
                }
                (Err(why), true) => Err(ExecutorError::Unrunnable(format!(
                    "task `{}` runs in Docker (image `{}`), and {why}",
                    step.task_path, step.image
                ))),
                (Err(why), false) => {
                    self.warned.warn(events, "no docker".into(), || {
                        format!(
                            "Docker is not available ({}); container steps run as host processes",
                            why.lines().next().unwrap_or_default()
                        )
                    });
                    self.process.run(step, events, cancel).await
                }
            },
        }
    }
}

/// Offline, the SDK's prelude in a container must not wait on an index it cannot reach: pip
/// is told there is none and given kfbox's wheelhouses (mounted read-only at their host paths)
/// to find packages in.
fn offline_prelude(step: &Step, wheelhouses: &[PathBuf]) -> Step {
    let mut step = step.clone();
    // Docker binds absolute paths only; `--wheels` may have been given relative.
    let wheelhouses: Vec<PathBuf> = wheelhouses
        .iter()
        .map(|w| std::path::absolute(w).unwrap_or_else(|_| w.clone()))
        .collect();
    let links: Vec<String> = wheelhouses
        .iter()
        .map(|w| w.display().to_string())
        .collect();
    step.env.push(("PIP_NO_INDEX".into(), "1".into()));
    if !links.is_empty() {
        step.env.push(("PIP_FIND_LINKS".into(), links.join(" ")));
    }
    step.mounts
        .extend(wheelhouses.into_iter().map(|path| kfbox_step::Mount {
            path,
            writable: false,
        }));
    step
}

/// What pip writes when it cannot install: no index reachable, nothing matching, no pip.
const PIP_FAILURES: &[&str] = &[
    "No matching distribution found for",
    "Could not find a version that satisfies the requirement",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "No module named pip",
    // pip itself crashed (e.g. on the SDK's `--trusted-host` for an index URL with a port).
    "site-packages/pip/_internal/",
];

/// In a container the SDK's prelude installs the SDK (and `packages_to_install`) with pip
/// before the component starts: when that is what failed, say so instead of only the exit
/// code. The SDK's executor announces itself first thing, so a log without it that carries
/// pip's error never reached the component.
fn prelude_failure(step: &Step, code: i32) -> Option<String> {
    let log = read_tail(&step.log_path, 64 * 1024)?;
    prelude_failure_in(&log, &step.argv(), code)
}

fn prelude_failure_in(log: &str, argv: &[String], code: i32) -> Option<String> {
    if log.contains("[KFP Executor") {
        return None;
    }
    let pip_said = log
        .lines()
        .rev()
        .find(|line| PIP_FAILURES.iter().any(|sign| line.contains(sign)))?;
    let lightweight = LightweightStep::detect(argv)?;
    let mut wanted: Vec<String> = lightweight.sdk_pin.into_iter().collect();
    wanted.extend(lightweight.requirements.packages);
    Some(format!(
        "the step exited with code {code} in the SDK's pip prelude, before the component started: `pip install {}` failed in the container ({})\nhint: the image needs pip and a reachable package index; or run with `--offline --wheels DIR` (a wheelhouse with these packages, e.g. from `kfbox env bundle`), which pip in the container then installs from; or compile the component with install_kfp_package=False and an image that has kfp and its packages (`kfbox images build`); or run it as a host process (`--executor auto`), where kfbox installs from its own cache",
        wanted.join(" "),
        pip_said.trim()
    ))
}

/// The last `limit` bytes of a file, as text.
fn read_tail(path: &std::path::Path, limit: u64) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs_err::File::open(path).ok()?;
    let length = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(length.saturating_sub(limit)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prelude_that_cannot_reach_an_index_is_named_and_a_failing_component_is_not() {
        let script = "python3 -m pip install --quiet 'kfp==2.17.0' 'pandas' && \"$0\" \"$@\"\n";
        let argv: Vec<String> = [
            "sh",
            "-c",
            script,
            "sh",
            "-ec",
            "python3 -m kfp.dsl.executor_main",
        ]
        .map(str::to_owned)
        .to_vec();
        let offline = "WARNING: Retrying ... Failed to establish a new connection: [Errno 101] Network is unreachable\nERROR: No matching distribution found for kfp==2.17.0\n";
        let why = prelude_failure_in(offline, &argv, 1).expect("the prelude failed");
        assert!(why.contains("`pip install kfp==2.17.0 pandas`"), "{why}");
        assert!(why.contains("No matching distribution found"), "{why}");
        let component = "[KFP Executor 2026-12-01 main] Looking for component\nValueError: No matching distribution found for my data\n";
        assert_eq!(prelude_failure_in(component, &argv, 1), None);
        assert_eq!(prelude_failure_in("Traceback: boom\n", &argv, 1), None);
    }

    #[test]
    fn steps_route_by_flag_then_config_then_kind() {
        let config = Config::default();
        assert_eq!(route(None, &config, "python:3.11", true), Route::Process);
        assert_eq!(
            route(None, &config, "alpine", false),
            Route::Docker { required: false }
        );
        assert_eq!(
            route(Some(ExecutorKind::Docker), &config, "python:3.11", true),
            Route::Docker { required: true }
        );
        assert_eq!(
            route(Some(ExecutorKind::Process), &config, "alpine", false),
            Route::Process
        );
        assert_eq!(
            route(Some(ExecutorKind::Process), &config, "wasm:/m.wasm", false),
            Route::Wasi
        );
        let config: Config =
            toml::from_str("[[executor.images]]\npattern = \"python:*\"\nexecutor = \"docker\"\n")
                .unwrap();
        assert_eq!(
            route(None, &config, "python:3.11", true),
            Route::Docker { required: true }
        );
        assert_eq!(route(None, &config, "other", true), Route::Process);
    }
}
