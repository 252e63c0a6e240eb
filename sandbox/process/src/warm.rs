//! Warm Python workers: a lightweight component's attempt forked from a Python that has the
//! SDK's executor imported already, instead of a fresh `sh` and `python3` importing it again.
//!
//! One worker per managed environment (`embedded/python/warm_worker.py`), started when the
//! first step of that environment runs, shared by every run of this kfbox process, started
//! again when it died. Each attempt is a fresh child of it: forked from the same state, given
//! the step's environment variables, working directory, standard streams and a process group
//! of its own, so cancel, limits and recovery treat it as they treat a step kfbox started.
//!
//! Why this is safe: the worker runs nothing of the user's, so every child starts from the
//! state a fresh interpreter has after importing the SDK, and what a component changes
//! (globals, `sys.modules`, `os.environ`, files, threads) dies with its process. Where it is not
//! the same as a fresh interpreter, the step starts cold: a command the SDK did not write in
//! its one form, volumes (the step runs inside bubblewrap), variables read only when Python
//! starts (`PYTHON*`, locale) set by the step, environment values that are not UTF-8. What
//! stays shared: the hash seed of `str` (set orders repeat between attempts, as with a fixed
//! `PYTHONHASHSEED`) and the modules the worker imported (the SDK and the standard library).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use kfbox_python::Env;
use kfbox_step::StepExit;
use nix::fcntl::OFlag;
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

const WORKER_SCRIPT: &str = include_str!("../../../embedded/python/warm_worker.py");

/// The script the SDK runs a lightweight component with (after its pip prelude), with its
/// whitespace collapsed: the only form a warm worker stands in for.
const SDK_SCRIPT: &str = "program_path=$(mktemp -d) printf \"%s\" \"$0\" > \"$program_path/ephemeral_component.py\" _KFP_RUNTIME=true python3 -m kfp.dsl.executor_main --component_module_path \"$program_path/ephemeral_component.py\" \"$@\"";

/// How long a worker may take to import the SDK before steps start cold instead.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a warm attempt runs: the component's source and the executor's arguments, as the
/// SDK's script passes them (`$0` and `"$@"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SdkCall {
    pub source: String,
    pub args: Vec<String>,
}

impl SdkCall {
    /// The call in a lightweight command without its prelude (`sh -ec SCRIPT SOURCE ARGS...`);
    /// `None` where the SDK's script is not the one kfbox knows.
    pub fn of(argv: &[String]) -> Option<Self> {
        let [shell, flag, script, source, args @ ..] = argv else {
            return None;
        };
        let collapsed = script.split_whitespace().collect::<Vec<_>>().join(" ");
        (matches!(shell.as_str(), "sh" | "bash" | "/bin/sh" | "/bin/bash")
            && flag == "-ec"
            && collapsed == SDK_SCRIPT)
            .then(|| Self {
                source: source.clone(),
                args: args.to_vec(),
            })
    }
}

/// Whether a step's own variables let it run warm: those Python reads only when it starts
/// would not reach a forked child.
pub(crate) fn env_allows_warm(env: &[(String, String)]) -> bool {
    env.iter()
        .all(|(name, _)| !(name.starts_with("PYTHON") || name.starts_with("LC_") || name == "LANG"))
}

/// The warm workers of this kfbox process, one per managed environment; cloning shares them.
/// `off()` makes every step start cold (`KFBOX_WARM=off`).
#[derive(Clone)]
pub struct WarmWorkers {
    /// The map is locked only to find an environment's slot: a worker that takes seconds to
    /// import the SDK holds up the steps of its own environment, never those of another.
    workers: Option<Arc<std::sync::Mutex<Slots>>>,
}

type Slots = HashMap<PathBuf, Arc<tokio::sync::Mutex<Slot>>>;

#[derive(Default)]
enum Slot {
    /// None started yet, or the last one died: the next step starts one.
    #[default]
    Empty,
    Running(Arc<Worker>),
    /// It could not start here: this environment's steps start cold from now on.
    Unusable,
}

impl WarmWorkers {
    pub fn on() -> Self {
        Self {
            workers: Some(Arc::default()),
        }
    }

    pub fn off() -> Self {
        Self { workers: None }
    }

    /// Fork an attempt from `env`'s worker (started first when there is none or it died);
    /// `Err` says why the step must start cold.
    pub(crate) async fn fork(
        &self,
        env: &Env,
        script_dir: &Path,
        request: &Request<'_>,
    ) -> Result<WarmChild, String> {
        let Some(workers) = &self.workers else {
            return Err("warm workers are off (KFBOX_WARM)".to_owned());
        };
        let slot = workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(env.dir.clone())
            .or_default()
            .clone();
        for _ in 0..2 {
            let worker = {
                let mut slot = slot.lock().await;
                match &*slot {
                    Slot::Running(worker) if worker.alive() => worker.clone(),
                    Slot::Unusable => {
                        return Err("this environment's worker could not start".to_owned())
                    }
                    Slot::Empty | Slot::Running(_) => match Worker::start(env, script_dir).await {
                        Ok(worker) => {
                            let worker = Arc::new(worker);
                            *slot = Slot::Running(worker.clone());
                            worker
                        }
                        Err(why) => {
                            tracing::debug!(
                                "no warm Python worker for {}: {why}",
                                env.dir.display()
                            );
                            *slot = Slot::Unusable;
                            return Err(why);
                        }
                    },
                }
            };
            match worker.fork(request).await {
                Ok(child) => return Ok(child),
                // It died since it was checked: once more with a new one.
                Err(Fork::WorkerGone) => {
                    worker.stop();
                    let mut slot = slot.lock().await;
                    if matches!(&*slot, Slot::Running(current) if Arc::ptr_eq(current, &worker)) {
                        *slot = Slot::Empty;
                    }
                }
                Err(Fork::Refused(why)) => return Err(why),
            }
        }
        Err("the worker stopped twice in a row".to_owned())
    }
}

/// What the worker needs to fork one attempt.
#[derive(serde::Serialize)]
pub(crate) struct Request<'a> {
    pub source: &'a str,
    pub args: &'a [String],
    /// The child's whole environment.
    pub env: HashMap<String, String>,
    pub cwd: &'a Path,
    /// kfbox's component runner, run as `__main__` in place of the SDK's executor module.
    pub runner: &'a Path,
}

impl Request<'_> {
    /// The child's environment: kfbox's own with `set` applied, as a spawned command's is,
    /// and what the SDK's script and `sh` would add. `None` when a value is not UTF-8.
    pub fn environment(
        set: &[(OsString, OsString)],
        cwd: &Path,
    ) -> Option<HashMap<String, String>> {
        let mut env: HashMap<OsString, OsString> = std::env::vars_os().collect();
        env.extend(set.iter().cloned());
        env.insert("_KFP_RUNTIME".into(), "true".into());
        env.insert("PWD".into(), cwd.as_os_str().to_owned());
        env.into_iter()
            .map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect()
    }
}

enum Fork {
    WorkerGone,
    Refused(String),
}

struct Worker {
    /// Our end of the control socket (the worker's standard input).
    control: OwnedFd,
    process: std::sync::Mutex<Child>,
}

impl Worker {
    async fn start(env: &Env, script_dir: &Path) -> Result<Self, String> {
        let script =
            crate::host_python::install_script(script_dir, "kfbox-warm-worker.py", WORKER_SCRIPT)
                .map_err(|e| format!("cannot write its script: {e}"))?;
        let (control, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| format!("no socket for it: {e}"))?;
        let python = env.bin_dir.join("python3");
        let mut process = Command::new(&python)
            .arg(&script)
            .env("PATH", crate::host_python::path_with(&env.bin_dir))
            .env("VIRTUAL_ENV", &env.dir)
            .env("_KFP_RUNTIME", "true")
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Ctrl-C in kfbox's terminal is for kfbox, which cancels its steps itself.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let mut said = BufReader::new(process.stdout.take().expect("piped")).lines();
        let mut complaints = BufReader::new(process.stderr.take().expect("piped")).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, said.next_line()).await;
        if !matches!(&ready, Ok(Ok(Some(line))) if line == "ready") {
            let _ = process.start_kill();
            let mut why = Vec::new();
            while let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_secs(1), complaints.next_line()).await
            {
                why.push(line);
            }
            return Err(match ready {
                Err(_) => format!("it did not start in {} s", READY_TIMEOUT.as_secs()),
                _ => format!("it stopped: {}", why.join("\n")),
            });
        }
        // Anything it says later is about itself, not a step: kfbox's diagnostics.
        tokio::spawn(async move {
            while let Ok(Some(line)) = complaints.next_line().await {
                tracing::debug!("warm Python worker: {line}");
            }
        });
        Ok(Self {
            control,
            process: std::sync::Mutex::new(process),
        })
    }

    fn alive(&self) -> bool {
        matches!(
            self.process.lock().expect("worker lock").try_wait(),
            Ok(None)
        )
    }

    fn stop(&self) {
        let _ = self.process.lock().expect("worker lock").start_kill();
    }

    async fn fork(&self, request: &Request<'_>) -> Result<WarmChild, Fork> {
        let refused = |what: &str, e: &dyn std::fmt::Display| Fork::Refused(format!("{what}: {e}"));
        let (ours, theirs) = UnixStream::pair().map_err(|e| refused("no reply socket", &e))?;
        let (stdout, stdout_w) = pipe2().map_err(|e| refused("no pipe", &e))?;
        let (stderr, stderr_w) = pipe2().map_err(|e| refused("no pipe", &e))?;
        let fds = [
            theirs.as_raw_fd(),
            stdout_w.as_raw_fd(),
            stderr_w.as_raw_fd(),
        ];
        // A full queue means a worker that stopped reading: cold is better than waiting.
        match sendmsg::<UnixAddr>(
            self.control.as_raw_fd(),
            &[IoSlice::new(b"f")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(_) => {}
            Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => {
                return Err(Fork::WorkerGone)
            }
            Err(e) => return Err(refused("the worker is not taking requests", &e)),
        }
        drop((theirs, stdout_w, stderr_w));
        ours.set_nonblocking(true)
            .map_err(|e| refused("reply socket", &e))?;
        let mut reply =
            tokio::net::UnixStream::from_std(ours).map_err(|e| refused("reply socket", &e))?;
        let body = serde_json::to_vec(request).map_err(|e| refused("request", &e))?;
        reply.write_all(&body).await.map_err(|_| Fork::WorkerGone)?;
        reply.shutdown().await.map_err(|_| Fork::WorkerGone)?;
        let mut child = WarmChild {
            pid: None,
            reply: BufReader::new(reply),
            pending: String::new(),
            stdout: Some(
                pipe::Receiver::from_owned_fd(stdout).map_err(|e| refused("stdout pipe", &e))?,
            ),
            stderr: Some(
                pipe::Receiver::from_owned_fd(stderr).map_err(|e| refused("stderr pipe", &e))?,
            ),
        };
        match child.next_answer().await {
            Some(Answer::Pid(pid)) => {
                child.pid = Some(Pid::from_raw(pid));
                Ok(child)
            }
            Some(Answer::Error(why)) => Err(Fork::Refused(why)),
            Some(other) => Err(Fork::Refused(format!("unexpected answer {other:?}"))),
            None => Err(Fork::WorkerGone),
        }
    }
}

fn pipe2() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum Answer {
    Pid(i32),
    Exit(i32),
    Signal(i32),
    Error(String),
}

/// An attempt forked by a worker: its process group, its output, and its end as the worker
/// saw it. Killed (its group) when dropped before it ended, as a spawned child is.
pub(crate) struct WarmChild {
    pid: Option<Pid>,
    reply: BufReader<tokio::net::UnixStream>,
    /// What was read of an answer so far: kept across a cancelled wait.
    pending: String,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
}

impl WarmChild {
    pub fn pid(&self) -> Pid {
        self.pid.expect("a forked child has a pid")
    }

    /// How it ended; `Err` when the worker stopped before it could say (the group is killed).
    pub async fn wait(&mut self) -> Result<StepExit, String> {
        let exit = match self.next_answer().await {
            Some(Answer::Exit(code)) => Ok(StepExit::Exited(code)),
            Some(Answer::Signal(signal)) => Ok(StepExit::Signaled(signal)),
            _ => {
                let _ = killpg(self.pid(), Signal::SIGKILL);
                Err("kfbox's warm Python worker stopped while the step ran, so the step was stopped too".to_owned())
            }
        };
        self.pid = None;
        exit
    }

    /// The next line the worker wrote, parsed; `None` at its end or on nonsense.
    async fn next_answer(&mut self) -> Option<Answer> {
        loop {
            if let Some(end) = self.pending.find('\n') {
                let line: String = self.pending.drain(..=end).collect();
                return serde_json::from_str(line.trim()).ok();
            }
            match self.reply.read_line(&mut self.pending).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

impl Drop for WarmChild {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_script_is_recognised_in_the_form_the_compiler_writes() {
        let script = "program_path=$(mktemp -d)\n\nprintf \"%s\" \"$0\" > \"$program_path/ephemeral_component.py\"\n_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main                         --component_module_path                         \"$program_path/ephemeral_component.py\"                         \"$@\"\n";
        let argv: Vec<String> = [
            "sh",
            "-ec",
            script,
            "def f(): pass",
            "--executor_input",
            "{}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let call = SdkCall::of(&argv).unwrap();
        assert_eq!(call.source, "def f(): pass");
        assert_eq!(call.args, ["--executor_input", "{}"]);
        let mut changed = argv.clone();
        changed[2] = script.replace("mktemp -d", "mktemp -d; rm -rf ~");
        assert_eq!(SdkCall::of(&changed), None);
        assert_eq!(SdkCall::of(&argv[..3]), None);
    }

    /// An environment whose `python3` is `script`.
    fn fake_env(root: &Path, name: &str, script: &str) -> Env {
        use std::os::unix::fs::PermissionsExt;
        let dir = root.join(name);
        let bin_dir = dir.join("bin");
        fs_err::create_dir_all(&bin_dir).unwrap();
        let python = bin_dir.join("python3");
        fs_err::write(&python, script).unwrap();
        fs_err::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        Env {
            dir,
            bin_dir,
            python,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_slow_to_start_holds_up_only_its_own_environment() {
        let root = tempfile::tempdir().unwrap();
        // Neither says `ready`: one takes three seconds to stop, the other stops at once.
        let slow = fake_env(root.path(), "slow", "#!/bin/sh\nsleep 3\n");
        let broken = fake_env(root.path(), "broken", "#!/bin/sh\nexit 3\n");
        let request = Request {
            source: "",
            args: &[],
            env: HashMap::new(),
            cwd: root.path(),
            runner: root.path(),
        };
        let workers = WarmWorkers::on();
        let begun = std::time::Instant::now();
        let (slow_fork, (broken_fork, broken_after)) =
            tokio::join!(workers.fork(&slow, root.path(), &request), async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let fork = workers.fork(&broken, root.path(), &request).await;
                (fork, begun.elapsed())
            });
        assert!(slow_fork.is_err() && broken_fork.is_err());
        assert!(
            broken_after < Duration::from_secs(2),
            "the broken environment waited {broken_after:?} for the slow one's worker"
        );
        // Both are remembered as unusable: their steps start cold without trying again.
        let again = workers.fork(&slow, root.path(), &request).await;
        assert_eq!(
            again.err().as_deref(),
            Some("this environment's worker could not start")
        );
    }

    #[test]
    fn variables_python_reads_at_start_keep_a_step_cold() {
        let env = |name: &str| vec![(name.to_owned(), "x".to_owned())];
        assert!(env_allows_warm(&env("LR")));
        assert!(!env_allows_warm(&env("PYTHONPATH")));
        assert!(!env_allows_warm(&env("LC_ALL")));
        assert!(!env_allows_warm(&env("LANG")));
    }
}
