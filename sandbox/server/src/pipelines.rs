//! `/apis/v2beta1/pipelines`: pipelines and their versions, created from JSON or uploaded as
//! compiled files (multipart field `uploadfile`).

use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::Json;
use kfbox_spec::{parse_documents, pipeline_from_documents, LoadedPipeline};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::filter::{ListParams, Params};
use crate::model::{self, Empty, ListPipelineVersions, ListPipelines, Pipeline, PipelineVersion};
use crate::request::body;
use crate::state::Server;

/// Parse and validate a compiled pipeline (YAML or JSON, with or without platform spec) and
/// return it as the JSON the API stores and returns: the PipelineSpec, or the
/// `{"pipeline_spec", "platform_spec"}` wrapper when there are Kubernetes settings.
pub(crate) fn spec_json(text: &str, label: &str) -> ApiResult<(String, LoadedPipeline)> {
    let documents = parse_documents(std::path::Path::new(label), text).map_err(invalid)?;
    spec_from_documents(documents, label)
}

/// The same for a spec that came as JSON in a request.
pub(crate) fn spec_value(value: Value, label: &str) -> ApiResult<(String, LoadedPipeline)> {
    spec_from_documents(vec![value], label)
}

fn spec_from_documents(documents: Vec<Value>, label: &str) -> ApiResult<(String, LoadedPipeline)> {
    let loaded =
        pipeline_from_documents(std::path::Path::new(label), documents).map_err(invalid)?;
    Ok((loaded.source.to_string(), loaded))
}

fn invalid(error: kfbox_spec::LoadError) -> ApiError {
    ApiError::invalid(error.to_string())
}

fn spec_from_value(value: &Value, label: &str) -> ApiResult<String> {
    if value.is_null() {
        return Err(ApiError::invalid(format!(
            "{label}: pipeline_spec is required (kfbox cannot fetch package_url)"
        )));
    }
    spec_value(value.clone(), label).map(|(json, _)| json)
}

/// A pipeline as clients create it: `name` or `display_name` (each defaults to the other).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct PipelineBody {
    display_name: Option<String>,
    name: Option<String>,
    description: Option<String>,
}

/// A pipeline version as clients create it, with its compiled spec.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub(crate) struct VersionBody {
    display_name: Option<String>,
    name: Option<String>,
    description: Option<String>,
    /// The compiled PipelineSpec (or the `{"pipeline_spec", "platform_spec"}` wrapper).
    #[serde(default)]
    #[schema(value_type = Object)]
    pipeline_spec: Value,
}

/// The name and display name: each defaults to the other.
fn names(name: Option<String>, display: Option<String>, what: &str) -> ApiResult<(String, String)> {
    let name = name.filter(|n| !n.trim().is_empty());
    let display = display.filter(|n| !n.trim().is_empty());
    match (name, display) {
        (Some(n), Some(d)) => Ok((n, d)),
        (Some(n), None) => Ok((n.clone(), n)),
        (None, Some(d)) => Ok((d.clone(), d)),
        (None, None) => Err(ApiError::invalid(format!(
            "{what}: name or display_name is required"
        ))),
    }
}

pub(crate) async fn create(
    State(server): State<Arc<Server>>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Pipeline>> {
    let pipeline: PipelineBody = body(&bytes, "Pipeline")?;
    let (name, display) = names(pipeline.name, pipeline.display_name, "pipeline")?;
    let (row, _) = server.store().create_pipeline(
        &name,
        &display,
        pipeline.description.as_deref().unwrap_or_default(),
        None,
        "",
    )?;
    Ok(Json(model::pipeline(&row)))
}

/// A pipeline and its first version.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct PipelineAndVersion {
    pipeline: Option<PipelineBody>,
    pipeline_version: Option<VersionBody>,
}

pub(crate) async fn create_with_version(
    State(server): State<Arc<Server>>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Pipeline>> {
    let both: PipelineAndVersion = body(&bytes, "CreatePipelineAndVersionRequest")?;
    let pipeline = both.pipeline.unwrap_or_default();
    let version = both
        .pipeline_version
        .ok_or_else(|| ApiError::invalid("pipeline_version is required"))?;
    let (name, display) = names(pipeline.name, pipeline.display_name, "pipeline")?;
    let spec = spec_from_value(&version.pipeline_spec, "pipeline_version.pipeline_spec")?;
    let (version_name, version_display) = names(
        version.name.or(Some(name.clone())),
        version.display_name,
        "pipeline_version",
    )?;
    let (row, _) = server.store().create_pipeline(
        &name,
        &display,
        pipeline.description.as_deref().unwrap_or_default(),
        Some((
            &version_name,
            &version_display,
            version.description.as_deref().unwrap_or_default(),
        )),
        &spec,
    )?;
    Ok(Json(model::pipeline(&row)))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct UploadParams {
    name: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    pipelineid: Option<String>,
}

/// The uploaded file: its name and text.
pub(crate) async fn uploaded_file(mut multipart: Multipart) -> ApiResult<(String, String)> {
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::invalid(format!("bad multipart body: {}", e.body_text())))?
    {
        if field.name() == Some("uploadfile") {
            let file_name = field.file_name().unwrap_or("pipeline.yaml").to_owned();
            let bytes = field.bytes().await.map_err(|e| {
                ApiError::invalid(format!("cannot read `uploadfile`: {}", e.body_text()))
            })?;
            if bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(b"PK\x03\x04") {
                return Err(ApiError::invalid(format!(
                    "{file_name}: archives are not accepted; upload the compiled YAML or JSON (kfp.compiler.Compiler().compile(..., 'pipeline.yaml'))"
                )));
            }
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::invalid(format!("{file_name}: not UTF-8 text")))?;
            return Ok((file_name, text));
        }
    }
    Err(ApiError::invalid(
        "the multipart body has no `uploadfile` field holding the compiled pipeline",
    ))
}

pub(crate) async fn upload(
    State(server): State<Arc<Server>>,
    Params(params): Params<UploadParams>,
    multipart: Multipart,
) -> ApiResult<Json<Pipeline>> {
    let (file_name, text) = uploaded_file(multipart).await?;
    let (spec, loaded) = spec_json(&text, &file_name)?;
    let (name, display) = names(
        params.name.or(Some(loaded.spec.pipeline_info.name.clone())),
        params.display_name,
        "pipeline",
    )?;
    let description = params.description.unwrap_or_default();
    let (row, _) = server.store().create_pipeline(
        &name,
        &display,
        &description,
        Some((&name, &display, &description)),
        &spec,
    )?;
    Ok(Json(model::pipeline(&row)))
}

pub(crate) async fn upload_version(
    State(server): State<Arc<Server>>,
    Params(params): Params<UploadParams>,
    multipart: Multipart,
) -> ApiResult<Json<PipelineVersion>> {
    let pipeline_id = params
        .pipelineid
        .ok_or_else(|| ApiError::invalid("query parameter `pipelineid` is required"))?;
    let (file_name, text) = uploaded_file(multipart).await?;
    let (spec, _) = spec_json(&text, &file_name)?;
    let (name, display) = names(params.name, params.display_name, "pipeline version")?;
    let row = server.store().create_pipeline_version(
        &pipeline_id,
        &name,
        &display,
        params.description.as_deref().unwrap_or_default(),
        &spec,
    )?;
    Ok(Json(model::pipeline_version(&row)))
}

pub(crate) async fn read(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Pipeline>> {
    Ok(Json(model::pipeline(&server.store().pipeline(&id)?)))
}

pub(crate) async fn read_by_name(
    State(server): State<Arc<Server>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Pipeline>> {
    Ok(Json(model::pipeline(
        &server.store().pipeline_by_name(&name)?,
    )))
}

pub(crate) async fn list(
    State(server): State<Arc<Server>>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<ListPipelines>> {
    let query = params.query()?;
    let page = server.store().list_pipelines(&query)?;
    Ok(Json(ListPipelines::of(page, model::pipeline)))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeleteParams {
    cascade: Option<bool>,
}

pub(crate) async fn delete(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    Params(params): Params<DeleteParams>,
) -> ApiResult<Json<Empty>> {
    server
        .store()
        .delete_pipeline(&id, params.cascade.unwrap_or(false))?;
    Ok(Json(Empty {}))
}

pub(crate) async fn create_version(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<PipelineVersion>> {
    let version: VersionBody = body(&bytes, "PipelineVersion")?;
    let spec = spec_from_value(&version.pipeline_spec, "pipeline_version.pipeline_spec")?;
    let (name, display) = names(version.name, version.display_name, "pipeline version")?;
    let row = server.store().create_pipeline_version(
        &id,
        &name,
        &display,
        version.description.as_deref().unwrap_or_default(),
        &spec,
    )?;
    Ok(Json(model::pipeline_version(&row)))
}

pub(crate) async fn list_versions(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<ListPipelineVersions>> {
    let query = params.query()?;
    let page = server.store().list_pipeline_versions(&id, &query)?;
    Ok(Json(ListPipelineVersions::of(
        page,
        model::pipeline_version,
    )))
}

pub(crate) async fn read_version(
    State(server): State<Arc<Server>>,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Json<PipelineVersion>> {
    let row = version_of(&server, &id, &version)?;
    Ok(Json(model::pipeline_version(&row)))
}

/// A version, if it belongs to pipeline `id`.
fn version_of(
    server: &Server,
    id: &str,
    version: &str,
) -> ApiResult<kfbox_store::PipelineVersionRow> {
    let row = server.store().pipeline_version(version)?;
    if row.pipeline_id != id {
        return Err(ApiError::not_found(format!(
            "pipeline {id} has no version {version}"
        )));
    }
    Ok(row)
}

pub(crate) async fn delete_version(
    State(server): State<Arc<Server>>,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Json<Empty>> {
    version_of(&server, &id, &version)?;
    server.store().delete_pipeline_version(&version)?;
    Ok(Json(Empty {}))
}
