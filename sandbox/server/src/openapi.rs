//! The API's OpenAPI document, made from the table of routes this server answers (`routes.rs`,
//! the same table the router is built from) and from the
//! types that serialise its bodies: every request and response schema is derived from the Rust
//! type the handler reads or writes (`utoipa::ToSchema`), so the document cannot drift from the
//! JSON. Tests check the table against the router (every entry answers), against the `kfp`
//! SDK's generated client (every path it calls is here), and with schemathesis (every answer
//! matches its schema).

use std::borrow::Cow;
use std::sync::Arc;

use axum::routing::MethodRouter;
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
use crate::state::Server;
use crate::views::{ArtifactLineage, RunArtifacts, RunValues};

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
    /// What answers it (custom methods of one resource share their resource's handler).
    pub handler: fn() -> MethodRouter<Arc<Server>>,
}

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
    RunValues,
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

/// The OpenAPI document of `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for route in routes {
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
