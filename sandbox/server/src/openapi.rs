//! The API's OpenAPI document, made from the table of routes this server answers. Tests check
//! the table against the router (every entry answers) and against the `kfp` SDK's generated
//! client (every path it calls is here).

use axum::Json;
use serde_json::{json, Map, Value};

/// One route: method, path (custom methods as `{id}:verb`, as upstream), operation id,
/// summary, and its query parameters.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: &'static str,
    pub summary: &'static str,
    pub query: &'static [&'static str],
}

const LIST: &[&str] = &["page_token", "page_size", "sort_by", "filter", "namespace"];
const LIST_IN_EXPERIMENT: &[&str] = &[
    "page_token",
    "page_size",
    "sort_by",
    "filter",
    "namespace",
    "experiment_id",
];

macro_rules! route {
    ($method:literal, $path:literal, $operation:literal, $summary:literal) => {
        route!($method, $path, $operation, $summary, &[])
    };
    ($method:literal, $path:literal, $operation:literal, $summary:literal, $query:expr) => {
        Route {
            method: $method,
            path: $path,
            operation: $operation,
            summary: $summary,
            query: $query,
        }
    };
}

pub const ROUTES: &[Route] = &[
    route!(
        "get",
        "/apis/v2beta1/healthz",
        "healthz_service_get_healthz",
        "Whether the server is up"
    ),
    route!(
        "get",
        "/apis/v2beta1/openapi.json",
        "openapi",
        "This document"
    ),
    route!(
        "post",
        "/apis/v2beta1/experiments",
        "experiment_service_create_experiment",
        "Create an experiment"
    ),
    route!(
        "get",
        "/apis/v2beta1/experiments",
        "experiment_service_list_experiments",
        "List experiments",
        LIST
    ),
    route!(
        "get",
        "/apis/v2beta1/experiments/{experiment_id}",
        "experiment_service_get_experiment",
        "Get an experiment"
    ),
    route!(
        "delete",
        "/apis/v2beta1/experiments/{experiment_id}",
        "experiment_service_delete_experiment",
        "Delete an experiment"
    ),
    route!(
        "post",
        "/apis/v2beta1/experiments/{experiment_id}:archive",
        "experiment_service_archive_experiment",
        "Archive an experiment and its runs"
    ),
    route!(
        "post",
        "/apis/v2beta1/experiments/{experiment_id}:unarchive",
        "experiment_service_unarchive_experiment",
        "Unarchive an experiment"
    ),
    route!(
        "post",
        "/apis/v2beta1/pipelines",
        "pipeline_service_create_pipeline",
        "Create a pipeline without versions"
    ),
    route!(
        "get",
        "/apis/v2beta1/pipelines",
        "pipeline_service_list_pipelines",
        "List pipelines",
        LIST
    ),
    route!(
        "post",
        "/apis/v2beta1/pipelines/create",
        "pipeline_service_create_pipeline_and_version",
        "Create a pipeline and its first version"
    ),
    route!(
        "post",
        "/apis/v2beta1/pipelines/upload",
        "upload_pipeline",
        "Upload a compiled pipeline (multipart `uploadfile`)",
        &["name", "display_name", "description", "namespace"]
    ),
    route!(
        "post",
        "/apis/v2beta1/pipelines/upload_version",
        "upload_pipeline_version",
        "Upload a new version (multipart `uploadfile`)",
        &["pipelineid", "name", "display_name", "description"]
    ),
    route!(
        "get",
        "/apis/v2beta1/pipelines/names/{name}",
        "pipeline_service_get_pipeline_by_name",
        "Get a pipeline by name"
    ),
    route!(
        "get",
        "/apis/v2beta1/pipelines/{pipeline_id}",
        "pipeline_service_get_pipeline",
        "Get a pipeline"
    ),
    route!(
        "delete",
        "/apis/v2beta1/pipelines/{pipeline_id}",
        "pipeline_service_delete_pipeline",
        "Delete a pipeline (with `cascade=true`, its versions too)",
        &["cascade"]
    ),
    route!(
        "post",
        "/apis/v2beta1/pipelines/{pipeline_id}/versions",
        "pipeline_service_create_pipeline_version",
        "Create a pipeline version"
    ),
    route!(
        "get",
        "/apis/v2beta1/pipelines/{pipeline_id}/versions",
        "pipeline_service_list_pipeline_versions",
        "List a pipeline's versions",
        LIST
    ),
    route!(
        "get",
        "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}",
        "pipeline_service_get_pipeline_version",
        "Get a pipeline version"
    ),
    route!(
        "delete",
        "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}",
        "pipeline_service_delete_pipeline_version",
        "Delete a pipeline version"
    ),
    route!(
        "post",
        "/apis/v2beta1/runs",
        "run_service_create_run",
        "Create and start a run"
    ),
    route!(
        "get",
        "/apis/v2beta1/runs",
        "run_service_list_runs",
        "List runs",
        LIST_IN_EXPERIMENT
    ),
    route!(
        "get",
        "/apis/v2beta1/runs/{run_id}",
        "run_service_get_run",
        "Get a run with its task details"
    ),
    route!(
        "delete",
        "/apis/v2beta1/runs/{run_id}",
        "run_service_delete_run",
        "Delete a run and its files"
    ),
    route!(
        "post",
        "/apis/v2beta1/runs/{run_id}:terminate",
        "run_service_terminate_run",
        "Cancel a running run"
    ),
    route!(
        "post",
        "/apis/v2beta1/runs/{run_id}:retry",
        "run_service_retry_run",
        "Rerun a failed run's failed tasks"
    ),
    route!(
        "post",
        "/apis/v2beta1/runs/{run_id}:archive",
        "run_service_archive_run",
        "Archive a run"
    ),
    route!(
        "post",
        "/apis/v2beta1/runs/{run_id}:unarchive",
        "run_service_unarchive_run",
        "Unarchive a run"
    ),
    route!(
        "get",
        "/apis/v2beta1/runs/{run_id}/nodes/{node_id}/artifacts/{artifact_name}:read",
        "run_service_read_artifact",
        "Read a task's output artifact ({\"data\": base64}; directories as tar)"
    ),
    route!(
        "get",
        "/apis/v1alpha1/runs/{run_id}/nodes/{node_id}/log",
        "read_run_log",
        "A task's log as text, streamed while it runs with `follow=true`",
        &["follow"]
    ),
    route!(
        "get",
        "/apis/v1alpha1/runs/{run_id}/graph",
        "get_run_graph",
        "kfbox: the run's tasks as nested nodes with states, and the edges between them"
    ),
    route!(
        "get",
        "/apis/v1alpha1/pipelines/{pipeline_id}/versions/{version_id}/graph",
        "get_pipeline_version_graph",
        "kfbox: a pipeline version's graph before it runs"
    ),
    route!(
        "get",
        "/apis/v1alpha1/runs/{run_id}/artifacts",
        "list_run_artifacts",
        "kfbox: every output artifact of the run's tasks"
    ),
    route!(
        "get",
        "/apis/v1alpha1/artifacts/{artifact_id}",
        "get_artifact",
        "kfbox: an artifact with its lineage (producers, their inputs, consumers)"
    ),
    route!(
        "get",
        "/apis/v1alpha1/artifacts/{artifact_id}/content",
        "read_artifact_content",
        "kfbox: an artifact's bytes (a directory as tar); `limit` bytes at most, `download=true` as a file",
        &["download", "limit"]
    ),
    route!(
        "post",
        "/apis/v2beta1/recurringruns",
        "recurring_run_service_create_recurring_run",
        "Create a recurring run"
    ),
    route!(
        "get",
        "/apis/v2beta1/recurringruns",
        "recurring_run_service_list_recurring_runs",
        "List recurring runs",
        LIST_IN_EXPERIMENT
    ),
    route!(
        "get",
        "/apis/v2beta1/recurringruns/{recurring_run_id}",
        "recurring_run_service_get_recurring_run",
        "Get a recurring run"
    ),
    route!(
        "delete",
        "/apis/v2beta1/recurringruns/{recurring_run_id}",
        "recurring_run_service_delete_recurring_run",
        "Delete a recurring run"
    ),
    route!(
        "post",
        "/apis/v2beta1/recurringruns/{recurring_run_id}:enable",
        "recurring_run_service_enable_recurring_run",
        "Enable a recurring run"
    ),
    route!(
        "post",
        "/apis/v2beta1/recurringruns/{recurring_run_id}:disable",
        "recurring_run_service_disable_recurring_run",
        "Disable a recurring run"
    ),
];

/// Path parameters of a path template, in order.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(route.query.iter().map(|name| {
        json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}})
    }));
    let mut op = json!({
        "operationId": route.operation,
        "summary": route.summary,
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
            "default": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}
        }
    });
    if route.method == "post" {
        let content = if route.path.ends_with("/upload") || route.path.ends_with("/upload_version")
        {
            json!({"multipart/form-data": {"schema": {"type": "object", "required": ["uploadfile"], "properties": {"uploadfile": {"type": "string", "format": "binary"}}}}})
        } else {
            json!({"application/json": {"schema": {"type": "object"}}})
        };
        op["requestBody"] = json!({"required": !route.path.contains(':'), "content": content});
    }
    op
}

pub fn document_value() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "kfbox: Kubeflow Pipelines API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Kubeflow Pipelines v2beta1 REST API as kfbox serves it locally. Resources use the upstream field names; see https://www.kubeflow.org/docs/components/pipelines/reference/api/kubeflow-pipeline-api-spec/"
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Status": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "integer", "description": "gRPC status code"},
                        "message": {"type": "string"},
                        "error": {"type": "string", "description": "the message again, for v1 clients"},
                        "details": {"type": "array", "items": {"type": "object"}}
                    }
                }
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "needed when kfbox listens beyond loopback"}
            }
        }
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(document_value())
}
