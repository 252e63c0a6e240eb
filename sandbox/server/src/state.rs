//! What the server shares between requests: the store, how runs execute, the runs executing
//! in this process, and its options.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kfbox_engine::Runtime;
use kfbox_gpu::GpuPlan;
use kfbox_spec::LoadedPipeline;
use kfbox_step::Executor;
use kfbox_store::Store;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::ApiError;
use crate::guard::BrowserPolicy;
use crate::lab::LabBoard;

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
    /// The PVCs, Secrets and ConfigMaps runs refer to.
    pub namespace: kfbox_namespace::Namespace,
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
pub(crate) struct Ended {
    pub(crate) succeeded: usize,
    pub(crate) failed: usize,
    pub(crate) canceled: usize,
}

/// What the server shares between requests.
pub struct Server {
    pub(crate) options: ServerOptions,
    pub(crate) launcher: Arc<dyn Launcher>,
    /// The `Default` experiment's id: it exists before anyone asks, as on a cluster.
    pub(crate) default_experiment: String,
    /// How runs execute: the store, the run directories, the step slots all runs share.
    pub(crate) runtime: Runtime,
    /// Runs executing in this process, by id; a terminate cancels the token.
    pub(crate) active: Mutex<HashMap<String, CancellationToken>>,
    /// What running tasks of those runs are busy with before their program starts (installing
    /// their packages), by run id and task path.
    pub(crate) phases: Mutex<HashMap<String, HashMap<String, String>>>,
    pub(crate) ended: Mutex<Ended>,
    pub(crate) runs: TaskTracker,
    /// Cancelled when the server shuts down: stops runs and the scheduler.
    pub(crate) stopping: CancellationToken,
}

impl Server {
    /// What a server shares between requests, before it listens: the router serves it.
    pub fn new(
        options: ServerOptions,
        store: Arc<Store>,
        launcher: Arc<dyn Launcher>,
    ) -> Result<Arc<Self>, ServerError> {
        let default_experiment = store.default_experiment()?.experiment_id;
        Ok(Arc::new(Server {
            default_experiment,
            runtime: Runtime {
                store,
                runs_dir: options.runs_dir.clone(),
                step_slots: Arc::new(Semaphore::new(options.parallelism.max(1))),
                reuse_cache: options.reuse_cache,
                gpus: options.gpus.clone(),
                namespace: options.namespace.clone(),
            },
            options,
            launcher,
            active: Mutex::new(HashMap::new()),
            phases: Mutex::new(HashMap::new()),
            ended: Mutex::new(Ended::default()),
            runs: TaskTracker::new(),
            stopping: CancellationToken::new(),
        }))
    }

    /// The store, as the runtime that executes runs holds it.
    pub(crate) fn store(&self) -> &Store {
        &self.runtime.store
    }

    pub(crate) fn ended(&self) -> std::sync::MutexGuard<'_, Ended> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn counts(&self) -> Counts {
        let ended = *self.ended();
        Counts {
            running: self.active().len(),
            succeeded: ended.succeeded,
            failed: ended.failed,
            canceled: ended.canceled,
        }
    }

    /// The experiment a request names, or `Default` when it names none.
    pub(crate) fn experiment_or_default(&self, id: Option<&str>) -> Result<String, ApiError> {
        match id.filter(|id| !id.is_empty()) {
            Some(id) => Ok(self.store().experiment(id)?.experiment_id),
            None => Ok(self.default_experiment.clone()),
        }
    }

    pub(crate) fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn phases(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, String>>> {
        self.phases.lock().unwrap_or_else(|e| e.into_inner())
    }
}
