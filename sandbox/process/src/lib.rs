//! The host-process executor: lightweight Python components run in managed environments,
//! container components run on the host when their program exists here.
//!
//! Every step runs in its own process group so that cancelling stops the whole tree the step
//! started, not only its shell. A lightweight component's attempt is forked from a warm worker
//! of its environment where it can be (`warm.rs`), else started as the SDK's command line.

mod host_python;
mod limits;
mod private_mounts;
mod warm;

pub use host_python::{install_component_runner, path_with};
pub use warm::WarmWorkers;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kfbox_python::{find_program, Env, LightweightStep, PythonEnvs, Requirements, Update};
use kfbox_step::events::{EventSink, RunEvent, WarnOnce};
use kfbox_step::failure::{Failure, StderrTail, FAILURE_FILE_ENV};
use kfbox_step::mask::mask_line;
use kfbox_step::{Executor, ExecutorError, OncePerKey, Step, StepExit};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// How long a cancelled step gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

pub struct ProcessExecutor {
    envs: PythonEnvs,
    ready: OncePerKey<Requirements, Result<Env, String>>,
    /// Whether this run was told (at debug level) that kfbox skips the SDK's pip prelude.
    prelude_noted: std::sync::atomic::AtomicBool,
    /// Which images (with the program run in their place) this run was told run from the host.
    hosted: WarnOnce,
    /// Whether steps can have volumes here: checked once, when the first one asks.
    mount_namespaces: tokio::sync::OnceCell<Result<PathBuf, String>>,
    /// kfbox's runner of the SDK's executor, written once (see `embedded/python`).
    component_runner: tokio::sync::OnceCell<Result<PathBuf, String>>,
    workers: WarmWorkers,
}

impl ProcessExecutor {
    /// `workers` may be shared with other executors (the runs of one `kfbox up`).
    pub fn new(envs: PythonEnvs, workers: WarmWorkers) -> Self {
        Self {
            envs,
            workers,
            ready: OncePerKey::default(),
            prelude_noted: std::sync::atomic::AtomicBool::new(false),
            hosted: WarnOnce::default(),
            mount_namespaces: tokio::sync::OnceCell::new(),
            component_runner: tokio::sync::OnceCell::new(),
        }
    }

    /// The lightweight command with kfbox's runner in place of the SDK's executor (see
    /// [`use_component_runner`]), and the runner's path; the command unchanged where the SDK
    /// wrote it differently or the runner cannot be written.
    async fn with_component_runner(&self, argv: Vec<String>) -> (Vec<String>, Option<PathBuf>) {
        let Some(wrapped) = use_component_runner(&argv) else {
            return (argv, None);
        };
        let root = self.envs.root().to_owned();
        let runner = self
            .component_runner
            .get_or_init(|| async move {
                match tokio::task::spawn_blocking(move || install_component_runner(&root)).await {
                    Ok(Ok(path)) => Ok(path),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
        match runner {
            Ok(path) => (wrapped, Some(path.clone())),
            Err(why) => {
                tracing::debug!("kfbox's component runner is not used: {why}");
                (argv, None)
            }
        }
    }

    /// kfbox drops the SDK's `pip install` prelude (its managed environment has the packages:
    /// this is why a step starts in milliseconds), but the same line runs in a cluster's pod
    /// and fails there without an index: said once per run at debug level, and in each such
    /// step's log.
    async fn note_skipped_prelude(
        &self,
        step: &Step,
        lightweight: &LightweightStep,
    ) -> Result<(), ExecutorError> {
        let mut wanted: Vec<&str> = lightweight.sdk_pin.iter().map(String::as_str).collect();
        wanted.extend(lightweight.requirements.packages.iter().map(String::as_str));
        if wanted.is_empty() {
            return Ok(());
        }
        let install = format!("pip install {}", wanted.join(" "));
        if !self
            .prelude_noted
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::debug!(
                task = %step.task_path,
                "the SDK's prelude (`{install}`) is skipped here; on a cluster it runs in the pod (`kfbox check --for cluster`)"
            );
        }
        let io = |source| ExecutorError::Io {
            path: step.log_path.clone(),
            source,
        };
        let mut log = fs_err::tokio::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&step.log_path)
            .await
            .map_err(io)?;
        use tokio::io::AsyncWriteExt;
        log.write_all(
            format!("[kfbox] skipped the SDK's prelude `{install}`: the managed environment has these packages (a cluster runs it in the pod)\n")
                .as_bytes(),
        )
        .await
        .map_err(io)
    }

    /// The managed environments steps run in.
    pub fn envs(&self) -> &PythonEnvs {
        &self.envs
    }

    /// The environment for a requirement set, built at most once per process. The step that
    /// has it built sees the work as its phase and in its log; steps that need the same set
    /// wait for that build, and say so as their phase.
    async fn env_for(
        &self,
        step: &Step,
        requirements: &Requirements,
        events: &EventSink,
    ) -> Result<Env, ExecutorError> {
        if let Some(ready) = self.ready.get(requirements) {
            return ready.map_err(ExecutorError::Environment);
        }
        // Until it is ready: the step that builds it shows the build instead; the others
        // (steps asking for the same packages at once) say what they wait for.
        let phase = |phase: String| {
            events.send(RunEvent::TaskPhase {
                path: step.task_path.clone(),
                phase,
            })
        };
        phase(if requirements.packages.is_empty() {
            "waiting for the Python environment with the kfp SDK".to_owned()
        } else {
            format!(
                "waiting for the Python environment with {}",
                requirements.packages.join(" ")
            )
        });
        let result = self
            .ready
            .get_or_init(requirements, || {
                let envs = self.envs.clone();
                let requirements = requirements.clone();
                let events = events.clone();
                let task = step.task_path.clone();
                let log_path = step.log_path.clone();
                async move {
                    let built = tokio::task::spawn_blocking(move || {
                        let log = std::sync::Mutex::new(
                            fs_err::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&log_path)
                                .ok(),
                        );
                        let progress = |update: Update| {
                            let message = update.to_string();
                            let fraction = update.fraction();
                            // Milestones go to the step's log; counts only to live views.
                            if fraction.is_none() {
                                if let Some(file) = log.lock().expect("log lock").as_mut() {
                                    let _ = writeln!(file, "[kfbox] {message}");
                                }
                            }
                            let phase = match update {
                                Update::Ready { .. } => String::new(),
                                _ => message.clone(),
                            };
                            events.send(RunEvent::TaskPhase {
                                path: task.clone(),
                                phase,
                            });
                            match update {
                                Update::Ready { .. } => events.send(RunEvent::Prepared { message }),
                                _ => events.send(RunEvent::Preparing { message, fraction }),
                            }
                        };
                        envs.for_requirements(&requirements, &progress)
                    })
                    .await;
                    match built {
                        Ok(Ok(env)) => Ok(env),
                        Ok(Err(e)) => Err(kfbox_step::error_chain(&e)),
                        Err(e) => Err(e.to_string()),
                    }
                }
            })
            .await;
        phase(String::new());
        result.map_err(ExecutorError::Environment)
    }
}

#[async_trait]
impl Executor for ProcessExecutor {
    fn shares_host_files(&self, _step: &Step) -> bool {
        true
    }

    async fn run(
        &self,
        step: &Step,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        let argv = step.argv();
        let mut sdk_call = None;
        let (argv, env) = match LightweightStep::detect(&argv) {
            Some(lightweight) => {
                self.note_skipped_prelude(step, &lightweight).await?;
                if let Some(pin) = &lightweight.sdk_pin {
                    tracing::debug!(
                        task = %step.task_path,
                        "component pins {pin}; the managed {} serves it (same 2.x executor protocol)",
                        kfbox_python::SDK_REQUIREMENT
                    );
                }
                let env = self
                    .env_for(step, &lightweight.requirements, events)
                    .await?;
                sdk_call = warm::SdkCall::of(&lightweight.argv);
                let (argv, runner) = self.with_component_runner(lightweight.argv).await;
                (argv, Some((env, runner)))
            }
            None => {
                let program = argv.first().cloned().unwrap_or_default();
                if find_program(&program).is_none() {
                    return Err(ExecutorError::NeedsContainerRuntime {
                        image: step.image.clone(),
                        program,
                    });
                }
                self.hosted.warn(events, format!("{} {program}", step.image), || {
                    format!(
                        "no container runtime is used: tasks with image `{}` run `{program}` from this host (the first: task `{}`)",
                        step.image, step.task_path
                    )
                });
                // Python images get the managed SDK so that `python3 -m kfp...` works as in them.
                let env = if program.starts_with("python") {
                    Some((
                        self.env_for(step, &Requirements::default(), events).await?,
                        None,
                    ))
                } else {
                    None
                };
                (argv, env)
            }
        };
        if let (Some(call), Some((env, Some(runner)))) = (sdk_call, &env) {
            if step.volumes.is_empty() && warm::env_allows_warm(&step.env) {
                match self.fork_warm(step, env, runner, &call).await {
                    Ok(child) => {
                        return supervise(step, StepProcess::Warm(child), events, cancel).await
                    }
                    Err(why) => tracing::debug!(
                        task = %step.task_path,
                        "the step starts cold: {why}"
                    ),
                }
            }
        }
        let argv = if step.volumes.is_empty() {
            argv
        } else {
            let bwrap = self
                .mount_namespaces
                .get_or_init(private_mounts::usable_bwrap)
                .await
                .clone()
                .map_err(|why| {
                    ExecutorError::Unrunnable(format!(
                        "task `{}` mounts volumes ({}); running it as a host process needs a private mount namespace: {why}",
                        step.task_path,
                        step.volumes
                            .iter()
                            .map(|v| v.target.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            let mut wrapped = vec![bwrap.display().to_string()];
            wrapped.extend(private_mounts::bwrap_args(&step.volumes, &step.work_dir)?);
            wrapped.extend(argv);
            wrapped
        };
        let process = spawn(step, &argv, env.as_ref())?;
        supervise(step, process, events, cancel).await
    }
}

impl ProcessExecutor {
    async fn fork_warm(
        &self,
        step: &Step,
        env: &Env,
        runner: &Path,
        call: &warm::SdkCall,
    ) -> Result<warm::WarmChild, String> {
        let variables = step_variables(step, Some((env, Some(runner))));
        let request = warm::Request {
            source: &call.source,
            args: &call.args,
            env: warm::Request::environment(&variables, &step.work_dir)
                .ok_or("an environment value is not UTF-8")?,
            cwd: &step.work_dir,
            runner,
        };
        self.workers.fork(env, self.envs.root(), &request).await
    }
}

/// The variable that names kfbox's component runner to the command [`use_component_runner`]
/// returns.
pub const COMPONENT_RUNNER_ENV: &str = "KFBOX_COMPONENT_RUNNER";

/// The variable that tells the runner where the component's function is defined in the user's
/// file (`{"file": ..., "def_line": ...}`), so that its frames name that file.
pub const COMPONENT_SOURCE_ENV: &str = "KFBOX_COMPONENT_SOURCE";

/// A lightweight component's command (without the pip prelude) with kfbox's runner of the
/// SDK's executor in place of `python3 -m kfp.dsl.executor_main`: the same executor, a
/// readable log, failures in words. `None` where the SDK wrote the command differently.
pub fn use_component_runner(argv: &[String]) -> Option<Vec<String>> {
    const SDK_EXECUTOR: &str = "python3 -m kfp.dsl.executor_main";
    let at = argv.iter().position(|a| a.contains(SDK_EXECUTOR))?;
    let mut argv = argv.to_vec();
    argv[at] = argv[at].replace(
        SDK_EXECUTOR,
        &format!("python3 \"${COMPONENT_RUNNER_ENV}\""),
    );
    Some(argv)
}

/// What kfbox sets for a step over its own environment, started or forked: the step's own
/// variables, then kfbox's (GPUs, the failure file, the managed environment, the runner).
fn step_variables(step: &Step, env: Option<(&Env, Option<&Path>)>) -> Vec<(OsString, OsString)> {
    let mut set: Vec<(OsString, OsString)> =
        step.env.iter().map(|(k, v)| (k.into(), v.into())).collect();
    set.push(("PYTHONUNBUFFERED".into(), "1".into()));
    if let Some(gpus) = &step.gpus {
        let visible: Vec<String> = gpus.iter().map(u32::to_string).collect();
        set.push(("CUDA_VISIBLE_DEVICES".into(), visible.join(",").into()));
    }
    set.push((FAILURE_FILE_ENV.into(), step.failure_file().into()));
    if let Some((env, runner)) = env {
        set.push(("PATH".into(), path_with(&env.bin_dir)));
        set.push(("VIRTUAL_ENV".into(), env.dir.clone().into()));
        if let Some(runner) = runner {
            set.push((COMPONENT_RUNNER_ENV.into(), runner.into()));
        }
    }
    set
}

/// A step's process: started from its command line, or forked by a warm worker.
enum StepProcess {
    Cold {
        program: String,
        child: tokio::process::Child,
    },
    Warm(warm::WarmChild),
}

impl StepProcess {
    /// Its process group (it leads it).
    fn group(&self) -> Option<Pid> {
        match self {
            Self::Cold { child, .. } => child.id().map(|id| Pid::from_raw(id as i32)),
            Self::Warm(child) => Some(child.pid()),
        }
    }

    async fn wait(&mut self) -> Result<StepExit, ExecutorError> {
        match self {
            Self::Cold { program, child } => exit_of(program, child.wait().await),
            Self::Warm(child) => child.wait().await.map_err(ExecutorError::Lost),
        }
    }

    fn output(
        &mut self,
    ) -> (
        Box<dyn AsyncRead + Unpin + Send>,
        Box<dyn AsyncRead + Unpin + Send>,
    ) {
        match self {
            Self::Cold { child, .. } => (
                Box::new(child.stdout.take().expect("piped")),
                Box::new(child.stderr.take().expect("piped")),
            ),
            Self::Warm(child) => (
                Box::new(child.stdout.take().expect("piped")),
                Box::new(child.stderr.take().expect("piped")),
            ),
        }
    }
}

fn spawn(
    step: &Step,
    argv: &[String],
    env: Option<&(Env, Option<PathBuf>)>,
) -> Result<StepProcess, ExecutorError> {
    let program = argv.first().cloned().unwrap_or_default();
    let env = env.map(|(env, runner)| (env, runner.as_deref()));
    let child = Command::new(&program)
        .args(&argv[1..])
        .envs(step_variables(step, env))
        .current_dir(&step.work_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ExecutorError::Spawn {
            program: program.clone(),
            source,
        })?;
    Ok(StepProcess::Cold { program, child })
}

/// Follow a step's process to its end: its output into the log and the run's events, its
/// limits enforced, cancel as SIGTERM then SIGKILL to its group.
async fn supervise(
    step: &Step,
    mut process: StepProcess,
    events: &EventSink,
    cancel: &CancellationToken,
) -> Result<StepExit, ExecutorError> {
    let pid = process.group();
    if let Some(id) = pid {
        if let Err(e) = kfbox_step::process::note_process(&step.process_file, id.as_raw() as u32) {
            tracing::warn!(
                "cannot note the step's process in {}: {e}",
                step.process_file.display()
            );
        }
    }
    let log = fs_err::tokio::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&step.log_path)
        .await
        .map_err(|source| ExecutorError::Io {
            path: step.log_path.clone(),
            source,
        })?;
    let log = Arc::new(tokio::sync::Mutex::new(log));
    let masked = Arc::new(step.masked.clone());
    let tail = Arc::new(std::sync::Mutex::new(StderrTail::default()));
    let (stdout, stderr) = process.output();
    let stdout = pump(
        stdout,
        log.clone(),
        events.clone(),
        step.task_path.clone(),
        masked.clone(),
        None,
    );
    let stderr = pump(
        stderr,
        log.clone(),
        events.clone(),
        step.task_path.clone(),
        masked,
        Some(tail.clone()),
    );
    // `set_memory_limit` and `set_cpu_limit`: the watch ends only when it killed the group.
    let watch = async {
        let (Some(group), Some(limits)) = (pid, limits::Limits::of(step)) else {
            return std::future::pending().await;
        };
        match limits::enforce(group, limits).await {
            Ok(limit) => limit,
            Err(why) => {
                events.send(RunEvent::Warning(format!(
                    "task `{}`: its CPU and memory limits are not enforced: {why}",
                    step.task_path
                )));
                std::future::pending().await
            }
        }
    };
    let ended = tokio::select! {
        exit = process.wait() => Ended::Exited(exit),
        _ = cancel.cancelled() => Ended::Canceled,
        limit = watch => Ended::OutOfMemory(limit),
    };
    let exit = match ended {
        Ended::OutOfMemory(limit) => {
            let _ = process.wait().await;
            let mut file = log.lock().await;
            let _ = file
                .write_all(format!("{}\n", kfbox_step::out_of_memory_note(limit)).as_bytes())
                .await;
            StepExit::OutOfMemory(limit)
        }
        Ended::Exited(exit) => exit?,
        Ended::Canceled => {
            if let Some(pid) = pid {
                let _ = killpg(pid, Signal::SIGTERM);
                if tokio::time::timeout(GRACE, process.wait()).await.is_err() {
                    let _ = killpg(pid, Signal::SIGKILL);
                    let _ = process.wait().await;
                }
            }
            StepExit::Canceled
        }
    };
    // Children of the step that kept the pipes open must not keep the task alive.
    if let Some(pid) = pid {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stdout.await;
        let _ = stderr.await;
    })
    .await;
    log.lock().await.flush().await.ok();
    if matches!(exit, StepExit::Exited(code) if code != 0) {
        let tail = tail.lock().expect("stderr tail lock");
        if let Err(e) = Failure::write_tail_unless_described(&step.failure_file(), &tail) {
            tracing::warn!("cannot note the step's last stderr lines: {e}");
        }
    }
    Ok(exit)
}

/// What ended the wait for a step.
enum Ended {
    Exited(Result<StepExit, ExecutorError>),
    Canceled,
    /// The limits' watch killed the group for its memory (the limit, in bytes).
    OutOfMemory(u64),
}

fn exit_of(
    program: &str,
    status: std::io::Result<std::process::ExitStatus>,
) -> Result<StepExit, ExecutorError> {
    let status = status.map_err(|source| ExecutorError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => StepExit::Exited(code),
        (None, Some(signal)) => StepExit::Signaled(signal),
        (None, None) => StepExit::Exited(-1),
    })
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    reader: R,
    log: Arc<tokio::sync::Mutex<fs_err::tokio::File>>,
    events: EventSink,
    path: String,
    masked: Arc<Vec<String>>,
    tail: Option<Arc<std::sync::Mutex<StderrTail>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = mask_line(&line, &masked).into_owned();
            if let Some(tail) = &tail {
                tail.lock().expect("stderr tail lock").push(&line);
            }
            {
                let mut file = log.lock().await;
                let _ = file.write_all(line.as_bytes()).await;
                let _ = file.write_all(b"\n").await;
            }
            events.send(RunEvent::Log {
                path: path.clone(),
                line,
            });
        }
    })
}
