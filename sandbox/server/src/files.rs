//! Reading a task's output artifacts and logs. Names in the request are only looked up in
//! the store, never joined into paths; what the store points at is read only when it lies
//! inside kfbox's run directories.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use kfbox_step::diagnostics::ComponentLines;
use kfbox_store::{props, ExecutionRow};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::filter::Params;
use crate::state::Server;
use kfbox_engine::model::TaskState;
use kfbox_engine::recorded::{execution_state, latest_per_task};

/// Refuse names that try to walk the file system, before anything is looked up: `checked` is
/// the verdict of `kfbox_paths` on `name` (a node id is a task id or a task path, names joined
/// by `/`; an artifact is one name).
fn refuse_unsafe(
    what: &str,
    name: &str,
    checked: Result<(), kfbox_paths::UnsafeName>,
) -> ApiResult<()> {
    checked.map_err(|e| {
        ApiError::invalid(format!(
            "invalid {what} `{}`: names a task or output, not a path ({e})",
            name.escape_default()
        ))
    })
}

/// The task a node id names: its execution id (`task_id`), or its path or name in the run.
fn find_node(server: &Server, run_id: &str, node_id: &str) -> ApiResult<ExecutionRow> {
    refuse_unsafe("node id", node_id, kfbox_paths::check_names(node_id))?;
    let run = server.store().api_run(run_id)?.run;
    let executions = server.store().run_executions(&run)?;
    let tasks = latest_per_task(&executions);
    let found = tasks
        .iter()
        .find(|e| e.id.to_string() == node_id)
        .or_else(|| tasks.iter().find(|e| e.text(props::PATH) == Some(node_id)))
        .or_else(|| {
            tasks
                .iter()
                .find(|e| e.text(props::TASK_NAME) == Some(node_id))
        });
    found.map(|e| (*e).clone()).ok_or_else(|| {
        ApiError::not_found(format!(
            "run {run_id} has no task `{node_id}` (give a task_id from run_details.task_details, or a task path)"
        ))
    })
}

/// A path the store gave, if its real path lies inside the run directories.
pub(crate) fn inside_runs(server: &Server, path: &str) -> ApiResult<PathBuf> {
    use kfbox_paths::Confinement;
    kfbox_paths::resolve_under(&server.options.runs_dir, FsPath::new(path)).map_err(|e| match e {
        Confinement::Missing { .. } => ApiError::not_found(format!("`{path}` is gone from disk")),
        Confinement::Outside { .. } => ApiError::invalid(format!(
            "`{path}` lies outside kfbox's run directories; kfbox serves only files it wrote"
        )),
        Confinement::Resolve { .. } => ApiError::internal(e.to_string()),
    })
}

/// `…/artifacts/{name}:read`: `{"data": base64}` of the file, or of a tar archive of a
/// directory, as the backend answers.
pub(crate) async fn read_artifact(
    State(server): State<Arc<Server>>,
    Path((run_id, node_id, artifact)): Path<(String, String, String)>,
) -> ApiResult<Json<ArtifactData>> {
    let name = artifact.strip_suffix(":read").ok_or_else(|| {
        ApiError::not_found(format!(
            "no API route answers `{artifact}`; artifacts are read at …/artifacts/NAME:read"
        ))
    })?;
    refuse_unsafe("artifact name", name, kfbox_paths::check_name(name))?;
    let task = find_node(&server, &run_id, &node_id)?;
    let artifact_id = task
        .outputs
        .iter()
        .find(|(output, _)| output == name)
        .map(|(_, id)| *id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "task `{node_id}` of run {run_id} has no output artifact `{name}` (it has: {})",
                task.outputs
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let artifact = server.store().artifact(artifact_id)?;
    let (bytes, _) = artifact_bytes(&server, &artifact.uri, None).await?;
    Ok(Json(ArtifactData {
        data: base64::engine::general_purpose::STANDARD.encode(bytes),
    }))
}

/// An artifact's bytes (a directory as a tar archive), base64-encoded, as the backend answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ArtifactData {
    #[schema(format = Byte)]
    pub data: String,
}

/// The bytes of the file an artifact URI names (at most `limit`), or a tar archive of the
/// directory it names; and whether it was a directory.
pub(crate) async fn artifact_bytes(
    server: &Server,
    uri: &str,
    limit: Option<u64>,
) -> ApiResult<(Vec<u8>, bool)> {
    let path = inside_runs(server, uri)?;
    let is_dir = path.is_dir();
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        if is_dir {
            let mut archive = tar::Builder::new(Vec::new());
            // Links are archived as links: one planted in an output directory must not bring
            // the file it points at (a key, a password store) into the answer.
            archive.follow_symlinks(false);
            archive.append_dir_all(".", &path)?;
            return archive.into_inner();
        }
        let mut bytes = Vec::new();
        fs_err::File::open(&path)?
            .take(limit.unwrap_or(u64::MAX))
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("cannot read {uri}: {e}")))?;
    Ok((bytes, is_dir))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogParams {
    follow: Option<bool>,
    /// Only the component's own lines, without the SDK's and kfbox's diagnostics.
    component_only: Option<bool>,
}

/// A task's log as text; with `follow=true`, streamed until the task ends.
pub(crate) async fn read_log(
    State(server): State<Arc<Server>>,
    Path((run_id, node_id)): Path<(String, String)>,
    Params(params): Params<LogParams>,
) -> ApiResult<Response> {
    let mut task = find_node(&server, &run_id, &node_id)?;
    // A cache hit ran nothing; the log is the reused execution's.
    if task.text(props::LOG).is_none() {
        if let Some(reused) = task
            .text(props::CACHED_EXECUTION_ID)
            .and_then(|id| id.parse().ok())
        {
            task = server.store().execution(reused)?;
        }
    }
    let log = task.text(props::LOG).map(str::to_owned).ok_or_else(|| {
        ApiError::not_found(format!(
            "task `{node_id}` of run {run_id} has no log (it ran no step)"
        ))
    })?;
    if !FsPath::new(&log).exists() {
        // A step that has not written yet: its log appears when it does.
        if params.follow != Some(true) {
            return Ok(plain(Body::empty()));
        }
    } else {
        inside_runs(&server, &log)?;
    }
    let follow = params.follow == Some(true);
    let state = LogTail {
        server,
        execution: task.id,
        path: PathBuf::from(log),
        offset: 0,
        follow,
        done: false,
        component_lines: (params.component_only == Some(true)).then(ComponentLines::default),
    };
    let stream = futures_util::stream::unfold(state, |mut tail| async move {
        tail.next().await.map(|chunk| (chunk, tail))
    });
    Ok(plain(Body::from_stream(stream)))
}

fn plain(body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache, private"),
        ],
        body,
    )
        .into_response()
}

struct LogTail {
    server: Arc<Server>,
    execution: i64,
    path: PathBuf,
    offset: u64,
    follow: bool,
    done: bool,
    /// The filter when only the component's lines are asked for.
    component_lines: Option<ComponentLines>,
}

impl LogTail {
    /// The next chunk of the log; `None` at its end (when following, once the task ended and
    /// everything it wrote was sent).
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            let chunk = self.next_unfiltered().await;
            let Some(filter) = &mut self.component_lines else {
                return chunk;
            };
            let kept = match chunk {
                None => {
                    let last = filter.finish();
                    return (!last.is_empty()).then(|| Ok(Bytes::from(last)));
                }
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(bytes)) => filter.feed(&bytes),
            };
            if !kept.is_empty() {
                return Some(Ok(Bytes::from(kept)));
            }
        }
    }

    /// The next chunk as it is in the file.
    async fn next_unfiltered(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            if self.done {
                return None;
            }
            let chunk = self.read_more();
            match chunk {
                Ok(bytes) if !bytes.is_empty() => return Some(Ok(bytes)),
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            if !self.follow || !self.still_running() {
                // One more read: what the step wrote between the last read and its end.
                self.done = true;
                return match self.read_more() {
                    Ok(bytes) if !bytes.is_empty() => Some(Ok(bytes)),
                    _ => None,
                };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn read_more(&mut self) -> std::io::Result<Bytes> {
        let mut file = match fs_err::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Bytes::new()),
            Err(e) => return Err(e),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buffer = Vec::new();
        file.take(1 << 20).read_to_end(&mut buffer)?;
        self.offset += buffer.len() as u64;
        Ok(Bytes::from(buffer))
    }

    fn still_running(&self) -> bool {
        !self.server.stopping.is_cancelled()
            && self
                .server
                .store()
                .execution(self.execution)
                .is_ok_and(|e| execution_state(&e) == TaskState::Running)
    }
}
