//! Container tasks: placeholders expanded, the cache and earlier attempts of a retried run
//! consulted, then attempts with backoff until one succeeds or retries run out.

use std::collections::HashSet;
use std::path::PathBuf;

use kfbox_spec::ir::{ComponentSpec, TaskSpec};
use kfbox_spec::placeholder::parse_arg;
use kfbox_spec::value::coerce;
use serde_json::{Map, Value};

use kfbox_store::props;
use kfbox_store::value::Prop;

use crate::ledger::Draft;
use crate::model::{RuntimeArtifact, TaskKind, TaskRecord, TaskState};
use kfbox_paths::UnsafeName;
use kfbox_resources::Resources;
use kfbox_step::events::RunEvent;
use kfbox_step::record::StepRecord;
use kfbox_step::Step;
use kfbox_step::{Mount, PodSettings, PullPolicy, SecurityContext};

use super::attempt::{backoff_delay, run_attempt, AttemptError};
use super::context::{ended_record, now, Artifacts, Inputs, Outcome, Run};
use super::field_paths::field_path_env;
use super::pod_volumes::{clean_up, prepare, NamedVolumes};
use super::step_input::{step_mounts, ExecutorInput, TaskDirs};
use super::volume_tasks::{run_volume_task, CREATE_PVC_IMAGE, DELETE_PVC_IMAGE};

pub(super) async fn run_container(
    run: &Run,
    task: &TaskSpec,
    component: &ComponentSpec,
    path: &str,
    inputs: Inputs,
    volumes: NamedVolumes,
    mut draft: Draft,
) -> Outcome {
    let label = component.executor_label.as_deref().unwrap_or_default();
    let container = run.pipeline.spec.deployment_spec.executors[label]
        .container
        .as_ref()
        .expect("container kind checked");
    draft.set(props::IMAGE, Prop::Text(container.image.clone()));
    let not_started = |draft: Draft, error: String| {
        let mut outcome = Outcome::empty(TaskState::Failed, Some(error));
        let record = ended_record(task, path, TaskKind::Container, &outcome, None, 0);
        run.record(draft, record, &mut outcome, Vec::new());
        outcome
    };
    if matches!(
        container.image.as_str(),
        CREATE_PVC_IMAGE | DELETE_PVC_IMAGE
    ) {
        return run_volume_task(run, task, &container.image, path, &inputs, draft);
    }
    if container.image.starts_with("argostub/") {
        return not_started(
            draft,
            format!(
                "`{}` is a Kubernetes-only step (kfp-kubernetes volume operations); it needs a cluster",
                container.image
            ),
        );
    }
    let dirs = match TaskDirs::new(&run.options.run_dir, path) {
        Ok(dirs) => dirs,
        Err(e) => return not_started(draft, format!("task path `{path}`: {e}")),
    };
    let mut with_defaults = inputs.parameters.clone();
    for (name, definition) in &component.input_definitions.parameters {
        if let (false, Some(default)) =
            (with_defaults.contains_key(name), &definition.default_value)
        {
            // Compilers write integer defaults as doubles (`5.0`); the component wants an int.
            let default = coerce(default.clone(), definition.parameter_type)
                .unwrap_or_else(|_| default.clone());
            with_defaults.insert(name.clone(), default);
        }
    }
    let present: HashSet<String> = inputs
        .parameters
        .keys()
        .chain(inputs.artifacts.keys())
        .cloned()
        .collect();
    let outputs: Result<Artifacts, UnsafeName> = component
        .output_definitions
        .artifacts
        .iter()
        .map(|(name, spec)| {
            let artifact = RuntimeArtifact {
                name: name.clone(),
                uri: dirs.output_artifact(name)?.display().to_string(),
                schema_title: spec.artifact_type.schema_title.clone(),
                schema_version: spec.artifact_type.schema_version.clone(),
                metadata: Map::new(),
                id: None,
            };
            Ok((name.clone(), vec![artifact]))
        })
        .collect();
    let output_parameters: Result<Vec<(String, PathBuf)>, UnsafeName> = component
        .output_definitions
        .parameters
        .keys()
        .map(|name| Ok((name.clone(), dirs.output_parameter_file(name)?)))
        .collect();
    let (outputs, output_parameters) = match (outputs, output_parameters) {
        (Ok(outputs), Ok(parameters)) => (outputs, parameters),
        (Err(e), _) | (_, Err(e)) => return not_started(draft, format!("an output: {e}")),
    };
    let executor_input = ExecutorInput {
        inputs: &inputs,
        with_defaults,
        present,
        outputs,
        output_parameters,
        output_file: dirs.executor_output_file(),
    };
    let expand = |texts: &[String]| -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        for text in texts {
            let expanded = parse_arg(text).and_then(|arg| arg.expand(&executor_input));
            words.extend(expanded.map_err(|e| e.to_string())?);
        }
        Ok(words)
    };
    let (command, args) = match (expand(&container.command), expand(&container.args)) {
        (Ok(command), Ok(args)) => (command, args),
        (Err(e), _) | (_, Err(e)) => return not_started(draft, e),
    };
    if run.options.retry {
        if let Some(done) = run.ledger.find_succeeded(path) {
            return reuse_cached(run, task, component, path, draft, done);
        }
    }
    if task.caching_options.enable_cache {
        let fingerprint = crate::cache::fingerprint(
            task,
            component,
            container,
            &executor_input.with_defaults,
            &inputs.artifacts,
            &volumes.pvc_names(),
        );
        if let Some(fingerprint) = fingerprint {
            draft.set(props::CACHE_FINGERPRINT, Prop::Text(fingerprint.clone()));
            if run.options.reuse_cache {
                if let Some(hit) = run.ledger.find_cached(&fingerprint) {
                    return reuse_cached(run, task, component, path, draft, hit);
                }
            }
        }
    }
    let mut env: Vec<(String, String)> = container
        .env
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    let mut pod = PodSettings::default();
    if let Some(label) = component.executor_label.as_deref() {
        let platform = &run.pipeline.platform;
        match field_path_env(platform, label, &run.resource_name, path) {
            Ok(fields) => env.extend(fields),
            Err(e) => return not_started(draft, e),
        }
        if let Some(policy) = platform.image_pull_policy(label) {
            match PullPolicy::parse(&policy) {
                Some(policy) => pod.pull_policy = Some(policy),
                None => {
                    return not_started(
                        draft,
                        format!(
                        "set_image_pull_policy: `{policy}` is not Always, IfNotPresent or Never"
                    ),
                    )
                }
            }
        }
        match platform.security_context(label) {
            Ok(context) => {
                pod.security = context.map(|run_as| SecurityContext {
                    run_as_user: run_as.user,
                    run_as_group: run_as.group,
                    run_as_non_root: run_as.non_root,
                })
            }
            Err(e) => return not_started(draft, e),
        }
        let scheduling = platform.scheduling(label);
        if !scheduling.is_empty() {
            draft.set(
                props::SCHEDULING,
                Prop::Text(Value::Object(scheduling).to_string()),
            );
        }
        for (kind, prop, map) in [
            ("labels", props::POD_LABELS, &mut pod.labels),
            ("annotations", props::POD_ANNOTATIONS, &mut pod.annotations),
        ] {
            map.extend(platform.pod_metadata(label, kind));
            if !map.is_empty() {
                let json = serde_json::to_string(&*map).expect("strings serialize");
                draft.set(prop, Prop::Text(json));
            }
        }
    }
    // A setting given by a parameter (`set_accelerator_limit(count)`) is resolved now, as the
    // driver resolves it when the pod is made; literal settings were checked by validation.
    let resources = match resolved_resources(container.resources.as_ref(), &expand)
        .and_then(|r| Resources::from_ir(r.as_ref()))
    {
        Ok(resources) => resources,
        Err(e) => return not_started(draft, format!("resources: {e}")),
    };
    let mut mounts = step_mounts(&inputs, &executor_input, &dirs);
    if run.pipeline.platform.has_workspace() {
        let workspace = run.workspace_dir();
        if let Err(e) = kfbox_paths::create_private_dir_all(&workspace) {
            return not_started(draft, format!("the pipeline's workspace: {e}"));
        }
        mounts.push(Mount {
            path: workspace,
            writable: true,
        });
    }
    let pod_mounts = match prepare(run, &volumes, &dirs.task_dir) {
        Ok(pod_mounts) => pod_mounts,
        Err(e) => {
            clean_up(&dirs.task_dir);
            return not_started(draft, e);
        }
    };
    env.extend(pod_mounts.env.iter().cloned());
    let retry = task.retry_policy.clone().unwrap_or_default();
    let max_attempts = retry.max_retry_count + 1;
    let started_at = now();
    // Known from the start, so `kfbox logs --follow` finds a running step's log.
    draft.set(props::LOG, Prop::Text(dirs.log_path.display().to_string()));
    draft.set(
        props::PROCESS_FILE,
        Prop::Text(dirs.process_file().display().to_string()),
    );
    run.ledger.open(&mut draft);
    let mut recorded = false;
    run.events.send(RunEvent::TaskStarted {
        path: path.to_owned(),
    });
    let mut attempt = 0;
    let (state, result, error) = loop {
        attempt += 1;
        let step = run.executor.prepare(Step {
            task_path: path.to_owned(),
            run_id: run.options.run_id.clone(),
            image: container.image.clone(),
            command: command.clone(),
            args: args.clone(),
            env: env.clone(),
            work_dir: dirs.task_dir.join(format!("attempt-{attempt}")),
            log_path: dirs.log_path.clone(),
            process_file: dirs.process_file(),
            mounts: mounts.clone(),
            resources: resources.clone(),
            gpus: None,
            pod: pod.clone(),
            volumes: pod_mounts.volumes.clone(),
            masked: pod_mounts.masked.clone(),
        });
        if !recorded {
            // For `kfbox debug`: what ran, on which inputs (a failure to write it costs only that).
            recorded = true;
            if let Err(e) = StepRecord::of(&step, &dirs.task_dir, &dirs.artifacts_dir).write() {
                tracing::warn!("cannot record task `{path}`'s step: {e}");
            }
        }
        let attempt_result = run_attempt(run, &step, &executor_input, component).await;
        match attempt_result {
            Ok(outputs) => break (TaskState::Succeeded, Some(outputs), None),
            Err(AttemptError::Canceled) => {
                break (TaskState::Canceled, None, Some("canceled".to_owned()))
            }
            Err(AttemptError::Final(e)) => break (TaskState::Failed, None, Some(e)),
            Err(AttemptError::Retriable(e)) if attempt < max_attempts => {
                run.events.send(RunEvent::TaskRetrying {
                    path: path.to_owned(),
                    attempt,
                    error: e.clone(),
                });
                let delay = backoff_delay(&retry, attempt);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = run.cancel.cancelled() => break (TaskState::Canceled, None, Some("canceled".to_owned())),
                }
            }
            Err(AttemptError::Retriable(e)) => break (TaskState::Failed, None, Some(e)),
        }
    };
    clean_up(&dirs.task_dir);
    let mut outcome = match result {
        Some((parameters, artifacts)) => Outcome {
            state,
            parameters,
            artifacts,
            error: None,
        },
        None => Outcome::empty(state, error),
    };
    let record = TaskRecord {
        reason: (state == TaskState::Canceled).then(|| "the run was canceled".to_owned()),
        log: Some(dirs.log_path.display().to_string()),
        ..ended_record(
            task,
            path,
            TaskKind::Container,
            &outcome,
            Some(started_at),
            attempt,
        )
    };
    run.record(draft, record, &mut outcome, Vec::new());
    outcome
}

/// A cache hit: the earlier execution's outputs and artifacts (the same files, not copies),
/// recorded as a CACHED execution that points at it.
pub(super) fn reuse_cached(
    run: &Run,
    task: &TaskSpec,
    component: &ComponentSpec,
    path: &str,
    draft: Draft,
    hit: kfbox_store::CachedExecution,
) -> Outcome {
    let started_at = now();
    let mut parameters = Map::new();
    for (name, definition) in &component.output_definitions.parameters {
        if let Some(value) = hit.outputs.get(name) {
            // The store keeps numbers as doubles, as MLMD does; the declared type restores ints.
            let value =
                coerce(value.clone(), definition.parameter_type).unwrap_or_else(|_| value.clone());
            parameters.insert(name.clone(), value);
        }
    }
    let mut artifacts = Artifacts::new();
    for (name, rows) in hit.artifacts {
        let declared = component.output_definitions.artifacts.get(&name);
        let list = rows
            .into_iter()
            .map(|row| {
                let mut metadata = row.metadata.clone();
                metadata.remove(props::STORE_SESSION_INFO);
                if row.display_name() == name {
                    metadata.remove(props::DISPLAY_NAME);
                }
                RuntimeArtifact {
                    name: name.clone(),
                    uri: row.uri,
                    schema_title: row.type_name,
                    schema_version: declared
                        .map(|d| d.artifact_type.schema_version.clone())
                        .unwrap_or_default(),
                    metadata,
                    id: Some(row.id),
                }
            })
            .collect();
        artifacts.insert(name, list);
    }
    let mut outcome = Outcome {
        state: TaskState::Cached,
        parameters,
        artifacts,
        error: None,
    };
    // The run's short id, as `kfbox runs` lists it; `kfbox runs get` takes it.
    let from = match &hit.run_id {
        Some(run_id) => format!(
            "execution {} of run {}",
            hit.execution_id,
            run_id.get(..8).unwrap_or(run_id)
        ),
        None => format!("execution {}", hit.execution_id),
    };
    let record = TaskRecord {
        reason: Some(format!("cache hit: reused {from}")),
        ..ended_record(
            task,
            path,
            TaskKind::Container,
            &outcome,
            Some(started_at),
            0,
        )
    };
    let extra = vec![(
        props::CACHED_EXECUTION_ID,
        Prop::Text(hit.execution_id.to_string()),
    )];
    run.record(draft, record, &mut outcome, extra);
    outcome
}

/// Expands a container's texts (command, arguments, settings) against its inputs.
type Expand<'a> = dyn Fn(&[String]) -> Result<Vec<String>, String> + 'a;

/// The container's resource settings with their placeholders expanded.
fn resolved_resources(
    resources: Option<&Value>,
    expand: &Expand<'_>,
) -> Result<Option<Value>, String> {
    fn walk(value: &Value, expand: &Expand<'_>) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) if text.contains("{{") => {
                Value::String(expand(std::slice::from_ref(text))?.join(" "))
            }
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), walk(v, expand)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
    resources.map(|r| walk(r, expand)).transpose()
}
