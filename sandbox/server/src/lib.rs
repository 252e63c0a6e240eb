//! kfbox's API server: the Kubeflow Pipelines REST API (v2beta1) over the local engine and
//! store, so that the real `kfp.Client` and `kfp` CLI work against it unchanged.
//!
//! One process serves the API, executes submitted runs in-process (all runs share one pool of
//! step slots and the machine's GPU slots), and fires recurring runs. How steps execute is not
//! its business: the [`Launcher`] it is given chooses executors per pipeline.

mod error;
mod experiments;
mod files;
mod filter;
mod graph;
mod guard;
mod lab;
mod model;
pub mod openapi;
mod pipelines;
mod recurring;
mod runs;
mod ui;
mod views;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kfbox_engine::Executor;
use kfbox_gpu::GpuPlan;
use kfbox_spec::LoadedPipeline;
use kfbox_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::{ApiError, Code};
pub use guard::BrowserPolicy;
pub use lab::{LabBoard, LabState, LabStatus};

/// Chooses how a pipeline's steps run (processes, containers, WebAssembly).
#[async_trait]
pub trait Launcher: Send + Sync {
    async fn executor(&self, pipeline: &LoadedPipeline) -> Result<Arc<dyn Executor>, String>;
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// `KFBOX_HOME/runs`: run directories are made here, and artifact and log reads never
    /// leave it.
    pub runs_dir: PathBuf,
    /// Steps of all runs running at once.
    pub parallelism: usize,
    pub gpus: GpuPlan,
    /// Reuse cached executions (`KFBOX_CACHE=off` turns it off).
    pub reuse_cache: bool,
    /// The names and origins browsers may reach this server under.
    pub browser: BrowserPolicy,
    /// JupyterLab's state, as whoever starts it writes it.
    pub lab: LabBoard,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}\nhint: another program uses the port; pass --listen 127.0.0.1:PORT")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
    #[error("cannot prepare the store for the API")]
    Store(#[from] kfbox_store::StoreError),
}

/// How many runs this server is executing, and how many it finished since it started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub running: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub canceled: usize,
}

/// How the runs this server executed ended (those running are its `active` runs).
#[derive(Debug, Clone, Copy, Default)]
struct Ended {
    succeeded: usize,
    failed: usize,
    canceled: usize,
}

/// What the server shares between requests.
pub(crate) struct Server {
    store: Arc<Store>,
    options: ServerOptions,
    launcher: Arc<dyn Launcher>,
    /// The `Default` experiment's id: it exists before anyone asks, as on a cluster.
    default_experiment: String,
    step_slots: Arc<Semaphore>,
    /// Runs executing in this process, by id; a terminate cancels the token.
    active: Mutex<HashMap<String, CancellationToken>>,
    /// What running tasks of those runs are busy with before their program starts (installing
    /// their packages), by run id and task path.
    phases: Mutex<HashMap<String, HashMap<String, String>>>,
    ended: Mutex<Ended>,
    runs: TaskTracker,
    /// Cancelled when the server shuts down: stops runs and the scheduler.
    stopping: CancellationToken,
}

impl Server {
    fn ended(&self) -> std::sync::MutexGuard<'_, Ended> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn counts(&self) -> Counts {
        let ended = *self.ended();
        Counts {
            running: self.active().len(),
            succeeded: ended.succeeded,
            failed: ended.failed,
            canceled: ended.canceled,
        }
    }

    /// The experiment a request names, or `Default` when it names none.
    fn experiment_or_default(&self, id: Option<&str>) -> Result<String, ApiError> {
        match id.filter(|id| !id.is_empty()) {
            Some(id) => Ok(self.store.experiment(id)?.experiment_id),
            None => Ok(self.default_experiment.clone()),
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn phases(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, String>>> {
        self.phases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound, not yet serving, server.
pub struct Bound {
    listener: TcpListener,
    server: Arc<Server>,
}

/// What shutting down left.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    /// Runs that were executing and were canceled.
    pub canceled: usize,
}

impl Bound {
    /// Bind the listening socket; fails at once when the address is taken.
    pub async fn bind(
        options: ServerOptions,
        store: Arc<Store>,
        launcher: Arc<dyn Launcher>,
    ) -> Result<Self, ServerError> {
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let default_experiment = store.default_experiment()?.experiment_id;
        let server = Arc::new(Server {
            default_experiment,
            step_slots: Arc::new(Semaphore::new(options.parallelism.max(1))),
            store,
            options,
            launcher,
            active: Mutex::new(HashMap::new()),
            phases: Mutex::new(HashMap::new()),
            ended: Mutex::new(Ended::default()),
            runs: TaskTracker::new(),
            stopping: CancellationToken::new(),
        });
        Ok(Self { listener, server })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.server.options.listen)
    }

    /// A way to read the run counts while serving (for a status line).
    pub fn counts(&self) -> impl Fn() -> Counts + Send + Sync + 'static {
        let server = self.server.clone();
        move || server.counts()
    }

    /// Serve until `shutdown` completes, then cancel the runs in progress and wait (up to
    /// `grace`) until each has recorded its end.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> Result<Stopped, ServerError> {
        let server = self.server.clone();
        let scheduler = tokio::spawn(recurring::schedule(server.clone()));
        let stopping = server.stopping.clone();
        let app = router(server.clone());
        let serving = axum::serve(self.listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        });
        let result = serving.await;
        server.stopping.cancel();
        scheduler.abort();
        let canceled = {
            let active = server.active();
            for token in active.values() {
                token.cancel();
            }
            active.len()
        };
        server.runs.close();
        let _ = tokio::time::timeout(grace, server.runs.wait()).await;
        result.map_err(ServerError::Serve)?;
        Ok(Stopped { canceled })
    }
}

/// The largest request body: an uploaded or inline pipeline (as large as `kfbox run` reads),
/// and room for the request around it.
const MAX_BODY: usize = kfbox_spec::limits::MAX_PIPELINE_BYTES as usize + (1 << 20);

fn router(server: Arc<Server>) -> Router {
    let api = Router::new()
        .route("/apis/v2beta1/healthz", get(healthz))
        .route("/apis/v2beta1/openapi.json", get(openapi::document))
        .merge(experiments::routes())
        .merge(pipelines::routes())
        .merge(runs::routes())
        .merge(recurring::routes())
        .merge(files::routes())
        .merge(views::routes())
        .merge(lab::routes())
        .fallback(unknown_route)
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            require_token,
        ));
    ui::routes()
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            guard::browser_guard,
        ))
        .layer(axum::middleware::from_fn(error::uniform_errors))
        // Compiled pipelines with many components run to megabytes.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(server)
}

async fn healthz() -> axum::Json<model::Healthz> {
    axum::Json(model::Healthz {
        commit_sha: env!("CARGO_PKG_VERSION").into(),
        tag_name: concat!("kfbox-", env!("CARGO_PKG_VERSION")).into(),
        multi_user: false,
        pipeline_store: "database".into(),
    })
}

async fn unknown_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no API route answers {method} {}; see /apis/v2beta1/openapi.json",
        uri.path()
    ))
}

/// With a token configured, every request must carry it as a bearer token.
async fn require_token(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &server.options.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.trim().as_bytes(), token.as_bytes()) {
            return ApiError::new(
                Code::Unauthenticated,
                "this kfbox server needs a token: send `Authorization: Bearer TOKEN` (kfp.Client(existing_token=TOKEN)); `kfbox up` printed it",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Compare without stopping at the first difference, so timing tells nothing of the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
