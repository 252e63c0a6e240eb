//! `/apis/v2beta1/experiments`: create, get, list, archive, unarchive, delete.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::filter::{ListParams, Params};
use crate::model::{self, Empty, Experiment, ListExperiments};
use crate::request::{body, split_action};
use crate::state::Server;

/// An experiment as clients create it.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NewExperiment {
    #[schema(min_length = 1)]
    display_name: String,
    #[serde(default)]
    description: Option<String>,
}

pub(crate) async fn create(
    State(server): State<Arc<Server>>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Experiment>> {
    let new: NewExperiment = body(&bytes, "Experiment")?;
    if new.display_name.is_empty() {
        return Err(ApiError::invalid("experiment.display_name is required"));
    }
    let row = server.store().create_experiment(
        &new.display_name,
        new.description.as_deref().unwrap_or_default(),
    )?;
    Ok(Json(model::experiment(&row)))
}

pub(crate) async fn read(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Experiment>> {
    Ok(Json(model::experiment(&server.store().experiment(&id)?)))
}

pub(crate) async fn list(
    State(server): State<Arc<Server>>,
    Params(params): Params<ListParams>,
) -> ApiResult<Json<ListExperiments>> {
    let query = params.query()?;
    let page = server.store().list_experiments(&query)?;
    Ok(Json(ListExperiments::of(page, model::experiment)))
}

pub(crate) async fn action(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    let (id, verb) = split_action(&id)?;
    match verb {
        "archive" => server.store().set_experiment_storage(id, true)?,
        "unarchive" => server.store().set_experiment_storage(id, false)?,
        other => {
            return Err(ApiError::not_found(format!(
                "experiments have no method `{other}` (archive, unarchive)"
            )))
        }
    }
    Ok(Json(Empty {}))
}

pub(crate) async fn delete(
    State(server): State<Arc<Server>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Empty>> {
    if id == server.default_experiment {
        return Err(ApiError::precondition(
            "the Default experiment holds runs created without one; it cannot be deleted",
        ));
    }
    server.store().delete_experiment(&id)?;
    Ok(Json(Empty {}))
}
