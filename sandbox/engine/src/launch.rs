//! Starting a run: the one way every front end (`kfbox run`, the API's create and retry, the
//! recurring scheduler) records a run and then executes it.
//!
//! Recording comes first and alone ([`launch`]), so that a front end can answer with the run
//! (and add its own records to it) before the first step starts; executing
//! ([`LaunchedRun::execute`]) then runs it to its end and writes `summary.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kfbox_gpu::GpuPlan;
use kfbox_namespace::Namespace;
use kfbox_spec::LoadedPipeline;
use kfbox_step::events::{EventSink, RunEvent};
use kfbox_step::Executor;
use kfbox_store::{NewArtifact, NewRun, RunHandle, Store, StoreError};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::model::{RunSummary, RuntimeArtifact};
use crate::scheduler::{execute, resource_name, RunOptions};

/// How runs execute in this process; shared by all the runs it starts.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub store: Arc<Store>,
    /// Each run gets `<runs_dir>/<run id>/`.
    pub runs_dir: PathBuf,
    /// Slots for steps running at once, shared by every run given this runtime.
    pub step_slots: Arc<Semaphore>,
    /// Reuse earlier executions with the same cache fingerprint. Off, executions still record
    /// their fingerprints, so later runs can reuse them.
    pub reuse_cache: bool,
    /// The GPUs steps may ask for, and what happens to requests on a machine without them.
    pub gpus: GpuPlan,
    /// The PVCs, Secrets and ConfigMaps that `kfp.kubernetes` settings refer to.
    pub namespace: Namespace,
}

/// A run to start.
#[derive(Debug)]
pub struct Launch {
    pub pipeline: Arc<LoadedPipeline>,
    /// The spec as kept with the run (for its graph, and for retries).
    pub spec_text: String,
    /// Root parameters, already checked by [`crate::resolve_root_parameters`].
    pub parameters: Map<String, Value>,
    /// Root input artifacts, from [`crate::resolve_root_artifacts`]; recorded first, so that
    /// steps using them have INPUT events to them.
    pub artifacts: BTreeMap<String, Vec<RuntimeArtifact>>,
    /// The run's display name; by default the pipeline's name and the run id's start.
    pub display_name: Option<String>,
    /// `None`: the `Default` experiment.
    pub experiment_id: Option<String>,
    /// `Some(run id)`: a failed or canceled run again, under its own id, directory, name and
    /// experiment (`display_name` and `experiment_id` are for new runs); steps that succeeded
    /// in its earlier attempts are reused, whatever their caching options.
    pub retry_of: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot record the run in the store")]
    Store(#[from] StoreError),
    #[error("cannot create the run directory {path}")]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A recorded run, ready to execute.
#[derive(Debug)]
pub struct LaunchedRun {
    pipeline: Arc<LoadedPipeline>,
    options: RunOptions,
}

/// Record a run (its directory, its MLMD contexts and root execution, its input artifacts).
pub fn launch(runtime: &Runtime, launch: Launch) -> Result<LaunchedRun, LaunchError> {
    let store = &runtime.store;
    let pipeline_name = launch.pipeline.spec.pipeline_info.name.clone();
    let (record, run_dir, run_name) = match &launch.retry_of {
        Some(run_id) => {
            let (record, run) = store.reopen_run(run_id)?;
            (record, PathBuf::from(run.run_dir), run.display_name)
        }
        None => {
            let run_id = uuid::Uuid::new_v4().to_string();
            let run_dir = runtime.runs_dir.join(&run_id);
            fs_err::create_dir_all(&run_dir).map_err(|source| LaunchError::RunDir {
                path: run_dir.clone(),
                source,
            })?;
            let run_name = launch
                .display_name
                .clone()
                .unwrap_or_else(|| resource_name(&pipeline_name, &run_id));
            let record = store.begin_run(&NewRun {
                run_id: run_id.clone(),
                display_name: run_name.clone(),
                pipeline_name: pipeline_name.clone(),
                resource_name: resource_name(&pipeline_name, &run_id),
                run_dir: run_dir.display().to_string(),
                parameters: launch.parameters.clone(),
                pipeline_spec: launch.spec_text.clone(),
                experiment_id: launch.experiment_id.clone(),
            })?;
            (record, run_dir, run_name)
        }
    };
    let artifacts = record_root_artifacts(store, &record, launch.artifacts)?;
    Ok(LaunchedRun {
        pipeline: launch.pipeline,
        options: RunOptions {
            run_id: record.run_id.clone(),
            run_name,
            run_dir,
            parameters: launch.parameters,
            artifacts,
            step_slots: runtime.step_slots.clone(),
            store: store.clone(),
            record,
            reuse_cache: runtime.reuse_cache,
            retry: launch.retry_of.is_some(),
            gpus: runtime.gpus.clone(),
            namespace: runtime.namespace.clone(),
        },
    })
}

impl LaunchedRun {
    pub fn run_id(&self) -> &str {
        &self.options.run_id
    }

    pub fn run_dir(&self) -> &std::path::Path {
        &self.options.run_dir
    }

    /// Execute the run to its end and write its `summary.json` (a failed write is a warning:
    /// the run's state, not a full disk, is what the run ended with).
    pub async fn execute(
        self,
        executor: Arc<dyn Executor>,
        events: EventSink,
        cancel: CancellationToken,
    ) -> RunSummary {
        let summary_path = self.options.run_dir.join("summary.json");
        let summary = execute(
            self.pipeline,
            self.options,
            executor,
            events.clone(),
            cancel,
        )
        .await;
        let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
        if let Err(e) = fs_err::write(&summary_path, text) {
            events.send(RunEvent::Warning(format!(
                "cannot write the run summary: {e}"
            )));
        }
        summary
    }
}

fn record_root_artifacts(
    store: &Store,
    record: &RunHandle,
    mut artifacts: BTreeMap<String, Vec<RuntimeArtifact>>,
) -> Result<BTreeMap<String, Vec<RuntimeArtifact>>, StoreError> {
    if artifacts.is_empty() {
        return Ok(artifacts);
    }
    let new: Vec<(String, NewArtifact)> = artifacts
        .iter()
        .flat_map(|(name, list)| {
            list.iter().map(|a| {
                let artifact = NewArtifact {
                    schema_title: a.schema_title.clone(),
                    uri: a.uri.clone(),
                    metadata: a.metadata.clone(),
                };
                (name.clone(), artifact)
            })
        })
        .collect();
    let mut ids = store.record_artifacts(record, &new)?.into_iter();
    for artifact in artifacts.values_mut().flatten() {
        artifact.id = ids.next();
    }
    Ok(artifacts)
}
