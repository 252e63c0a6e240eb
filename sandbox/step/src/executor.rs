//! The seam between the scheduler and whatever runs a step (host process, Docker, WASI).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::events::EventSink;
use crate::step::{Step, StepExit};

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("image `{image}` needs a container runtime: `{program}` is not a program on this host\nhint: start Docker and run with `--executor docker` (or `auto`), or install `{program}`")]
    NeedsContainerRuntime { image: String, program: String },
    /// A problem that retrying cannot fix (a missing image, a module that does not load).
    #[error("{0}")]
    Unrunnable(String),
    #[error("could not start `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Environment(String),
    /// The step's process could no longer be followed (the warm worker that forked it died
    /// under it) and was stopped; an attempt again starts it afresh.
    #[error("{0}")]
    Lost(String),
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[async_trait]
pub trait Executor: Send + Sync {
    /// Run one step to its end, or until `cancel` fires (then stop it and return `Canceled`).
    async fn run(
        &self,
        step: &Step,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError>;

    /// Whether `step` runs with the host's file system (a host process), so that paths it
    /// names in its executor output (`set_path()` files) are host files it could read anyway.
    /// Isolating executors (containers, WebAssembly) answer false: such paths must then lie in
    /// the run directory, or a step could make kfbox read host files for it.
    fn shares_host_files(&self, step: &Step) -> bool;

    /// The step as this executor runs it, settled before the task records what it ran
    /// (`step.json`, which `kfbox debug` replays): what the executor adds to its environment is
    /// part of that.
    fn prepare(&self, step: Step) -> Step {
        step
    }
}

/// Preparation an executor does once per key for its whole life (an environment built, an image
/// pulled): concurrent steps asking for the same key wait for the first one's result.
pub struct OncePerKey<K, V> {
    cells: Mutex<HashMap<K, Arc<tokio::sync::OnceCell<V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Default for OncePerKey<K, V> {
    fn default() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> OncePerKey<K, V> {
    /// The value, when it is there already (no waiting).
    pub fn get(&self, key: &K) -> Option<V> {
        let cells = self.cells.lock().expect("once-per-key lock");
        cells.get(key).and_then(|cell| cell.get().cloned())
    }

    pub async fn get_or_init<F: Future<Output = V>>(&self, key: &K, init: impl FnOnce() -> F) -> V {
        let cell = self
            .cells
            .lock()
            .expect("once-per-key lock")
            .entry(key.clone())
            .or_default()
            .clone();
        cell.get_or_init(init).await.clone()
    }
}
