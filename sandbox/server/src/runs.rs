//! `/apis/v2beta1/runs`: create (inline spec or pipeline version), get with task details,
//! list, terminate, retry, archive, unarchive, delete; and executing runs in this process.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use kfbox_engine::model::RunState;
use kfbox_engine::{launch, resolve_root_parameters, GivenValue, Launch, LaunchError, LaunchedRun};
use kfbox_spec::LoadedPipeline;
use kfbox_step::events::{EventSink, RunEvent};
use kfbox_step::Executor;
use kfbox_store::ApiRunFields;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::filter::{ListParams, Params};
use crate::model::{self, Empty, ListRuns, Run, RuntimeConfig, VersionReference};
use crate::pipelines::{spec_json, spec_value};
use crate::request::{body, non_empty, split_action};
use crate::state::Server;

/// A run as clients create it (the API's `Run`, and what a recurring run holds): a compiled
/// `pipeline_spec`, or a reference to a pipeline version.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
pub(crate) struct RunRequest {
    #[schema(min_length = 1)]
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub experiment_id: Option<String>,
    /// The compiled PipelineSpec (or the `{"pipeline_spec", "platform_spec"}` wrapper).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub pipeline_spec: Value,
    pub pipeline_version_reference: Option<VersionReference>,
    /// Deprecated spelling of the version reference.
    pub pipeline_version_id: Option<String>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    pub service_account: Option<String>,
}

/// Check a run request, record the run and start executing it; returns the run id.
pub(crate) async fn start(
    server: &Arc<Server>,
    request: RunRequest,
    recurring_run_id: Option<String>,
) -> ApiResult<String> {
    let experiment_id = server.experiment_or_default(request.experiment_id.as_deref())?;
    let reference = request
        .pipeline_version_reference
        .clone()
        .unwrap_or_default();
    let version_id = non_empty(&reference.pipeline_version_id)
        .or(non_empty(&request.pipeline_version_id))
        .map(str::to_owned);
    let display_name = non_empty(&request.display_name)
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid("run.display_name is required"))?;
    let label = format!("run `{display_name}`");
    let ((spec_text, pipeline), pipeline_id, version_id) = if !request.pipeline_spec.is_null() {
        (
            spec_value(request.pipeline_spec.clone(), &label)?,
            None,
            None,
        )
    } else if let Some(version_id) = version_id {
        let version = server.store().pipeline_version(&version_id)?;
        (
            spec_json(&version.pipeline_spec, &label)?,
            Some(version.pipeline_id),
            Some(version_id),
        )
    } else if let Some(pipeline_id) = non_empty(&reference.pipeline_id) {
        let version = server.store().latest_pipeline_version(pipeline_id)?;
        (
            spec_json(&version.pipeline_spec, &label)?,
            Some(version.pipeline_id),
            Some(version.pipeline_version_id),
        )
    } else {
        return Err(ApiError::invalid(
            "a run needs `pipeline_spec` or `pipeline_version_reference`",
        ));
    };
    let parameters = parameters(&pipeline, &request.runtime_config)?;
    let executor = server
        .launcher
        .executor(&pipeline)
        .await
        .map_err(ApiError::internal)?;
    let launched = launch(
        &server.runtime,
        Launch {
            pipeline: Arc::new(pipeline),
            spec_text,
            parameters,
            artifacts: Default::default(),
            display_name: Some(display_name),
            experiment_id: Some(experiment_id.clone()),
            retry_of: None,
        },
    )
    .map_err(launch_failed)?;
    let run_id = launched.run_id().to_owned();
    server.store().record_api_run(
        &run_id,
        &ApiRunFields {
            experiment_id: Some(experiment_id),
            description: request.description.clone().unwrap_or_default(),
            pipeline_id,
            pipeline_version_id: version_id,
            recurring_run_id,
            runtime_config: serde_json::to_string(&request.runtime_config).unwrap_or_default(),
            service_account: request.service_account.clone().unwrap_or_default(),
        },
    )?;
    spawn_run(server, launched, executor);
    Ok(run_id)
}

/// A store error keeps its API code (a retry of a running run is a failed precondition);
/// anything else is the server's problem.
fn launch_failed(error: LaunchError) -> ApiError {
    match error {
        LaunchError::Store(e) => e.into(),
        other => ApiError::internal(kfbox_step::error_chain(&other)),
    }
}

/// Root parameters from `runtime_config.parameters`, typed against the pipeline.
fn parameters(
    pipeline: &LoadedPipeline,
    runtime_config: &RuntimeConfig,
) -> ApiResult<Map<String, Value>> {
    let given: Vec<(String, GivenValue)> = runtime_config
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), GivenValue::Json(v.clone())))
        .collect();
    resolve_root_parameters(&pipeline.spec, &given).map_err(|errors| {
        ApiError::invalid(format!(
            "runtime_config.parameters: {}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })
}

fn spawn_run(server: &Arc<Server>, launched: LaunchedRun, executor: Arc<dyn Executor>) {
    let run_id = launched.run_id().to_owned();
    let cancel = server.stopping.child_token();
    server.active().insert(run_id.clone(), cancel.clone());
    let server = server.clone();
    server.runs.clone().spawn(async move {
        let (events, mut receiver) = EventSink::channel();
        let id = run_id.clone();
        let listener = server.clone();
        let watched = tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                match event {
                    RunEvent::Warning(text) => tracing::warn!("run {id}: {text}"),
                    RunEvent::TaskPhase { path, phase } => {
                        let mut phases = listener.phases();
                        let tasks = phases.entry(id.clone()).or_default();
                        if phase.is_empty() {
                            tasks.remove(&path);
                        } else {
                            tasks.insert(path, phase);
                        }
                    }
                    RunEvent::TaskFinished { path, .. } => {
                        if let Some(tasks) = listener.phases().get_mut(&id) {
                            tasks.remove(&path);
                        }
                    }
                    _ => {}
                }
            }
        });
        let summary = launched.execute(executor, events, cancel).await;
        let _ = watched.await;
        server.phases().remove(&run_id);
        server.active().remove(&run_id);
        let mut counts = server.ended();
        match summary.state {
            RunState::Succeeded => counts.succeeded += 1,
            RunState::Canceled => counts.canceled += 1,
            _ => counts.failed += 1,
        }
    });
}

pub(crate) async fn create(
    State(server): State<Arc<Server>>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Run>> {
    let request: RunRequest = body(&bytes, "Run")?;
    let run_id = start(&server, request, None).await?;
    read(State(server), Path(run_id)).await
}

pub(crate) async fn read(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Run>> {
    let row = server.store().api_run(&id)?;
    let executions = server.store().run_executions(&row.run)?;
    let spec = server.store().api_run_spec(&id)?;
    let canceling = server.active().get(&id).is_some_and(|t| t.is_cancelled());
    Ok(Json(model::run(
        &row,
        canceling,
        spec.as_deref(),
        Some(&executions),
    )))
}

pub(crate) async fn list(
    State(server): State<Arc<Server>>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<ListRuns>> {
    let query = params.query_in_experiment()?;
    let page = server.store().list_api_runs(&query)?;
    let active = server.active();
    Ok(Json(ListRuns::of(page, |row| {
        let canceling = active
            .get(&row.run.run_id)
            .is_some_and(|t| t.is_cancelled());
        model::run(row, canceling, None, None)
    })))
}

pub(crate) async fn action(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    let (id, verb) = split_action(&id)?;
    match verb {
        "terminate" => terminate(&server, id)?,
        "retry" => retry(&server, id).await?,
        "archive" => server.store().set_run_storage(id, true)?,
        "unarchive" => server.store().set_run_storage(id, false)?,
        other => {
            return Err(ApiError::not_found(format!(
                "runs have no method `{other}` (terminate, retry, archive, unarchive)"
            )))
        }
    }
    Ok(Json(Empty {}))
}

fn terminate(server: &Server, id: &str) -> ApiResult<()> {
    if let Some(token) = server.active().get(id) {
        token.cancel();
        return Ok(());
    }
    let row = server.store().api_run(id)?;
    Err(ApiError::precondition(if row.run.state == "RUNNING" {
        format!("run {id} is executed by another kfbox process (`kfbox run`); stop it there")
    } else {
        format!("run {id} already ended ({})", row.run.state)
    }))
}

/// Run a failed or canceled run again under the same id: tasks that succeeded are reused,
/// the others run.
pub(crate) async fn retry(server: &Arc<Server>, id: &str) -> ApiResult<()> {
    if server.active().contains_key(id) {
        return Err(ApiError::precondition(format!("run {id} is still running")));
    }
    let row = server.store().api_run(id)?;
    if !matches!(row.run.state.as_str(), "FAILED" | "CANCELED") {
        return Err(ApiError::precondition(format!(
            "only failed or canceled runs can be retried; run {id} is {}",
            row.run.state
        )));
    }
    let spec = server
        .store()
        .api_run_spec(id)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::precondition(format!(
                "run {id} was started by `kfbox run`, not through the API; run the pipeline again there"
            ))
        })?;
    let (_, pipeline) = spec_json(&spec, &format!("run `{}`", row.run.display_name))?;
    let runtime_config: RuntimeConfig =
        serde_json::from_str(&row.fields.runtime_config).unwrap_or_default();
    let parameters = parameters(&pipeline, &runtime_config)?;
    let executor = server
        .launcher
        .executor(&pipeline)
        .await
        .map_err(ApiError::internal)?;
    let launched = launch(
        &server.runtime,
        Launch {
            pipeline: Arc::new(pipeline),
            spec_text: spec,
            parameters,
            artifacts: Default::default(),
            display_name: None,
            experiment_id: None,
            retry_of: Some(id.to_owned()),
        },
    )
    .map_err(launch_failed)?;
    spawn_run(server, launched, executor);
    Ok(())
}

pub(crate) async fn delete(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    if server.active().contains_key(&id) {
        return Err(ApiError::precondition(format!(
            "run {id} is running; terminate it first"
        )));
    }
    let row = server.store().api_run(&id)?;
    server
        .store()
        .discard_run(&row.run, &server.options.runs_dir)?;
    Ok(Json(Empty {}))
}
