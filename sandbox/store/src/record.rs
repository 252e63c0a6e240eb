//! Writing runs: contexts, executions, artifacts and events, as the backend's driver and
//! launcher write them to MLMD.

use kfbox_step::process::ProcessIdentity;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{Map, Value};

use crate::api::default_experiment_id;
use crate::db::Store;
use crate::error::StoreError;
use crate::props;
use crate::run_index::{find_run, RunRow};
use crate::run_values;
use crate::sql::{event, exec, now_ms, put_props, state, Owner};
use crate::value::Prop;

/// MLMD `Artifact.State.LIVE`.
const ARTIFACT_LIVE: i64 = 2;

/// MLMD `TypeKind`.
#[derive(Clone, Copy)]
pub(crate) enum TypeKind {
    Execution = 0,
    Artifact = 1,
    Context = 2,
}

const PIPELINE_CONTEXT: &str = "system.Pipeline";
const RUN_CONTEXT: &str = "system.PipelineRun";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionType {
    Container,
    Dag,
    Importer,
}

impl ExecutionType {
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Container => "system.ContainerExecution",
            Self::Dag => "system.DAGExecution",
            Self::Importer => "system.ImporterExecution",
        }
    }
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: String,
    pub display_name: String,
    pub pipeline_name: String,
    /// `<pipeline>-<id8>`, the backend's run resource name.
    pub resource_name: String,
    pub run_dir: String,
    pub parameters: Map<String, Value>,
    /// The spec as the API stores it (see `LoadedPipeline::source`), so that every run's
    /// graph can be drawn.
    pub pipeline_spec: String,
    /// The experiment the run belongs to; `None`: the `Default` one (runs from `kfbox run`).
    pub experiment_id: Option<String>,
}

/// What the engine needs to add records to a started run.
#[derive(Debug, Clone)]
pub struct RunHandle {
    pub run_id: String,
    pub context_id: i64,
    pub pipeline_context_id: i64,
    pub root_execution_id: i64,
}

/// A new artifact, as a step or importer produced it.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub schema_title: String,
    pub uri: String,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub enum OutputArtifact {
    New(NewArtifact),
    /// An artifact already recorded: a cache hit or a DAG passing its child's output on.
    Existing(i64),
}

/// An execution to insert, in its first state.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub kind: ExecutionType,
    pub state: i64,
    pub props: Vec<(&'static str, Prop)>,
    /// INPUT events: input name and artifact id.
    pub inputs: Vec<(String, i64)>,
    pub outputs: Vec<(String, OutputArtifact)>,
}

impl NewExecution {
    pub fn running(kind: ExecutionType) -> Self {
        Self {
            kind,
            state: state::RUNNING,
            props: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct FinishedExecution {
    pub state: i64,
    pub props: Vec<(&'static str, Prop)>,
    pub outputs: Vec<(String, OutputArtifact)>,
}

/// MLMD execution states, by the names kfbox's task states map to.
impl FinishedExecution {
    pub const RUNNING: i64 = state::RUNNING;
    pub const COMPLETE: i64 = state::COMPLETE;
    pub const FAILED: i64 = state::FAILED;
    pub const CACHED: i64 = state::CACHED;
    pub const CANCELED: i64 = state::CANCELED;
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub state: String,
    pub error: Option<String>,
    pub outputs: Map<String, Value>,
    pub output_artifacts: Map<String, Value>,
}

impl Store {
    /// Record a run's start: its contexts, its root DAG execution and its index row.
    pub fn begin_run(&self, run: &NewRun) -> Result<RunHandle, StoreError> {
        let ProcessIdentity {
            pid,
            started: pid_started,
        } = ProcessIdentity::current();
        self.write(|tx| {
            let now = now_ms();
            let pipeline_type = type_id(tx, PIPELINE_CONTEXT, TypeKind::Context)?;
            let run_type = type_id(tx, RUN_CONTEXT, TypeKind::Context)?;
            let (pipeline_context, _) = context_named(tx, pipeline_type, &run.pipeline_name, now)?;
            exec(
                tx,
                "INSERT INTO Context (type_id, name, create_time_since_epoch, last_update_time_since_epoch) VALUES (?1, ?2, ?3, ?3)",
                params![run_type, run.run_id, now],
            )?;
            let context = tx.last_insert_rowid();
            put_props(
                tx,
                Owner::Context(context),
                &[
                    (props::NAMESPACE, Prop::Text(String::new())),
                    (props::RESOURCE_NAME, Prop::Text(run.resource_name.clone())),
                    (props::PIPELINE_ROOT, Prop::Text(run.run_dir.clone())),
                    (props::STORE_SESSION_INFO, Prop::Text(String::new())),
                    (props::RUN_DISPLAY_NAME, Prop::Text(run.display_name.clone())),
                    (props::RUN_STATE, Prop::Text("RUNNING".into())),
                    (props::RUN_CREATED_AT, Prop::Int(now)),
                    (props::RUN_DIR, Prop::Text(run.run_dir.clone())),
                    (props::RUN_PID, Prop::Int(pid)),
                    (props::RUN_PID_STARTED, Prop::Int(pid_started)),
                ],
            )?;
            exec(
                tx,
                "INSERT INTO ParentContext (context_id, parent_context_id) VALUES (?1, ?2)",
                params![context, pipeline_context],
            )?;
            let handle = RunHandle {
                run_id: run.run_id.clone(),
                context_id: context,
                pipeline_context_id: pipeline_context,
                root_execution_id: 0,
            };
            let root = NewExecution {
                props: vec![
                    (props::DISPLAY_NAME, Prop::Text(run.display_name.clone())),
                    (props::TASK_NAME, Prop::Text(String::new())),
                    (props::INPUTS, Prop::Struct(run.parameters.clone())),
                    (props::KIND, Prop::Text("root".into())),
                    (props::PATH, Prop::Text(String::new())),
                ],
                ..NewExecution::running(ExecutionType::Dag)
            };
            let root_id = insert_execution(tx, &handle, &root, Some(&format!("run/{}", run.run_id)))?;
            run_values::put_parameters(tx, &run.run_id, &run.parameters)?;
            exec(
                tx,
                "INSERT INTO kfbox_run (run_id, context_id, root_execution_id, display_name, pipeline_name, state, created_at, run_dir, pid, pid_started)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'RUNNING', ?6, ?7, ?8, ?9)",
                params![run.run_id, context, root_id, run.display_name, run.pipeline_name, now, run.run_dir, pid, pid_started],
            )?;
            let experiment = match &run.experiment_id {
                Some(id) => id.clone(),
                None => default_experiment_id(tx)?,
            };
            exec(
                tx,
                "INSERT INTO kfbox_api_run (run_id, experiment_id, created_at, pipeline_spec) VALUES (?1, ?2, ?3, ?4)",
                params![run.run_id, experiment, now, run.pipeline_spec],
            )?;
            // The one place a run joins its experiment: that experiment's last run is this one.
            exec(
                tx,
                "UPDATE kfbox_experiment SET last_run_created_at = ?2 WHERE experiment_id = ?1",
                params![experiment, now],
            )?;
            Ok(RunHandle {
                root_execution_id: root_id,
                ..handle
            })
        })
    }

    /// Insert an execution (with its events) and return its id.
    pub fn start_execution(
        &self,
        run: &RunHandle,
        execution: &NewExecution,
    ) -> Result<(i64, Vec<(String, i64)>), StoreError> {
        self.write(|tx| {
            let id = insert_execution(tx, run, execution, None)?;
            let outputs = put_outputs(tx, run, id, &execution.outputs)?;
            Ok((id, outputs))
        })
    }

    /// Record an execution's end; returns the ids of its output artifacts, in order.
    pub fn finish_execution(
        &self,
        run: &RunHandle,
        id: i64,
        finished: &FinishedExecution,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE Execution SET last_known_state = ?2, last_update_time_since_epoch = ?3 WHERE id = ?1",
                params![id, finished.state, now_ms()],
            )?;
            put_props(tx, Owner::Execution(id), &finished.props)?;
            put_outputs(tx, run, id, &finished.outputs)
        })
    }

    /// Record input artifacts given to the run itself (`kfbox run --artifact`).
    pub fn record_artifacts(
        &self,
        run: &RunHandle,
        artifacts: &[(String, NewArtifact)],
    ) -> Result<Vec<i64>, StoreError> {
        self.write(|tx| {
            artifacts
                .iter()
                .map(|(name, artifact)| {
                    let id = insert_artifact(tx, run, name, artifact)?;
                    insert_event(tx, id, run.root_execution_id, event::INPUT, name)?;
                    Ok(id)
                })
                .collect()
        })
    }

    /// Open an ended run again for a retry: the same contexts and root execution, RUNNING
    /// again and owned by this process. New executions join the earlier ones.
    /// Returns the handle and the run as it was recorded (its name and directory).
    pub fn reopen_run(&self, run_id: &str) -> Result<(RunHandle, RunRow), StoreError> {
        let ProcessIdentity {
            pid,
            started: pid_started,
        } = ProcessIdentity::current();
        self.write(|tx| {
            let run = find_run(tx, run_id)?;
            if run.run_id != run_id {
                return Err(StoreError::RunNotFound(run_id.to_owned()));
            }
            if run.state == "RUNNING" {
                return Err(StoreError::RunActive(run_id.to_owned()));
            }
            let root: i64 = tx.query_row(
                "SELECT root_execution_id FROM kfbox_run WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )?;
            let pipeline_context: i64 = tx.query_row(
                "SELECT parent_context_id FROM ParentContext WHERE context_id = ?1",
                [run.context_id],
                |r| r.get(0),
            )?;
            let now = now_ms();
            exec(
                tx,
                "UPDATE Execution SET last_known_state = ?2, last_update_time_since_epoch = ?3 WHERE id = ?1",
                params![root, state::RUNNING, now],
            )?;
            exec(
                tx,
                "DELETE FROM ContextProperty WHERE context_id = ?1 AND name IN (?2, ?3) AND is_custom_property = 1",
                params![run.context_id, props::ERROR, props::RUN_FINISHED_AT],
            )?;
            put_props(
                tx,
                Owner::Context(run.context_id),
                &[
                    (props::RUN_STATE, Prop::Text("RUNNING".into())),
                    (props::RUN_PID, Prop::Int(pid)),
                    (props::RUN_PID_STARTED, Prop::Int(pid_started)),
                ],
            )?;
            exec(
                tx,
                "UPDATE kfbox_run SET state = 'RUNNING', finished_at = NULL, error = NULL, pid = ?2, pid_started = ?3 WHERE run_id = ?1",
                params![run_id, pid, pid_started],
            )?;
            let handle = RunHandle {
                run_id: run_id.to_owned(),
                context_id: run.context_id,
                pipeline_context_id: pipeline_context,
                root_execution_id: root,
            };
            Ok((handle, run))
        })
    }

    /// Record a run's end on its root execution, its context and its index row.
    pub fn finish_run(&self, run: &RunHandle, outcome: &RunOutcome) -> Result<(), StoreError> {
        self.write(|tx| {
            let now = now_ms();
            let root_state = match outcome.state.as_str() {
                "SUCCEEDED" => state::COMPLETE,
                "CANCELED" => state::CANCELED,
                _ => state::FAILED,
            };
            exec(
                tx,
                "UPDATE Execution SET last_known_state = ?2, last_update_time_since_epoch = ?3 WHERE id = ?1",
                params![run.root_execution_id, root_state, now],
            )?;
            let mut root_props = vec![
                (props::OUTPUTS, Prop::Struct(outcome.outputs.clone())),
                (props::STATE, Prop::Text(outcome.state.clone())),
                (props::OUTPUT_ARTIFACTS, Prop::Struct(outcome.output_artifacts.clone())),
            ];
            if let Some(error) = &outcome.error {
                root_props.push((props::ERROR, Prop::Text(error.clone())));
            }
            put_props(tx, Owner::Execution(run.root_execution_id), &root_props)?;
            end_run(tx, &run.run_id, run.context_id, &outcome.state, outcome.error.as_deref(), now)
        })
    }
}

/// Mark a run ended in its context and index row.
pub(crate) fn end_run(
    tx: &Transaction<'_>,
    run_id: &str,
    context: i64,
    state: &str,
    error: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let mut context_props = vec![
        (props::RUN_STATE, Prop::Text(state.to_owned())),
        (props::RUN_FINISHED_AT, Prop::Int(now)),
    ];
    if let Some(error) = error {
        context_props.push((props::ERROR, Prop::Text(error.to_owned())));
    }
    put_props(tx, Owner::Context(context), &context_props)?;
    exec(
        tx,
        "UPDATE Context SET last_update_time_since_epoch = ?2 WHERE id = ?1",
        params![context, now],
    )?;
    exec(
        tx,
        "UPDATE kfbox_run SET state = ?2, finished_at = ?3, error = ?4, pid = NULL WHERE run_id = ?1",
        params![run_id, state, now, error],
    )?;
    Ok(())
}

fn insert_execution(
    tx: &Transaction<'_>,
    run: &RunHandle,
    execution: &NewExecution,
    name: Option<&str>,
) -> Result<i64, StoreError> {
    let ty = type_id(tx, execution.kind.type_name(), TypeKind::Execution)?;
    let now = now_ms();
    exec(
        tx,
        "INSERT INTO Execution (type_id, last_known_state, name, create_time_since_epoch, last_update_time_since_epoch) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![ty, execution.state, name, now],
    )?;
    let id = tx.last_insert_rowid();
    put_props(tx, Owner::Execution(id), &execution.props)?;
    for context in [run.pipeline_context_id, run.context_id] {
        exec(
            tx,
            "INSERT OR IGNORE INTO Association (context_id, execution_id) VALUES (?1, ?2)",
            params![context, id],
        )?;
    }
    for (name, artifact) in &execution.inputs {
        insert_event(tx, *artifact, id, event::INPUT, name)?;
    }
    Ok(id)
}

fn put_outputs(
    tx: &Transaction<'_>,
    run: &RunHandle,
    execution: i64,
    outputs: &[(String, OutputArtifact)],
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut ids = Vec::new();
    for (name, output) in outputs {
        let id = match output {
            OutputArtifact::New(artifact) => {
                let id = insert_artifact(tx, run, name, artifact)?;
                if artifact.schema_title == "system.Metrics" {
                    run_values::put_metrics(tx, &run.run_id, id)?;
                }
                id
            }
            OutputArtifact::Existing(id) => {
                attribute(tx, run, *id)?;
                run_values::put_metrics(tx, &run.run_id, *id)?;
                *id
            }
        };
        insert_event(tx, id, execution, event::OUTPUT, name)?;
        ids.push((name.clone(), id));
    }
    Ok(ids)
}

fn insert_artifact(
    tx: &Transaction<'_>,
    run: &RunHandle,
    name: &str,
    artifact: &NewArtifact,
) -> Result<i64, StoreError> {
    let title = if artifact.schema_title.is_empty() {
        "system.Artifact"
    } else {
        artifact.schema_title.as_str()
    };
    let ty = type_id(tx, title, TypeKind::Artifact)?;
    let now = now_ms();
    exec(
        tx,
        "INSERT INTO Artifact (type_id, uri, state, create_time_since_epoch, last_update_time_since_epoch) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![ty, artifact.uri, ARTIFACT_LIVE, now],
    )?;
    let id = tx.last_insert_rowid();
    let mut artifact_props: Vec<(&str, Prop)> = Vec::new();
    // The runtime-only workspace flag is not kept, as in the backend.
    for (key, value) in artifact
        .metadata
        .iter()
        .filter(|(k, _)| *k != "_kfp_workspace")
    {
        if let Some(prop) = Prop::from_metadata(value) {
            artifact_props.push((key.as_str(), prop));
        }
    }
    if !artifact.metadata.contains_key(props::DISPLAY_NAME) {
        artifact_props.push((props::DISPLAY_NAME, Prop::Text(name.to_owned())));
    }
    if !artifact.metadata.contains_key(props::STORE_SESSION_INFO) {
        artifact_props.push((props::STORE_SESSION_INFO, Prop::Text("{}".into())));
    }
    put_props(tx, Owner::Artifact(id), &artifact_props)?;
    attribute(tx, run, id)?;
    Ok(id)
}

/// Attribute an artifact to the run and its pipeline, as `PutExecution` with contexts does.
fn attribute(tx: &Transaction<'_>, run: &RunHandle, artifact: i64) -> Result<(), StoreError> {
    for context in [run.pipeline_context_id, run.context_id] {
        exec(
            tx,
            "INSERT OR IGNORE INTO Attribution (context_id, artifact_id) VALUES (?1, ?2)",
            params![context, artifact],
        )?;
    }
    Ok(())
}

fn insert_event(
    tx: &Transaction<'_>,
    artifact: i64,
    execution: i64,
    kind: i64,
    name: &str,
) -> Result<(), StoreError> {
    let inserted = exec(
        tx,
        "INSERT OR IGNORE INTO Event (artifact_id, execution_id, type, milliseconds_since_epoch) VALUES (?1, ?2, ?3, ?4)",
        params![artifact, execution, kind, now_ms()],
    )?;
    if inserted == 1 {
        exec(
            tx,
            "INSERT INTO EventPath (event_id, is_index_step, step_key) VALUES (?1, 0, ?2)",
            params![tx.last_insert_rowid(), name],
        )?;
    }
    Ok(())
}

/// The id of a type without version, inserted on first use (as `PutArtifactType` does).
/// The context of this type and name, created when there is none; whether it was.
pub(crate) fn context_named(
    tx: &Transaction<'_>,
    type_id: i64,
    name: &str,
    now: i64,
) -> Result<(i64, bool), StoreError> {
    let found = tx
        .query_row(
            "SELECT id FROM Context WHERE type_id = ?1 AND name = ?2",
            params![type_id, name],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = found {
        return Ok((id, false));
    }
    exec(
        tx,
        "INSERT INTO Context (type_id, name, create_time_since_epoch, last_update_time_since_epoch) VALUES (?1, ?2, ?3, ?3)",
        params![type_id, name, now],
    )?;
    Ok((tx.last_insert_rowid(), true))
}

pub(crate) fn type_id(tx: &Transaction<'_>, name: &str, kind: TypeKind) -> Result<i64, StoreError> {
    let found = tx
        .prepare_cached(
            "SELECT id FROM Type WHERE name = ?1 AND version IS NULL AND type_kind = ?2",
        )?
        .query_row(params![name, kind as i64], |row| row.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    exec(
        tx,
        "INSERT INTO Type (name, type_kind) VALUES (?1, ?2)",
        params![name, kind as i64],
    )?;
    Ok(tx.last_insert_rowid())
}

/// A run begun in `store` for tests, its directory under `root/runs/`.
#[cfg(test)]
pub(crate) fn begin_test_run(
    store: &Store,
    root: &std::path::Path,
    run_id: &str,
    parameters: Map<String, Value>,
) -> RunHandle {
    let run_dir = root.join("runs").join(run_id);
    fs_err::create_dir_all(&run_dir).unwrap();
    store
        .begin_run(&NewRun {
            run_id: run_id.into(),
            display_name: run_id.into(),
            pipeline_name: "p".into(),
            resource_name: format!("p-{run_id}"),
            run_dir: run_dir.display().to_string(),
            parameters,
            pipeline_spec: String::new(),
            experiment_id: None,
        })
        .unwrap()
}
