//! The API's OpenAPI document, made from the table of routes this server answers and from the
//! types that serialise its bodies: every request and response schema is derived from the Rust
//! type the handler reads or writes (`utoipa::ToSchema`), so the document cannot drift from the
//! JSON. Tests check the table against the router (every entry answers), against the `kfp`
//! SDK's generated client (every path it calls is here), and with schemathesis (every answer
//! matches its schema).

use std::borrow::Cow;

use axum::Json;
use serde_json::{json, Map, Value};
use utoipa::{OpenApi, ToSchema};

use crate::experiments::NewExperiment;
use crate::files::ArtifactData;
use crate::graph::Graph;
use crate::lab::LabStatus;
use crate::model::{
    Empty, Experiment, Healthz, ListExperiments, ListPipelineVersions, ListPipelines,
    ListRecurringRuns, ListRuns, Pipeline, PipelineVersion, RecurringRun, RecurringRunRequest, Run,
    Status,
};
use crate::pipelines::{PipelineAndVersion, PipelineBody, VersionBody};
use crate::runs::RunRequest;
use crate::views::{ArtifactLineage, RunArtifacts};

/// The name of a schema in `components.schemas`.
type SchemaName = fn() -> Cow<'static, str>;

/// What a request carries.
pub enum Body {
    None,
    /// JSON of this type.
    Json(SchemaName),
    /// A compiled pipeline file in the multipart field `uploadfile`.
    Upload,
}

/// What a successful answer carries.
pub enum Answer {
    Json(SchemaName),
    /// `text/plain` (a task's log).
    Text,
    /// `application/octet-stream` (an artifact's bytes).
    Bytes,
}

/// A query parameter and its type.
#[derive(Clone, Copy)]
pub struct Query {
    pub name: &'static str,
    pub schema: &'static str,
}

/// One route: method, path (custom methods as `{id}:verb`, as upstream), operation id,
/// summary, query parameters, body and answer.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation: &'static str,
    pub summary: &'static str,
    pub query: &'static [Query],
    pub body: Body,
    pub answer: Answer,
}

const fn text(name: &'static str) -> Query {
    Query {
        name,
        schema: r#"{"type": "string"}"#,
    }
}

const LIST: &[Query] = &[
    text("page_token"),
    Query {
        name: "page_size",
        schema: r#"{"type": "integer", "format": "int32", "minimum": 0, "maximum": 2147483647}"#,
    },
    Query {
        name: "sort_by",
        schema: r#"{"type": "string", "description": "a field, then optionally `asc` or `desc`, e.g. `created_at desc`"}"#,
    },
    Query {
        name: "filter",
        schema: r#"{"type": "string", "description": "a `Filter` as JSON: {\"predicates\": [{\"key\", \"operation\", \"string_value\" ...}]}"}"#,
    },
    text("namespace"),
];
const LIST_IN_EXPERIMENT: &[Query] = &[
    LIST[0],
    LIST[1],
    LIST[2],
    LIST[3],
    LIST[4],
    text("experiment_id"),
];

macro_rules! route {
    ($method:literal, $path:literal, $operation:literal, $summary:literal, $answer:expr) => {
        route!(
            $method,
            $path,
            $operation,
            $summary,
            $answer,
            Body::None,
            &[]
        )
    };
    ($method:literal, $path:literal, $operation:literal, $summary:literal, $answer:expr, $body:expr) => {
        route!($method, $path, $operation, $summary, $answer, $body, &[])
    };
    ($method:literal, $path:literal, $operation:literal, $summary:literal, $answer:expr, $body:expr, $query:expr) => {
        Route {
            method: $method,
            path: $path,
            operation: $operation,
            summary: $summary,
            query: $query,
            body: $body,
            answer: $answer,
        }
    };
}

/// The schema of a JSON body or answer of type `T`.
macro_rules! schema {
    ($t:ty) => {
        Answer::Json(<$t as ToSchema>::name)
    };
}

/// A JSON request body of type `T`.
macro_rules! body {
    ($t:ty) => {
        Body::Json(<$t as ToSchema>::name)
    };
}

pub const ROUTES: &[Route] = &[
    route!("get", "/apis/v2beta1/healthz", "healthz_service_get_healthz", "Whether the server is up", schema!(Healthz)),
    route!("get", "/apis/v2beta1/openapi.json", "openapi", "This document", Answer::Json(|| "OpenApiDocument".into())),
    route!("post", "/apis/v2beta1/experiments", "experiment_service_create_experiment", "Create an experiment", schema!(Experiment), body!(NewExperiment)),
    route!("get", "/apis/v2beta1/experiments", "experiment_service_list_experiments", "List experiments", schema!(ListExperiments), Body::None, LIST),
    route!("get", "/apis/v2beta1/experiments/{experiment_id}", "experiment_service_get_experiment", "Get an experiment", schema!(Experiment)),
    route!("delete", "/apis/v2beta1/experiments/{experiment_id}", "experiment_service_delete_experiment", "Delete an experiment", schema!(Empty)),
    route!("post", "/apis/v2beta1/experiments/{experiment_id}:archive", "experiment_service_archive_experiment", "Archive an experiment and its runs", schema!(Empty)),
    route!("post", "/apis/v2beta1/experiments/{experiment_id}:unarchive", "experiment_service_unarchive_experiment", "Unarchive an experiment", schema!(Empty)),
    route!("post", "/apis/v2beta1/pipelines", "pipeline_service_create_pipeline", "Create a pipeline without versions", schema!(Pipeline), body!(PipelineBody)),
    route!("get", "/apis/v2beta1/pipelines", "pipeline_service_list_pipelines", "List pipelines", schema!(ListPipelines), Body::None, LIST),
    route!("post", "/apis/v2beta1/pipelines/create", "pipeline_service_create_pipeline_and_version", "Create a pipeline and its first version", schema!(Pipeline), body!(PipelineAndVersion)),
    route!("post", "/apis/v2beta1/pipelines/upload", "upload_pipeline", "Upload a compiled pipeline (multipart `uploadfile`)", schema!(Pipeline), Body::Upload, &[text("name"), text("display_name"), text("description"), text("namespace")]),
    route!("post", "/apis/v2beta1/pipelines/upload_version", "upload_pipeline_version", "Upload a new version (multipart `uploadfile`)", schema!(PipelineVersion), Body::Upload, &[text("pipelineid"), text("name"), text("display_name"), text("description")]),
    route!("get", "/apis/v2beta1/pipelines/names/{name}", "pipeline_service_get_pipeline_by_name", "Get a pipeline by name", schema!(Pipeline)),
    route!("get", "/apis/v2beta1/pipelines/{pipeline_id}", "pipeline_service_get_pipeline", "Get a pipeline", schema!(Pipeline)),
    route!("delete", "/apis/v2beta1/pipelines/{pipeline_id}", "pipeline_service_delete_pipeline", "Delete a pipeline (with `cascade=true`, its versions too)", schema!(Empty), Body::None, &[Query { name: "cascade", schema: r#"{"type": "boolean"}"# }]),
    route!("post", "/apis/v2beta1/pipelines/{pipeline_id}/versions", "pipeline_service_create_pipeline_version", "Create a pipeline version", schema!(PipelineVersion), body!(VersionBody)),
    route!("get", "/apis/v2beta1/pipelines/{pipeline_id}/versions", "pipeline_service_list_pipeline_versions", "List a pipeline's versions", schema!(ListPipelineVersions), Body::None, LIST),
    route!("get", "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}", "pipeline_service_get_pipeline_version", "Get a pipeline version", schema!(PipelineVersion)),
    route!("delete", "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}", "pipeline_service_delete_pipeline_version", "Delete a pipeline version", schema!(Empty)),
    route!("post", "/apis/v2beta1/runs", "run_service_create_run", "Create and start a run", schema!(Run), body!(RunRequest)),
    route!("get", "/apis/v2beta1/runs", "run_service_list_runs", "List runs", schema!(ListRuns), Body::None, LIST_IN_EXPERIMENT),
    route!("get", "/apis/v2beta1/runs/{run_id}", "run_service_get_run", "Get a run with its task details", schema!(Run)),
    route!("delete", "/apis/v2beta1/runs/{run_id}", "run_service_delete_run", "Delete a run and its files", schema!(Empty)),
    route!("post", "/apis/v2beta1/runs/{run_id}:terminate", "run_service_terminate_run", "Cancel a running run", schema!(Empty)),
    route!("post", "/apis/v2beta1/runs/{run_id}:retry", "run_service_retry_run", "Rerun a failed run's failed tasks", schema!(Empty)),
    route!("post", "/apis/v2beta1/runs/{run_id}:archive", "run_service_archive_run", "Archive a run", schema!(Empty)),
    route!("post", "/apis/v2beta1/runs/{run_id}:unarchive", "run_service_unarchive_run", "Unarchive a run", schema!(Empty)),
    route!("get", "/apis/v2beta1/runs/{run_id}/nodes/{node_id}/artifacts/{artifact_name}:read", "run_service_read_artifact", "Read a task's output artifact ({\"data\": base64}; directories as tar)", schema!(ArtifactData)),
    route!("get", "/apis/v1alpha1/runs/{run_id}/nodes/{node_id}/log", "read_run_log", "A task's log as text, streamed while it runs with `follow=true`", Answer::Text, Body::None, &[Query { name: "follow", schema: r#"{"type": "boolean"}"# }]),
    route!("get", "/apis/v1alpha1/runs/{run_id}/graph", "get_run_graph", "kfbox: the run's tasks as nested nodes with states, and the edges between them", schema!(Graph)),
    route!("get", "/apis/v1alpha1/pipelines/{pipeline_id}/versions/{version_id}/graph", "get_pipeline_version_graph", "kfbox: a pipeline version's graph before it runs", schema!(Graph)),
    route!("get", "/apis/v1alpha1/runs/{run_id}/artifacts", "list_run_artifacts", "kfbox: every output artifact of the run's tasks", schema!(RunArtifacts)),
    route!("get", "/apis/v1alpha1/lab", "get_lab", "kfbox: JupyterLab beside this server: off, starting (with progress), ready (with its address) or failed (with the reason and log)", schema!(LabStatus)),
    route!("get", "/apis/v1alpha1/artifacts/{artifact_id}", "get_artifact", "kfbox: an artifact with its lineage (producers, their inputs, consumers)", schema!(ArtifactLineage)),
    route!("get", "/apis/v1alpha1/artifacts/{artifact_id}/content", "read_artifact_content", "kfbox: an artifact's bytes (a directory as tar); `limit` bytes at most, `download=true` as a file", Answer::Bytes, Body::None, &[Query { name: "download", schema: r#"{"type": "boolean"}"# }, Query { name: "limit", schema: r#"{"type": "integer", "format": "int64", "minimum": 0}"# }]),
    route!("post", "/apis/v2beta1/recurringruns", "recurring_run_service_create_recurring_run", "Create a recurring run", schema!(RecurringRun), body!(RecurringRunRequest)),
    route!("get", "/apis/v2beta1/recurringruns", "recurring_run_service_list_recurring_runs", "List recurring runs", schema!(ListRecurringRuns), Body::None, LIST_IN_EXPERIMENT),
    route!("get", "/apis/v2beta1/recurringruns/{recurring_run_id}", "recurring_run_service_get_recurring_run", "Get a recurring run", schema!(RecurringRun)),
    route!("delete", "/apis/v2beta1/recurringruns/{recurring_run_id}", "recurring_run_service_delete_recurring_run", "Delete a recurring run", schema!(Empty)),
    route!("post", "/apis/v2beta1/recurringruns/{recurring_run_id}:enable", "recurring_run_service_enable_recurring_run", "Enable a recurring run", schema!(Empty)),
    route!("post", "/apis/v2beta1/recurringruns/{recurring_run_id}:disable", "recurring_run_service_disable_recurring_run", "Disable a recurring run", schema!(Empty)),
];

/// Every type a body or an answer is, for `components.schemas` (with the types they use).
#[derive(OpenApi)]
#[openapi(components(schemas(
    Status,
    LabStatus,
    Empty,
    Healthz,
    Experiment,
    NewExperiment,
    ListExperiments,
    Pipeline,
    PipelineBody,
    PipelineAndVersion,
    VersionBody,
    PipelineVersion,
    ListPipelines,
    ListPipelineVersions,
    Run,
    RunRequest,
    ListRuns,
    ArtifactData,
    Graph,
    RunArtifacts,
    ArtifactLineage,
    RecurringRun,
    RecurringRunRequest,
    ListRecurringRuns
)))]
struct Schemas;

/// Path parameters of a path template, in order.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect()
}

/// The schema of a path parameter: ids are opaque strings, artifact ids integers, and task
/// and artifact names what `kfbox_paths::check_name` takes (task paths join names with `/`).
fn path_schema(name: &str) -> Value {
    const NAME: &str = "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,199}";
    match name {
        "artifact_id" => json!({"type": "integer", "format": "int64"}),
        "node_id" => json!({"type": "string", "pattern": format!("^{NAME}(/{NAME})*$")}),
        "artifact_name" => json!({"type": "string", "pattern": format!("^{NAME}$")}),
        _ => json!({"type": "string", "minLength": 1}),
    }
}

fn reference(name: SchemaName) -> Value {
    json!({"$ref": format!("#/components/schemas/{}", name())})
}

fn operation(route: &Route) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_schema(name)}))
        .collect();
    parameters.extend(route.query.iter().map(|query| {
        let schema: Value = serde_json::from_str(query.schema).expect("query schemas are JSON");
        json!({"name": query.name, "in": "query", "required": false, "schema": schema})
    }));
    let content = match &route.answer {
        Answer::Json(name) => json!({"application/json": {"schema": reference(*name)}}),
        Answer::Text => json!({"text/plain": {"schema": {"type": "string"}}}),
        Answer::Bytes => {
            json!({"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}})
        }
    };
    let mut op = json!({
        "operationId": route.operation,
        "summary": route.summary,
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": content},
            "default": {"description": "An error", "content": {"application/json": {"schema": reference(<Status as ToSchema>::name)}}}
        }
    });
    match &route.body {
        Body::None => {}
        Body::Json(name) => {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": reference(*name)}}});
        }
        Body::Upload => {
            op["requestBody"] = json!({"required": true, "content": {"multipart/form-data": {"schema": {
                "type": "object",
                "required": ["uploadfile"],
                "properties": {"uploadfile": {"type": "string", "format": "binary", "description": "the compiled pipeline (YAML or JSON)"}}
            }}}});
        }
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
    let mut schemas =
        serde_json::to_value(Schemas::openapi().components.map(|c| c.schemas)).unwrap_or_default();
    // The document itself is described only as an object.
    schemas["OpenApiDocument"] = json!({"type": "object"});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "kfbox: Kubeflow Pipelines API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Kubeflow Pipelines v2beta1 REST API as kfbox serves it locally. Resources use the upstream field names; see https://www.kubeflow.org/docs/components/pipelines/reference/api/kubeflow-pipeline-api-spec/"
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "needed when kfbox listens beyond loopback"}
            }
        }
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(document_value())
}
