//! kfbox's own read routes for the web UI (under `/apis/v1alpha1`, beside the task logs): a
//! run's graph, a pipeline version's preview graph, a run's artifacts, one artifact with its
//! lineage, and an artifact's bytes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kfbox_store::{props, ArtifactRow, ExecutionRow, LineageStep};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::files::artifact_bytes;
use crate::filter::Params;
use crate::model::{latest_per_task, time};
use crate::pipelines::spec_json;
use crate::{graph, Server};

pub(crate) fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/apis/v1alpha1/runs/{run_id}/graph", get(run_graph))
        .route(
            "/apis/v1alpha1/pipelines/{pipeline_id}/versions/{version_id}/graph",
            get(version_graph),
        )
        .route("/apis/v1alpha1/runs/{run_id}/artifacts", get(run_artifacts))
        .route("/apis/v1alpha1/artifacts/{artifact_id}", get(artifact))
        .route(
            "/apis/v1alpha1/artifacts/{artifact_id}/content",
            get(artifact_content),
        )
}

async fn run_graph(
    State(server): State<Arc<Server>>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<graph::Graph>> {
    let row = server.store.api_run(&run_id)?;
    let spec = server.store.api_run_spec(&run_id)?.unwrap_or_default();
    let executions = server.store.run_executions(&row.run)?;
    let latest = latest_per_task(&executions);
    let ended = row.run.finished_at.is_some();
    if spec.is_empty() {
        return Ok(Json(graph::from_executions(&latest, ended)));
    }
    let (_, pipeline) = spec_json(&spec, &format!("run `{}`", row.run.display_name))?;
    Ok(Json(graph::build(&pipeline.spec, &latest, ended)))
}

async fn version_graph(
    State(server): State<Arc<Server>>,
    Path((pipeline_id, version_id)): Path<(String, String)>,
) -> ApiResult<Json<graph::Graph>> {
    let version = server.store.pipeline_version(&version_id)?;
    if version.pipeline_id != pipeline_id {
        return Err(ApiError::not_found(format!(
            "pipeline {pipeline_id} has no version {version_id}"
        )));
    }
    let (_, pipeline) = spec_json(
        &version.pipeline_spec,
        &format!("pipeline version `{}`", version.display_name),
    )?;
    Ok(Json(graph::build(&pipeline.spec, &[], false)))
}

/// Every output artifact of a run's tasks (cache hits included: they output what they reused).
async fn run_artifacts(
    State(server): State<Arc<Server>>,
    Path(run_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = server.store.api_run(&run_id)?;
    let executions = server.store.run_executions(&row.run)?;
    let mut artifacts = Vec::new();
    for task in latest_per_task(&executions) {
        for (name, id) in &task.outputs {
            let artifact = server.store.artifact(*id)?;
            let mut entry = artifact_json(&artifact);
            entry["name"] = json!(name);
            entry["task"] = json!(task.text(props::PATH).unwrap_or_default());
            entry["execution_id"] = json!(task.id);
            artifacts.push(entry);
        }
    }
    Ok(Json(json!({ "artifacts": artifacts })))
}

fn artifact_json(artifact: &ArtifactRow) -> Value {
    json!({
        "artifact_id": artifact.id,
        "display_name": artifact.display_name(),
        "type": artifact.type_name,
        "uri": artifact.uri,
        "metadata": artifact.metadata,
        "run_id": artifact.run_id,
        "created_at": time(Some(artifact.created_at)),
    })
}

fn artifact_id(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| {
        ApiError::invalid(format!(
            "artifact id `{}` is not a number",
            text.escape_default()
        ))
    })
}

/// One artifact, what produced it (and the producer's inputs), and what consumed it.
async fn artifact(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let lineage = server.store.lineage(artifact_id(&id)?)?;
    let step = |step: &LineageStep| step_json(&step.execution, &step.name);
    let mut out = artifact_json(&lineage.artifact);
    out["producers"] = lineage.producers.iter().map(step).collect();
    out["consumers"] = lineage.consumers.iter().map(step).collect();
    out["inputs"] = lineage
        .inputs
        .iter()
        .map(|(name, input)| {
            let mut entry = artifact_json(input);
            entry["name"] = json!(name);
            entry
        })
        .collect();
    Ok(Json(out))
}

fn step_json(execution: &ExecutionRow, name: &str) -> Value {
    json!({
        "execution_id": execution.id,
        "run_id": execution.run_id,
        "task": execution.text(props::PATH).unwrap_or_default(),
        "state": execution.text(props::STATE).unwrap_or(execution.state),
        "name": name,
    })
}

#[derive(Debug, Default, Deserialize)]
struct ContentParams {
    /// Send it as a file to save.
    download: Option<bool>,
    /// At most this many bytes from the start (previews of large files).
    limit: Option<u64>,
}

/// An artifact's bytes (a directory as a tar archive). Never rendered by the browser on this
/// origin: the UI reads it with `fetch`, and the headers forbid sniffing and scripts.
async fn artifact_content(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    Params(params): Params<ContentParams>,
) -> ApiResult<Response> {
    let artifact = server.store.artifact(artifact_id(&id)?)?;
    let (bytes, is_dir) = artifact_bytes(&server, &artifact.uri, params.limit).await?;
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
