//! `/apis/v2beta1/experiments`: create, get, list, archive, unarchive, delete.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::filter::{ListParams, Params};
use crate::model::{self, Empty, Experiment, ListExperiments};
use crate::Server;

pub(crate) fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route("/apis/v2beta1/experiments", get(list).post(create))
        .route(
            "/apis/v2beta1/experiments/{id}",
            get(read).delete(delete).post(action),
        )
}

/// A JSON request body, refused with the API's error shape when it does not parse.
pub(crate) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    let invalid =
        |e: String| ApiError::invalid(format!("the request body is not a valid {what}: {e}"));
    let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid("expected a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// `{id}:verb` as the API writes custom methods.
pub(crate) fn split_action(id: &str) -> ApiResult<(&str, &str)> {
    id.split_once(':').ok_or_else(|| {
        ApiError::not_found(format!(
            "no API route answers POST on `{id}`; custom methods are `ID:verb`"
        ))
    })
}

/// An experiment as clients create it.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NewExperiment {
    #[schema(min_length = 1)]
    display_name: String,
    #[serde(default)]
    description: Option<String>,
}

async fn create(
    State(server): State<Arc<Server>>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Experiment>> {
    let new: NewExperiment = body(&bytes, "Experiment")?;
    if new.display_name.is_empty() {
        return Err(ApiError::invalid("experiment.display_name is required"));
    }
    let row = server.store.create_experiment(
        &new.display_name,
        new.description.as_deref().unwrap_or_default(),
    )?;
    Ok(Json(model::experiment(&row)))
}

async fn read(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(model::experiment(&server.store.experiment(&id)?)))
}

async fn list(
    State(server): State<Arc<Server>>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<ListExperiments>> {
    let query = params.query()?;
    let page = server.store.list_experiments(&query)?;
    Ok(Json(ListExperiments::of(page, model::experiment)))
}

async fn action(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    let (id, verb) = split_action(&id)?;
    match verb {
        "archive" => server.store.set_experiment_storage(id, true)?,
        "unarchive" => server.store.set_experiment_storage(id, false)?,
        other => {
            return Err(ApiError::not_found(format!(
                "experiments have no method `{other}` (archive, unarchive)"
            )))
        }
    }
    Ok(Json(Empty {}))
}

async fn delete(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    if id == server.default_experiment {
        return Err(ApiError::precondition(
            "the Default experiment holds runs created without one; it cannot be deleted",
        ));
    }
    server.store.delete_experiment(&id)?;
    Ok(Json(Empty {}))
}
