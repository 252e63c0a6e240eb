//! `kfbox run --target URL`: the same pipeline file, run by another Kubeflow Pipelines
//! endpoint through its v2beta1 API, followed in the same table and `--json` contract.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use kfbox_engine::model::{RunState, RunSummary, TaskKind, TaskOutputs, TaskRecord, TaskState};
use kfbox_kfp_install::NAMESPACE;
use kfbox_remote::{
    Client, ClientTls, NewRun, RemoteRun, RemoteTask, RuntimeConfig, RuntimeState, Target,
};
use kfbox_spec::ir::PipelineSpec;
use kfbox_spec::LoadedPipeline;
use kfbox_step::events::{EventSink, RunEvent};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::cluster::checked_name;
use crate::exit::UsageError;
use crate::printer::Printer;
use crate::reporter::Reporter;
use crate::settings::GlobalSettings;

/// How often the run is read back; KFP's own UI polls about as often.
const POLL: Duration = Duration::from_secs(1);
/// How long a terminated run may take to reach a final state before kfbox stops waiting.
const TERMINATE_GRACE: Duration = Duration::from_secs(60);

pub(crate) struct RemoteRunRequest<'a> {
    pub target: &'a str,
    pub token: Option<String>,
    pub pipeline: LoadedPipeline,
    pub parameters: Map<String, Value>,
    pub display_name: Option<String>,
    pub reuse_cache: bool,
}

/// `cluster` (or `cluster:NAME`) is the cluster `kfbox cluster up` made: its KFP API through
/// the Kubernetes API server, with the kubeconfig's certificates. Anything else is an address.
fn resolve_target(
    settings: &GlobalSettings,
    given: &str,
    token: Option<String>,
) -> anyhow::Result<Target> {
    let name = match given.split_once(':') {
        None if given == "cluster" => "kfbox",
        Some(("cluster", name)) => checked_name(name)
            .map_err(|e| UsageError::all([anyhow::anyhow!("--target {given}: {e}")]))?,
        _ => return Ok(Target::parse(given, token)?),
    };
    if token.is_some() {
        return Err(UsageError::all([anyhow::anyhow!(
            "--target-token does not apply to --target {given}: kfbox authenticates to its cluster with the cluster's kubeconfig"
        )])
        .into());
    }
    let name_flag = if name == "kfbox" {
        String::new()
    } else {
        format!(" --name {name}")
    };
    let path = settings.home.cluster_kubeconfig(name);
    let text = fs_err::read_to_string(&path).map_err(|_| {
        anyhow::anyhow!(
            "no kfbox cluster `{name}` here ({} is missing)\nhint: `kfbox cluster up{name_flag}` starts it",
            path.display()
        )
    })?;
    let access = kfbox_cluster::kubeconfig::credentials(&text)
        .with_context(|| format!("cannot use {}", path.display()))?;
    let mut identity_pem = access.client_certificate_pem;
    identity_pem.push(b'\n');
    identity_pem.extend(access.client_key_pem);
    Ok(Target::kubernetes_service(
        &access.server,
        NAMESPACE,
        "ml-pipeline:8888",
        ClientTls {
            ca_pem: access.ca_pem,
            identity_pem,
        },
        format!("cluster `{name}`"),
        format!(
            "is the cluster up and Kubeflow Pipelines ready? (`kfbox cluster status{name_flag}`)"
        ),
    )?)
}

/// Sends the run, follows it until it ends and returns its summary.
pub(crate) async fn run_on_target(
    settings: &GlobalSettings,
    printer: &Printer,
    request: RemoteRunRequest<'_>,
    cancel: CancellationToken,
) -> anyhow::Result<RunSummary> {
    let client = Client::new(resolve_target(settings, request.target, request.token)?)?;
    client.check().await?;
    let spec = &request.pipeline.spec;
    let pipeline_name = spec.pipeline_info.name.clone();
    let mut pipeline_spec = request.pipeline.source.clone();
    if !request.reuse_cache {
        disable_caching(&mut pipeline_spec);
    }
    let created = client
        .create_run(&NewRun {
            display_name: request
                .display_name
                .unwrap_or_else(|| pipeline_name.clone()),
            pipeline_spec,
            runtime_config: RuntimeConfig {
                parameters: request.parameters,
            },
            experiment_id: None,
        })
        .await?;
    let page = client.target().run_page(&created.run_id);
    printer.note(&format!(
        "Run {} sent to {}: {}",
        created.run_id,
        client.target().address(),
        page.clone().unwrap_or_else(|| format!(
            "its UI is inside the cluster: `kubectl -n {NAMESPACE} port-forward svc/ml-pipeline-ui 8080:80`, then http://127.0.0.1:8080/#/runs/details/{}",
            created.run_id
        ))
    ));

    let (events, receiver) = EventSink::channel();
    let reporting =
        tokio::spawn(Reporter::new(settings, printer.clone(), &pipeline_name).consume(receiver));
    let mut follower = Follower::new(spec);
    let mut terminated_at: Option<tokio::time::Instant> = None;
    let mut run = created;
    loop {
        follower.report(&run, &events);
        if run.state.is_final() {
            break;
        }
        if terminated_at.is_some_and(|at| at.elapsed() > TERMINATE_GRACE) {
            printer.warning(&format!(
                "run {} has not stopped {}s after it was terminated; it may still be running there",
                run.run_id,
                TERMINATE_GRACE.as_secs()
            ));
            break;
        }
        tokio::select! {
            () = cancel.cancelled(), if terminated_at.is_none() => {
                terminated_at = Some(tokio::time::Instant::now());
                client.terminate_run(&run.run_id).await?;
                continue;
            }
            () = tokio::time::sleep(POLL) => {}
        }
        run = client.get_run(&run.run_id).await?;
    }
    drop(events);
    let _ = tokio::time::timeout(Duration::from_secs(2), reporting).await;
    Ok(follower.summary(&run, &pipeline_name, page, terminated_at.is_some()))
}

/// `enable_caching=False` as `kfp.Client` applies it: every task of every DAG says so.
fn disable_caching(source: &mut Value) {
    let spec = match source.get_mut("pipeline_spec") {
        Some(inner) => inner,
        None => source,
    };
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    for key in ["root", "components"] {
        let Some(value) = spec.get_mut(key) else {
            continue;
        };
        let holders: Vec<&mut Value> = if key == "root" {
            vec![value]
        } else {
            value
                .as_object_mut()
                .map(|c| c.values_mut().collect())
                .unwrap_or_default()
        };
        for component in holders {
            let Some(tasks) = component
                .pointer_mut("/dag/tasks")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for task in tasks.values_mut().filter_map(Value::as_object_mut) {
                task.insert(
                    "cachingOptions".into(),
                    serde_json::json!({"enableCache": false}),
                );
            }
        }
    }
}

/// Turns what the endpoint reports into the events and summary of a local run.
struct Follower {
    /// Task names the spec declares: what an endpoint reports beyond them (the root DAG, KFP's
    /// driver pods and Argo's own nodes) is its machinery, not the user's tasks.
    task_names: HashSet<String>,
    shown: HashMap<String, TaskState>,
}

impl Follower {
    fn new(spec: &PipelineSpec) -> Self {
        let task_names = std::iter::once(&spec.root)
            .chain(spec.components.values())
            .filter_map(|c| c.dag.as_ref())
            .flat_map(|dag| dag.tasks.keys().cloned())
            .collect();
        Self {
            task_names,
            shown: HashMap::new(),
        }
    }

    fn tasks<'a>(&'a self, run: &'a RemoteRun) -> impl Iterator<Item = &'a RemoteTask> + 'a {
        run.tasks().iter().filter(|task| {
            let name = task.display_name.rsplit('/').next().unwrap_or_default();
            self.task_names.contains(name)
        })
    }

    fn report(&mut self, run: &RemoteRun, events: &EventSink) {
        let mut changes = Vec::new();
        for task in self.tasks(run) {
            let state = task_state(task.state);
            let path = &task.display_name;
            let before = self.shown.get(path).copied();
            if before == Some(state) || (before.is_some() && state == TaskState::Running) {
                continue;
            }
            changes.push((path.clone(), before, state));
        }
        for (path, before, state) in changes {
            if before.is_none() {
                events.send(RunEvent::TaskStarted { path: path.clone() });
            }
            if state != TaskState::Running {
                events.send(RunEvent::TaskFinished {
                    path: path.clone(),
                    state,
                });
            }
            self.shown.insert(path, state);
        }
    }

    fn summary(
        &self,
        run: &RemoteRun,
        pipeline: &str,
        page: Option<String>,
        terminated: bool,
    ) -> RunSummary {
        let state = match run.state {
            RuntimeState::Succeeded => RunState::Succeeded,
            RuntimeState::Canceled => RunState::Canceled,
            RuntimeState::Failed => RunState::Failed,
            _ if terminated => RunState::Canceled,
            _ => RunState::Failed,
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut tasks: Vec<TaskRecord> = self
            .tasks(run)
            .map(|task| {
                let state = task_state(task.state);
                let kind = if task.child_tasks.is_empty() {
                    TaskKind::Container
                } else {
                    TaskKind::Dag
                };
                // Only steps have attempts; the API does not count retries, so one it is.
                let ran = kind == TaskKind::Container && state != TaskState::Skipped;
                TaskRecord {
                    name: task
                        .display_name
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                    path: task.display_name.clone(),
                    kind,
                    state,
                    attempts: u32::from(ran),
                    started_at: task.start_time.clone(),
                    finished_at: task.end_time.clone(),
                    outputs: TaskOutputs::default(),
                    error: task
                        .error
                        .as_ref()
                        .map(|e| e.message.clone())
                        .filter(|m| !m.is_empty()),
                    reason: None,
                    iterations: None,
                    log: None,
                }
            })
            .collect();
        tasks.sort_by(|a, b| {
            let key = |t: &TaskRecord| t.started_at.clone().or(t.finished_at.clone());
            key(a).cmp(&key(b)).then_with(|| a.path.cmp(&b.path))
        });
        RunSummary {
            run_id: run.run_id.clone(),
            pipeline: pipeline.to_owned(),
            state,
            outputs: Map::new(),
            tasks,
            started_at: run.created_at.clone().unwrap_or_else(|| now.clone()),
            finished_at: run.finished_at.clone().unwrap_or(now),
            run_dir: String::new(),
            error: run
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .filter(|m| !m.is_empty()),
            page,
        }
    }
}

fn task_state(state: RuntimeState) -> TaskState {
    match state {
        RuntimeState::Succeeded => TaskState::Succeeded,
        RuntimeState::Skipped => TaskState::Skipped,
        RuntimeState::Failed => TaskState::Failed,
        RuntimeState::Canceled => TaskState::Canceled,
        RuntimeState::RuntimeStateUnspecified
        | RuntimeState::Pending
        | RuntimeState::Running
        | RuntimeState::Canceling
        | RuntimeState::Paused
        | RuntimeState::Unknown => TaskState::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caching_is_turned_off_in_every_dag_and_inside_the_wrapper() {
        let mut wrapped = serde_json::json!({
            "pipeline_spec": {
                "root": {"dag": {"tasks": {"a": {"cachingOptions": {"enableCache": true}}}}},
                "components": {
                    "comp-inner": {"dag": {"tasks": {"b": {}}}},
                    "comp-leaf": {"executorLabel": "exec-leaf"}
                }
            },
            "platform_spec": {}
        });
        disable_caching(&mut wrapped);
        let spec = &wrapped["pipeline_spec"];
        assert_eq!(
            spec["root"]["dag"]["tasks"]["a"]["cachingOptions"]["enableCache"],
            false
        );
        assert_eq!(
            spec["components"]["comp-inner"]["dag"]["tasks"]["b"]["cachingOptions"]["enableCache"],
            false
        );
        assert!(spec["components"]["comp-leaf"]
            .get("cachingOptions")
            .is_none());
    }
}
