//! kfbox's own read routes for the web UI (under `/apis/v1alpha1`, beside the task logs): a
//! run's graph, a pipeline version's preview graph, a run's artifacts, one artifact with its
//! lineage, and an artifact's bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kfbox_store::{props, ArtifactRow, LineageStep};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::files::artifact_bytes;
use crate::filter::Params;
use crate::graph;
use crate::lab::LabStatus;
use crate::model::time;
use crate::pipelines::spec_json;
use crate::state::Server;
use kfbox_engine::recorded::{execution_state, latest_per_task};

pub(crate) async fn run_graph(
    State(server): State<Arc<Server>>,
    Path(run_id): Path<String>,
    Params(page): Params<GraphParams>,
) -> ApiResult<Json<graph::Graph>> {
    let page = page.loop_path.map(|loop_path| graph::LoopPage {
        loop_path,
        offset: page.offset.unwrap_or(0),
        state: page.state.filter(|s| !s.is_empty()),
    });
    let row = server.store().api_run(&run_id)?;
    let spec = server.store().api_run_spec(&run_id)?.unwrap_or_default();
    let executions = server.store().run_executions(&row.run)?;
    let latest = latest_per_task(&executions);
    let ended = row.run.finished_at.is_some();
    if spec.is_empty() {
        return Ok(Json(
            graph::from_executions(&latest, ended).with_run_values(&latest),
        ));
    }
    let (_, pipeline) = spec_json(&spec, &format!("run `{}`", row.run.display_name))?;
    let mut graph = graph::build(&pipeline.spec, &latest, ended, page).with_run_values(&latest);
    if let Some(phases) = server.phases().get(&run_id) {
        for node in &mut graph.nodes {
            if node.state == "RUNNING" {
                node.phase = phases.get(&node.id).cloned();
            }
        }
    }
    Ok(Json(graph))
}

pub(crate) async fn version_graph(
    State(server): State<Arc<Server>>,
    Path((pipeline_id, version_id)): Path<(String, String)>,
) -> ApiResult<Json<graph::Graph>> {
    let version = server.store().pipeline_version(&version_id)?;
    if version.pipeline_id != pipeline_id {
        return Err(ApiError::not_found(format!(
            "pipeline {pipeline_id} has no version {version_id}"
        )));
    }
    let (_, pipeline) = spec_json(
        &version.pipeline_spec,
        &format!("pipeline version `{}`", version.display_name),
    )?;
    Ok(Json(graph::build(&pipeline.spec, &[], false, None)))
}

/// An artifact as kfbox's read routes show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Artifact {
    pub artifact_id: i64,
    pub display_name: String,
    /// Its schema title (`system.Dataset`...).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub type_name: String,
    pub uri: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub run_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl Artifact {
    fn of(artifact: &ArtifactRow) -> Self {
        Self {
            artifact_id: artifact.id,
            display_name: artifact.display_name().to_owned(),
            type_name: artifact.type_name.clone(),
            uri: artifact.uri.clone(),
            metadata: artifact.metadata.clone(),
            run_id: artifact.run_id.clone(),
            created_at: time(Some(artifact.created_at)),
        }
    }
}

/// An artifact as a task's output (or input) named it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedArtifact {
    #[serde(flatten)]
    pub artifact: Artifact,
    /// The output (or input) name.
    pub name: String,
}

/// An output artifact of a run's task.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskArtifact {
    #[serde(flatten)]
    pub artifact: NamedArtifact,
    /// The task's path in the run.
    pub task: String,
    pub execution_id: i64,
}

/// Runs' parameter values and logged metrics, for the columns of a run list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunValues {
    /// Every name runs have values under (`parameters.lr`, `metrics.accuracy`): what a run list
    /// can show, and sort and filter by (`sort_by=metrics.accuracy desc`, a predicate on
    /// `parameters.lr` with `double_value`).
    pub names: Vec<String>,
    /// The runs asked for, each with its values by name.
    #[schema(value_type = Object)]
    pub runs: BTreeMap<String, Map<String, Value>>,
}

/// Which page of a large loop's iterations a run's graph holds.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GraphParams {
    #[serde(rename = "loop")]
    loop_path: Option<String>,
    offset: Option<usize>,
    state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunValuesParams {
    /// Run ids, comma-separated.
    run_ids: Option<String>,
}

/// The names runs have values under, and the values of the runs asked for (at most a page).
pub(crate) async fn run_values(
    State(server): State<Arc<Server>>,
    Params(params): Params<RunValuesParams>,
) -> ApiResult<Json<RunValues>> {
    const MOST: usize = 200;
    let run_ids: Vec<String> = params
        .run_ids
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    if run_ids.len() > MOST {
        return Err(ApiError::invalid(format!(
            "run_ids names {} runs; ask for at most {MOST} at a time (a page of runs)",
            run_ids.len()
        )));
    }
    Ok(Json(RunValues {
        names: server.store().run_value_names()?,
        runs: server.store().run_values(&run_ids)?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunArtifacts {
    pub artifacts: Vec<TaskArtifact>,
}

/// An execution that produced or used an artifact.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineageExecution {
    pub execution_id: i64,
    pub run_id: Option<String>,
    pub task: String,
    pub state: String,
    /// The name the task gave the artifact.
    pub name: String,
}

/// An artifact, what produced it (and the producer's inputs), and what consumed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArtifactLineage {
    #[serde(flatten)]
    pub artifact: Artifact,
    pub producers: Vec<LineageExecution>,
    pub consumers: Vec<LineageExecution>,
    pub inputs: Vec<NamedArtifact>,
}

/// Every output artifact of a run's tasks (cache hits included: they output what they reused).
pub(crate) async fn run_artifacts(
    State(server): State<Arc<Server>>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<RunArtifacts>> {
    let row = server.store().api_run(&run_id)?;
    let executions = server.store().run_executions(&row.run)?;
    let mut artifacts = Vec::new();
    for task in latest_per_task(&executions) {
        for (name, id) in &task.outputs {
            artifacts.push(TaskArtifact {
                artifact: NamedArtifact {
                    artifact: Artifact::of(&server.store().artifact(*id)?),
                    name: name.clone(),
                },
                task: task.text(props::PATH).unwrap_or_default().to_owned(),
                execution_id: task.id,
            });
        }
    }
    Ok(Json(RunArtifacts { artifacts }))
}

fn artifact_id(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "artifact id `{}` is not a number",
            text.escape_default()
        ))
    })
}

pub(crate) async fn artifact(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ArtifactLineage>> {
    let lineage = server.store().lineage(artifact_id(&id)?)?;
    let step = |step: &LineageStep| LineageExecution {
        execution_id: step.execution.id,
        run_id: step.execution.run_id.clone(),
        task: step
            .execution
            .text(props::PATH)
            .unwrap_or_default()
            .to_owned(),
        state: execution_state(&step.execution).as_str().to_owned(),
        name: step.name.clone(),
    };
    Ok(Json(ArtifactLineage {
        artifact: Artifact::of(&lineage.artifact),
        producers: lineage.producers.iter().map(step).collect(),
        consumers: lineage.consumers.iter().map(step).collect(),
        inputs: lineage
            .inputs
            .iter()
            .map(|(name, input)| NamedArtifact {
                artifact: Artifact::of(input),
                name: name.clone(),
            })
            .collect(),
    }))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ContentParams {
    /// Send it as a file to save.
    download: Option<bool>,
    /// At most this many bytes from the start (previews of large files).
    /// An int64, as the document says; not negative.
    limit: Option<i64>,
}

/// An artifact's bytes (a directory as a tar archive). Never rendered by the browser on this
/// origin: the UI reads it with `fetch`, and the headers forbid sniffing and scripts.
pub(crate) async fn artifact_content(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    Params(params): Params<ContentParams>,
) -> ApiResult<Response> {
    let artifact = server.store().artifact(artifact_id(&id)?)?;
    let limit = match params.limit {
        Some(n) if n < 0 => {
            return Err(ApiError::invalid(format!(
                "limit {n}: must not be negative"
            )))
        }
        other => other.map(|n| n.unsigned_abs()),
    };
    let (bytes, is_dir) = artifact_bytes(&server, &artifact.uri, limit).await?;
    let mut file_name = artifact
        .uri
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("artifact")
        .replace(
            |c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)),
            "_",
        );
    if is_dir {
        file_name.push_str(".tar");
    }
    let disposition = if params.download == Some(true) {
        format!("attachment; filename=\"{file_name}\"")
    } else {
        format!("inline; filename=\"{file_name}\"")
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
            (header::CACHE_CONTROL, "no-cache, private".to_owned()),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// JupyterLab's state, as whoever starts the lab writes it.
pub(crate) async fn lab_status(State(server): State<Arc<Server>>) -> Json<LabStatus> {
    Json(server.options.lab.get())
}
