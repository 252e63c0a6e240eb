use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use kfbox_step::events::{EventSink, RunEvent};
use kfbox_step::failure::{Failure, StderrTail};
use kfbox_step::mask::mask_line;
use kfbox_step::process::ProcessIdentity;
use kfbox_step::{Executor, ExecutorError, OncePerKey, PullPolicy, Step, StepExit, VolumeSource};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::daemon::DockerError;
use crate::labels;
use crate::user::{open_mounts, reachable_by_strangers, ContainerUser};

/// Seconds a cancelled container gets between SIGTERM and SIGKILL (as the process executor).
const GRACE_SECONDS: i32 = 5;

pub struct DockerExecutor {
    docker: Docker,
    who: Who,
    images: OncePerKey<String, Result<(), String>>,
}

/// Whose containers these are.
struct Who {
    home: String,
    /// [`ProcessIdentity`] of this kfbox.
    owner: String,
    /// The invoking user's uid and gid.
    uid: u32,
    gid: u32,
}

impl DockerExecutor {
    /// An executor for runs of `home`, after removing containers that earlier kfbox processes
    /// of this home left behind when they died.
    pub async fn new(docker: Docker, home: &Path) -> Result<(Self, usize), DockerError> {
        let executor = Self {
            docker,
            who: Who {
                home: home.display().to_string(),
                owner: ProcessIdentity::current().to_string(),
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
            },
            images: OncePerKey::default(),
        };
        let reaped = executor.reap().await?;
        Ok((executor, reaped))
    }

    /// Remove this home's containers whose kfbox process is gone; returns how many.
    async fn reap(&self) -> Result<usize, DockerError> {
        let filters =
            HashMap::from([("label", vec![format!("{}={}", labels::HOME, self.who.home)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let mut reaped = 0;
        for container in self.docker.list_containers(Some(options)).await? {
            let owner = container
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::OWNER))
                .cloned()
                .unwrap_or_default();
            if ProcessIdentity::parse(&owner).is_some_and(|o| o.is_alive()) {
                continue;
            }
            if let Some(id) = &container.id {
                remove(&self.docker, id).await;
                reaped += 1;
            }
        }
        Ok(reaped)
    }

    /// Make sure the step's image is here as its pull policy says: `Never` uses only what is
    /// here, `Always` pulls for every start, otherwise it is pulled once per process when
    /// missing. Progress goes to the run's events.
    async fn ensure_image(&self, step: &Step, events: &EventSink) -> Result<(), ExecutorError> {
        let image = step.image.as_str();
        match step.pod.pull_policy {
            Some(PullPolicy::Never) => {
                return match self.docker.inspect_image(image).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(ExecutorError::Unrunnable(format!(
                        "image `{image}` is not on this machine and the task's pull policy is Never (set_image_pull_policy): load it (`kfbox images load`, `docker load`) or change the policy"
                    ))),
                };
            }
            Some(PullPolicy::Always) => {
                return pull(&self.docker, image, events)
                    .await
                    .map_err(ExecutorError::Unrunnable);
            }
            Some(PullPolicy::IfNotPresent) | None => {}
        }
        let result = self
            .images
            .get_or_init(&image.to_owned(), || async {
                if self.docker.inspect_image(image).await.is_ok() {
                    return Ok(());
                }
                pull(&self.docker, image, events).await
            })
            .await;
        result.map_err(ExecutorError::Unrunnable)
    }
}

#[async_trait]
impl Executor for DockerExecutor {
    fn shares_host_files(&self, _step: &Step) -> bool {
        false
    }

    async fn run(
        &self,
        step: &Step,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        // A pull can take minutes: cancelling the run must not wait for it.
        tokio::select! {
            ready = self.ensure_image(step, events) => ready?,
            _ = cancel.cancelled() => return Ok(StepExit::Canceled),
        }
        let user = ContainerUser::resolve(self.who.uid, self.who.gid, step.pod.security)?;
        if user.is_stranger_to(self.who.uid) {
            reachable_by_strangers(step)?;
            open_mounts(step).map_err(|e| {
                ExecutorError::Environment(format!(
                    "cannot open the step's files to the container's user {}: {e}",
                    user.spec
                ))
            })?;
        }
        let api = |e: bollard::errors::Error| ExecutorError::Environment(format!("Docker: {e}"));
        let created = self
            .docker
            .create_container(None, container_body(&self.who, &user, step))
            .await
            .map_err(api)?;
        let id = created.id;
        let result = self
            .run_container(&id, step, events, cancel)
            .await
            .map_err(|e| match e {
                ExecutorError::Environment(text) if text.contains("could not select device driver") => {
                    ExecutorError::Unrunnable(format!(
                        "{text}\nhint: Docker needs the NVIDIA Container Toolkit to give GPUs to containers (`kfbox doctor` shows whether it is set up); `--executor process` runs the step on the host with CUDA_VISIBLE_DEVICES"
                    ))
                }
                other => other,
            });
        remove(&self.docker, &id).await;
        result
    }
}

impl DockerExecutor {
    async fn run_container(
        &self,
        id: &str,
        step: &Step,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        let api = |e: bollard::errors::Error| ExecutorError::Environment(format!("Docker: {e}"));
        self.docker.start_container(id, None).await.map_err(api)?;
        let logs = tokio::spawn(stream_logs(
            self.docker.clone(),
            id.to_owned(),
            step.log_path.clone(),
            step.task_path.clone(),
            step.masked.clone(),
            events.clone(),
        ));
        let mut wait = self.docker.wait_container(id, None);
        let exit = tokio::select! {
            waited = wait.next() => match waited {
                Some(Ok(response)) => StepExit::Exited(response.status_code as i32),
                // bollard reports a non-zero exit as an error that carries the code.
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    StepExit::Exited(code as i32)
                }
                Some(Err(e)) => return Err(api(e)),
                None => StepExit::Exited(-1),
            },
            _ = cancel.cancelled() => {
                let stop = StopContainerOptionsBuilder::new().t(GRACE_SECONDS).build();
                let _ = self.docker.stop_container(id, Some(stop)).await;
                StepExit::Canceled
            }
        };
        // The log stream ends with the container.
        let tail = tokio::time::timeout(Duration::from_secs(5), logs).await;
        if let (StepExit::Exited(code), Ok(Ok(tail))) = (exit, tail) {
            if code != 0 {
                if let Err(e) = Failure::write_tail_unless_described(&step.failure_file(), &tail) {
                    tracing::warn!("cannot note the step's last stderr lines: {e}");
                }
            }
        }
        let oom_killed = self.oom_killed(id, step, exit).await;
        if let (true, Some(limit), StepExit::Exited(code)) =
            (oom_killed, step.resources.memory_limit, exit)
        {
            if code != 0 {
                append_log(&step.log_path, &kfbox_step::out_of_memory_note(limit)).await;
                return Ok(StepExit::OutOfMemory(limit));
            }
        }
        Ok(exit)
    }

    /// Whether the container's memory limit killed it. Docker learns of an OOM kill from an
    /// event of its own, which can come after the container's exit: a step that was SIGKILLed
    /// (137) under a memory limit is asked about again for a moment before it counts as not.
    async fn oom_killed(&self, id: &str, step: &Step, exit: StepExit) -> bool {
        let maybe = step.resources.memory_limit.is_some() && exit == StepExit::Exited(137);
        for _ in 0..if maybe { 10 } else { 1 } {
            let Ok(inspected) = self.docker.inspect_container(id, None).await else {
                return false;
            };
            if inspected.state.and_then(|s| s.oom_killed) == Some(true) {
                return true;
            }
            if maybe {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        false
    }
}

fn container_body(who: &Who, user: &ContainerUser, step: &Step) -> ContainerCreateBody {
    let mut env: Vec<String> = step.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let sets = |name: &str| step.env.iter().any(|(k, _)| k == name);
    if user.uid != 0 && !sets("HOME") {
        // A uid with no entry in the image's /etc/passwd gets HOME=/, which it cannot write.
        env.push(format!("HOME={}", step.work_dir.display()));
    }
    if !sets("PYTHONUNBUFFERED") {
        env.push("PYTHONUNBUFFERED=1".into());
    }
    let access = |writable: bool| if writable { "rw" } else { "ro" };
    let mut binds: Vec<String> = step
        .mounts
        .iter()
        .map(|m| {
            let path = m.path.display();
            format!("{path}:{path}:{}", access(m.writable))
        })
        .collect();
    // The pod's volumes: host directories bound at their mount paths, memory-backed scratch
    // space as a tmpfs of its size limit (open to any user, as an emptyDir is).
    let mut tmpfs = HashMap::new();
    for volume in &step.volumes {
        let target = volume.target.display().to_string();
        match &volume.source {
            VolumeSource::Memory { size_limit, .. } => {
                let size = size_limit.map_or_else(String::new, |bytes| format!(",size={bytes}"));
                tmpfs.insert(target, format!("mode=1777{size}"));
            }
            VolumeSource::Dir(dir) => binds.push(format!(
                "{}:{target}:{}",
                dir.display(),
                access(!volume.read_only)
            )),
        }
    }
    let device_requests = match &step.gpus {
        Some(gpus) if !gpus.is_empty() => Some(vec![DeviceRequest {
            driver: Some("nvidia".into()),
            device_ids: Some(gpus.iter().map(u32::to_string).collect()),
            capabilities: Some(vec![vec!["gpu".into()]]),
            ..DeviceRequest::default()
        }]),
        _ => None,
    };
    // The pod's labels and annotations as the container's; kfbox's own come last, so that a
    // pipeline cannot pose as another home's or run's container.
    let mut labels: HashMap<String, String> = step
        .pod
        .annotations
        .iter()
        .chain(&step.pod.labels)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend([
        (labels::HOME.to_owned(), who.home.clone()),
        (labels::OWNER.to_owned(), who.owner.clone()),
        (labels::RUN.to_owned(), step.run_id.clone()),
        (labels::TASK.to_owned(), step.task_path.clone()),
    ]);
    ContainerCreateBody {
        image: Some(step.image.clone()),
        // Kubernetes semantics: `command` replaces the image's entrypoint, `args` its CMD;
        // with a command and no args the image's CMD is dropped too.
        entrypoint: (!step.command.is_empty()).then(|| step.command.clone()),
        cmd: (!step.command.is_empty() || !step.args.is_empty()).then(|| step.args.clone()),
        env: Some(env),
        working_dir: Some(step.work_dir.display().to_string()),
        user: Some(user.spec.clone()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            binds: Some(binds),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            nano_cpus: step.resources.cpu_limit.map(|c| (c * 1e9) as i64),
            memory: step.resources.memory_limit.map(|m| m as i64),
            device_requests,
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

/// Copy the container's output to the step's log and to live events, line by line; returns
/// the last lines it wrote to stderr.
async fn stream_logs(
    docker: Docker,
    id: String,
    log_path: PathBuf,
    task_path: String,
    masked: Vec<String>,
    events: EventSink,
) -> StderrTail {
    let mut tail = StderrTail::default();
    let Ok(mut log) = fs_err::tokio::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .await
    else {
        return tail;
    };
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(&id, Some(options));
    // Unfinished lines, one per stream: frames of stdout and stderr interleave.
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut flush_line = |line: &[u8], log: &mut Vec<u8>, stderr: bool| {
        let text = String::from_utf8_lossy(line);
        let text = mask_line(text.trim_end_matches('\r'), &masked).into_owned();
        if stderr {
            tail.push(&text);
        }
        log.extend_from_slice(text.as_bytes());
        log.push(b'\n');
        events.send(RunEvent::Log {
            path: task_path.clone(),
            line: text,
        });
    };
    while let Some(Ok(chunk)) = stream.next().await {
        let stderr = matches!(chunk, LogOutput::StdErr { .. });
        let buffer = &mut pending[usize::from(stderr)];
        buffer.extend_from_slice(&chunk.into_bytes());
        let mut out = Vec::new();
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            flush_line(&line[..line.len() - 1], &mut out, stderr);
        }
        let _ = log.write_all(&out).await;
    }
    for (index, rest) in pending.iter().enumerate() {
        if !rest.is_empty() {
            let mut out = Vec::new();
            flush_line(rest, &mut out, index == 1);
            let _ = log.write_all(&out).await;
        }
    }
    let _ = log.flush().await;
    tail
}

async fn append_log(path: &Path, line: &str) {
    if let Ok(mut log) = fs_err::tokio::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
    {
        let _ = log.write_all(format!("{line}\n").as_bytes()).await;
    }
}

async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::new().force(true).build();
    if let Err(e) = docker.remove_container(id, Some(options)).await {
        tracing::warn!("cannot remove container {id}: {e}");
    }
}

/// `name[:tag]` split for the pull API, which pulls every tag when given none.
fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => (
            &image[..last_slash + colon],
            &image[last_slash + colon + 1..],
        ),
        None => (image, "latest"),
    }
}

async fn pull(docker: &Docker, image: &str, events: &EventSink) -> Result<(), String> {
    let (name, tag) = split_reference(image);
    let mut options = CreateImageOptionsBuilder::new().from_image(name);
    if !tag.is_empty() {
        options = options.tag(tag);
    }
    let mut stream = docker.create_image(Some(options.build()), None, None);
    // Bytes per layer: the pull reports each layer's progress separately.
    let mut layers: HashMap<String, (i64, i64)> = HashMap::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(error) = info.error_detail.and_then(|e| e.message) {
                    return Err(unavailable(image, &error));
                }
                if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
                    if let (Some(current), Some(total)) = (detail.current, detail.total) {
                        layers.insert(id, (current, total));
                    }
                }
                let (done, total) = layers
                    .values()
                    .fold((0, 0), |(d, t), (c, n)| (d + c, t + n));
                let fraction = (total > 0).then(|| done as f64 / total as f64);
                let message = if total > 0 {
                    format!(
                        "pulling image {image}: {:.1} of {:.1} MB",
                        done as f64 / 1e6,
                        total as f64 / 1e6
                    )
                } else {
                    format!("pulling image {image}: {}", info.status.unwrap_or_default())
                };
                events.send(RunEvent::Preparing { message, fraction });
            }
            Err(e) => return Err(unavailable(image, &e.to_string())),
        }
    }
    events.send(RunEvent::Prepared {
        message: format!("image {image} ready"),
    });
    Ok(())
}

fn unavailable(image: &str, reason: &str) -> String {
    format!(
        "image `{image}` is not on this machine and cannot be pulled: {reason}\n\
         hint: on a machine that has it, `kfbox images save images.tar {image}`; copy the file here and \
         `kfbox images load images.tar`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfbox_resources::Resources;
    use kfbox_step::{Mount, PodSettings, VolumeMount};

    fn step(command: &[&str], args: &[&str], gpus: Option<Vec<u32>>) -> Step {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
        Step {
            task_path: "loop/iteration-0/train".into(),
            run_id: "run-1".into(),
            image: "trainer:1".into(),
            command: words(command),
            args: words(args),
            env: vec![("MODE".into(), "fast".into())],
            work_dir: PathBuf::from("/home/u/kfbox/runs/run-1/tasks/train/attempt-1"),
            log_path: PathBuf::from("/home/u/kfbox/runs/run-1/logs/train.log"),
            process_file: PathBuf::from("/home/u/kfbox/runs/run-1/tasks/train/process"),
            mounts: vec![
                Mount {
                    path: PathBuf::from("/home/u/kfbox/runs/run-1/artifacts/prep/data"),
                    writable: false,
                },
                Mount {
                    path: PathBuf::from("/home/u/kfbox/runs/run-1/tasks/train"),
                    writable: true,
                },
            ],
            resources: Resources {
                cpu_limit: Some(1.5),
                memory_limit: Some(512 * 1024 * 1024),
                accelerator: None,
            },
            gpus,
            pod: PodSettings {
                pull_policy: None,
                labels: [("team", "vision"), (labels::RUN, "forged")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                annotations: [("note", "hello")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
                security: None,
            },
            volumes: vec![
                VolumeMount {
                    target: PathBuf::from("/data"),
                    source: VolumeSource::Dir(PathBuf::from("/home/u/kfbox/volumes/p/data")),
                    read_only: false,
                },
                VolumeMount {
                    target: PathBuf::from("/mnt/secret"),
                    source: VolumeSource::Dir(PathBuf::from(
                        "/home/u/kfbox/runs/run-1/tasks/train/pod-volumes/object-0",
                    )),
                    read_only: true,
                },
                VolumeMount {
                    target: PathBuf::from("/scratch"),
                    source: VolumeSource::Memory {
                        dir: PathBuf::from("/unused"),
                        size_limit: Some(1 << 20),
                    },
                    read_only: false,
                },
            ],
            masked: Vec::new(),
        }
    }

    fn who(uid: u32) -> Who {
        Who {
            home: "/home/u/kfbox".into(),
            owner: "123 456".into(),
            uid,
            gid: uid,
        }
    }

    /// The body for a step started by `uid`, with no security context.
    fn body_for(uid: u32, step: &Step) -> ContainerCreateBody {
        let user = ContainerUser::resolve(uid, uid, None).unwrap();
        container_body(&who(uid), &user, step)
    }

    #[test]
    fn containers_get_the_step_as_kubernetes_would_run_it() {
        let body = body_for(
            1000,
            &step(
                &["python", "-m", "train"],
                &["--lr", "0.1"],
                Some(vec![1, 3]),
            ),
        );
        assert_eq!(
            body.entrypoint,
            Some(vec!["python".into(), "-m".into(), "train".into()])
        );
        assert_eq!(body.cmd, Some(vec!["--lr".into(), "0.1".into()]));
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        let env = body.env.unwrap();
        assert!(env.contains(&"MODE=fast".to_owned()));
        assert!(env.contains(&"HOME=/home/u/kfbox/runs/run-1/tasks/train/attempt-1".to_owned()));
        let host = body.host_config.unwrap();
        assert_eq!(
            host.binds.unwrap(),
            vec![
                "/home/u/kfbox/runs/run-1/artifacts/prep/data:/home/u/kfbox/runs/run-1/artifacts/prep/data:ro",
                "/home/u/kfbox/runs/run-1/tasks/train:/home/u/kfbox/runs/run-1/tasks/train:rw",
                "/home/u/kfbox/volumes/p/data:/data:rw",
                "/home/u/kfbox/runs/run-1/tasks/train/pod-volumes/object-0:/mnt/secret:ro",
            ]
        );
        assert_eq!(
            host.tmpfs.unwrap(),
            HashMap::from([("/scratch".to_owned(), "mode=1777,size=1048576".to_owned())])
        );
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.memory, Some(512 * 1024 * 1024));
        let gpus = &host.device_requests.unwrap()[0];
        assert_eq!(gpus.driver.as_deref(), Some("nvidia"));
        assert_eq!(gpus.device_ids, Some(vec!["1".into(), "3".into()]));
        let labels = body.labels.unwrap();
        assert_eq!(labels[labels::OWNER], "123 456");
        // The pod's labels and annotations ride along, never over kfbox's own.
        assert_eq!(labels["team"], "vision");
        assert_eq!(labels["note"], "hello");
        assert_eq!(labels[labels::RUN], "run-1");
        assert_eq!(labels[labels::TASK], "loop/iteration-0/train");
    }

    #[test]
    fn args_alone_keep_the_entrypoint_and_root_keeps_its_home() {
        let body = body_for(0, &step(&[], &["serve"], Some(Vec::new())));
        assert_eq!(body.entrypoint, None);
        assert_eq!(body.cmd, Some(vec!["serve".into()]));
        assert!(!body.env.unwrap().iter().any(|e| e.starts_with("HOME=")));
        // No GPUs asked for: no device request, so the container sees none.
        assert!(body.host_config.unwrap().device_requests.is_none());
        let neither = body_for(0, &step(&[], &[], None));
        assert_eq!((neither.entrypoint, neither.cmd), (None, None));
    }

    #[test]
    fn references_split_into_name_and_tag() {
        assert_eq!(split_reference("python:3.11"), ("python", "3.11"));
        assert_eq!(split_reference("alpine"), ("alpine", "latest"));
        assert_eq!(
            split_reference("localhost:5000/team/img"),
            ("localhost:5000/team/img", "latest")
        );
        assert_eq!(
            split_reference("localhost:5000/team/img:v2"),
            ("localhost:5000/team/img", "v2")
        );
        assert_eq!(split_reference("img@sha256:abc"), ("img@sha256:abc", ""));
    }
}
