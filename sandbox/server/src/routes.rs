//! The route table: every API route with its documentation and its handler. The router
//! (`router.rs`) and the OpenAPI document (`openapi.rs`) are both made from it, so a route
//! cannot answer without being documented, nor be documented without answering.

use axum::routing::{delete, get, post};
use axum::Json;
use serde_json::Value;
use utoipa::ToSchema;

use crate::experiments::{self, NewExperiment};
use crate::files::{self, ArtifactData};
use crate::graph::Graph;
use crate::lab::LabStatus;
use crate::model::{
    Empty, Experiment, Healthz, ListExperiments, ListPipelineVersions, ListPipelines,
    ListRecurringRuns, ListRuns, Pipeline, PipelineVersion, RecurringRun, RecurringRunRequest, Run,
};
use crate::openapi::{self, Answer, Body, Query, Route};
use crate::pipelines::{self, PipelineAndVersion, PipelineBody, VersionBody};
use crate::recurring;
use crate::runs::{self, RunRequest};
use crate::views::{self, ArtifactLineage, RunArtifacts, RunValues};

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
    ($handler:expr, $method:literal, $path:literal, $operation:literal, $summary:literal, $answer:expr) => {
        route!(
            $handler,
            $method,
            $path,
            $operation,
            $summary,
            $answer,
            Body::None,
            &[]
        )
    };
    ($handler:expr, $method:literal, $path:literal, $operation:literal, $summary:literal, $answer:expr, $body:expr) => {
        route!(
            $handler,
            $method,
            $path,
            $operation,
            $summary,
            $answer,
            $body,
            &[]
        )
    };
    ($handler:expr, $method:literal, $path:literal, $operation:literal, $summary:literal, $answer:expr, $body:expr, $query:expr) => {
        Route {
            method: $method,
            path: $path,
            operation: $operation,
            summary: $summary,
            query: $query,
            body: $body,
            answer: $answer,
            handler: $handler,
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
    route!(|| get(healthz), "get", "/apis/v2beta1/healthz", "healthz_service_get_healthz", "Whether the server is up", schema!(Healthz)),
    route!(|| get(openapi_document), "get", "/apis/v2beta1/openapi.json", "openapi", "This document", Answer::Json(|| "OpenApiDocument".into())),
    route!(|| post(experiments::create), "post", "/apis/v2beta1/experiments", "experiment_service_create_experiment", "Create an experiment", schema!(Experiment), body!(NewExperiment)),
    route!(|| get(experiments::list), "get", "/apis/v2beta1/experiments", "experiment_service_list_experiments", "List experiments", schema!(ListExperiments), Body::None, LIST),
    route!(|| get(experiments::read), "get", "/apis/v2beta1/experiments/{experiment_id}", "experiment_service_get_experiment", "Get an experiment", schema!(Experiment)),
    route!(|| delete(experiments::delete), "delete", "/apis/v2beta1/experiments/{experiment_id}", "experiment_service_delete_experiment", "Delete an experiment", schema!(Empty)),
    route!(|| post(experiments::action), "post", "/apis/v2beta1/experiments/{experiment_id}:archive", "experiment_service_archive_experiment", "Archive an experiment and its runs", schema!(Empty)),
    route!(|| post(experiments::action), "post", "/apis/v2beta1/experiments/{experiment_id}:unarchive", "experiment_service_unarchive_experiment", "Unarchive an experiment", schema!(Empty)),
    route!(|| post(pipelines::create), "post", "/apis/v2beta1/pipelines", "pipeline_service_create_pipeline", "Create a pipeline without versions", schema!(Pipeline), body!(PipelineBody)),
    route!(|| get(pipelines::list), "get", "/apis/v2beta1/pipelines", "pipeline_service_list_pipelines", "List pipelines", schema!(ListPipelines), Body::None, LIST),
    route!(|| post(pipelines::create_with_version), "post", "/apis/v2beta1/pipelines/create", "pipeline_service_create_pipeline_and_version", "Create a pipeline and its first version", schema!(Pipeline), body!(PipelineAndVersion)),
    route!(|| post(pipelines::upload), "post", "/apis/v2beta1/pipelines/upload", "upload_pipeline", "Upload a compiled pipeline (multipart `uploadfile`)", schema!(Pipeline), Body::Upload, &[text("name"), text("display_name"), text("description"), text("namespace")]),
    route!(|| post(pipelines::upload_version), "post", "/apis/v2beta1/pipelines/upload_version", "upload_pipeline_version", "Upload a new version (multipart `uploadfile`)", schema!(PipelineVersion), Body::Upload, &[text("pipelineid"), text("name"), text("display_name"), text("description")]),
    route!(|| get(pipelines::read_by_name), "get", "/apis/v2beta1/pipelines/names/{name}", "pipeline_service_get_pipeline_by_name", "Get a pipeline by name", schema!(Pipeline)),
    route!(|| get(pipelines::read), "get", "/apis/v2beta1/pipelines/{pipeline_id}", "pipeline_service_get_pipeline", "Get a pipeline", schema!(Pipeline)),
    route!(|| delete(pipelines::delete), "delete", "/apis/v2beta1/pipelines/{pipeline_id}", "pipeline_service_delete_pipeline", "Delete a pipeline (with `cascade=true`, its versions too)", schema!(Empty), Body::None, &[Query { name: "cascade", schema: r#"{"type": "boolean"}"# }]),
    route!(|| post(pipelines::create_version), "post", "/apis/v2beta1/pipelines/{pipeline_id}/versions", "pipeline_service_create_pipeline_version", "Create a pipeline version", schema!(PipelineVersion), body!(VersionBody)),
    route!(|| get(pipelines::list_versions), "get", "/apis/v2beta1/pipelines/{pipeline_id}/versions", "pipeline_service_list_pipeline_versions", "List a pipeline's versions", schema!(ListPipelineVersions), Body::None, LIST),
    route!(|| get(pipelines::read_version), "get", "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}", "pipeline_service_get_pipeline_version", "Get a pipeline version", schema!(PipelineVersion)),
    route!(|| delete(pipelines::delete_version), "delete", "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}", "pipeline_service_delete_pipeline_version", "Delete a pipeline version", schema!(Empty)),
    route!(|| post(runs::create), "post", "/apis/v2beta1/runs", "run_service_create_run", "Create and start a run", schema!(Run), body!(RunRequest)),
    route!(|| get(runs::list), "get", "/apis/v2beta1/runs", "run_service_list_runs", "List runs", schema!(ListRuns), Body::None, LIST_IN_EXPERIMENT),
    route!(|| get(runs::read), "get", "/apis/v2beta1/runs/{run_id}", "run_service_get_run", "Get a run with its task details", schema!(Run)),
    route!(|| delete(runs::delete), "delete", "/apis/v2beta1/runs/{run_id}", "run_service_delete_run", "Delete a run and its files", schema!(Empty)),
    route!(|| post(runs::action), "post", "/apis/v2beta1/runs/{run_id}:terminate", "run_service_terminate_run", "Cancel a running run", schema!(Empty)),
    route!(|| post(runs::action), "post", "/apis/v2beta1/runs/{run_id}:retry", "run_service_retry_run", "Rerun a failed run's failed tasks", schema!(Empty)),
    route!(|| post(runs::action), "post", "/apis/v2beta1/runs/{run_id}:archive", "run_service_archive_run", "Archive a run", schema!(Empty)),
    route!(|| post(runs::action), "post", "/apis/v2beta1/runs/{run_id}:unarchive", "run_service_unarchive_run", "Unarchive a run", schema!(Empty)),
    route!(|| get(files::read_artifact), "get", "/apis/v2beta1/runs/{run_id}/nodes/{node_id}/artifacts/{artifact_name}:read", "run_service_read_artifact", "Read a task's output artifact ({\"data\": base64}; directories as tar)", schema!(ArtifactData)),
    route!(|| get(files::read_log), "get", "/apis/v1alpha1/runs/{run_id}/nodes/{node_id}/log", "read_run_log", "A task's log as text, streamed while it runs with `follow=true`; `component_only=true` leaves out the SDK executor's and kfbox's diagnostic lines", Answer::Text, Body::None, &[Query { name: "follow", schema: r#"{"type": "boolean"}"# }, Query { name: "component_only", schema: r#"{"type": "boolean"}"# }]),
    route!(|| get(views::run_graph), "get", "/apis/v1alpha1/runs/{run_id}/graph", "get_run_graph", "kfbox: the run's tasks as nested nodes with states, and the edges between them; a loop of more than 40 iterations holds none of them (its node counts them by state) unless `loop` names it: then one page of 50 of its iterations, from `offset`, of `state` only when given", schema!(Graph), Body::None, &[Query { name: "loop", schema: r#"{"type": "string"}"# }, Query { name: "offset", schema: r#"{"type": "integer", "minimum": 0}"# }, Query { name: "state", schema: r#"{"type": "string"}"# }]),
    route!(|| get(views::version_graph), "get", "/apis/v1alpha1/pipelines/{pipeline_id}/versions/{version_id}/graph", "get_pipeline_version_graph", "kfbox: a pipeline version's graph before it runs", schema!(Graph)),
    route!(|| get(views::run_artifacts), "get", "/apis/v1alpha1/runs/{run_id}/artifacts", "list_run_artifacts", "kfbox: every output artifact of the run's tasks", schema!(RunArtifacts)),
    route!(|| get(views::run_values), "get", "/apis/v1alpha1/run-values", "list_run_values", "kfbox: the names runs have parameter and metric values under, and the values of the runs in `run_ids` (comma-separated, at most 200)", schema!(RunValues), Body::None, &[Query { name: "run_ids", schema: r#"{"type": "string"}"# }]),
    route!(|| get(views::lab_status), "get", "/apis/v1alpha1/lab", "get_lab", "kfbox: JupyterLab beside this server: off, starting (with progress), ready (with its address) or failed (with the reason and log)", schema!(LabStatus)),
    route!(|| get(views::artifact), "get", "/apis/v1alpha1/artifacts/{artifact_id}", "get_artifact", "kfbox: an artifact with its lineage (producers, their inputs, consumers)", schema!(ArtifactLineage)),
    route!(|| get(views::artifact_content), "get", "/apis/v1alpha1/artifacts/{artifact_id}/content", "read_artifact_content", "kfbox: an artifact's bytes (a directory as tar); `limit` bytes at most, `download=true` as a file", Answer::Bytes, Body::None, &[Query { name: "download", schema: r#"{"type": "boolean"}"# }, Query { name: "limit", schema: r#"{"type": "integer", "format": "int64", "minimum": 0}"# }]),
    route!(|| post(recurring::create), "post", "/apis/v2beta1/recurringruns", "recurring_run_service_create_recurring_run", "Create a recurring run", schema!(RecurringRun), body!(RecurringRunRequest)),
    route!(|| get(recurring::list), "get", "/apis/v2beta1/recurringruns", "recurring_run_service_list_recurring_runs", "List recurring runs", schema!(ListRecurringRuns), Body::None, LIST_IN_EXPERIMENT),
    route!(|| get(recurring::read), "get", "/apis/v2beta1/recurringruns/{recurring_run_id}", "recurring_run_service_get_recurring_run", "Get a recurring run", schema!(RecurringRun)),
    route!(|| delete(recurring::delete), "delete", "/apis/v2beta1/recurringruns/{recurring_run_id}", "recurring_run_service_delete_recurring_run", "Delete a recurring run", schema!(Empty)),
    route!(|| post(recurring::action), "post", "/apis/v2beta1/recurringruns/{recurring_run_id}:enable", "recurring_run_service_enable_recurring_run", "Enable a recurring run", schema!(Empty)),
    route!(|| post(recurring::action), "post", "/apis/v2beta1/recurringruns/{recurring_run_id}:disable", "recurring_run_service_disable_recurring_run", "Disable a recurring run", schema!(Empty)),
];

async fn healthz() -> Json<Healthz> {
    Json(Healthz {
        commit_sha: env!("CARGO_PKG_VERSION").into(),
        tag_name: concat!("kfbox-", env!("CARGO_PKG_VERSION")).into(),
        multi_user: false,
        pipeline_store: "database".into(),
    })
}

/// A plain future, not an `async fn`: the table names this handler and it reads the table,
/// which an opaque future type cannot express.
fn openapi_document() -> std::future::Ready<Json<Value>> {
    std::future::ready(Json(openapi::document(ROUTES)))
}
