//! What the scheduler writes to the store: one MLMD execution per task, with the backend's
//! custom properties, INPUT events from the artifacts it used and OUTPUT events to those it
//! produced.
//!
//! A failed write stops the run: a run that cannot be recorded cannot be trusted, retried or
//! cleaned up later, so it ends FAILED (in the store as soon as the store takes writes again,
//! at worst by the next kfbox that finds its process gone). A failed read (a cache lookup) is
//! only a warning: the step runs instead of being reused.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use kfbox_store::value::Prop;
use kfbox_store::{
    props, CachedExecution, ExecutionType, FinishedExecution, NewArtifact, NewExecution,
    OutputArtifact, RunHandle, RunOutcome, Store, StoreError,
};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::model::{RuntimeArtifact, TaskRecord, TaskState};
use crate::recorded::ExecutionKind;
use kfbox_step::events::{EventSink, RunEvent};

type Artifacts = BTreeMap<String, Vec<RuntimeArtifact>>;

pub(crate) struct Ledger {
    store: Arc<Store>,
    run: RunHandle,
    events: EventSink,
    /// Cancelled when a write fails, to stop the run.
    halt: CancellationToken,
    /// The first failed write.
    failure: Mutex<Option<String>>,
    /// Cache hits by fingerprint, so that the run's later tasks with the same fingerprint (a
    /// loop over equal items, a chain of equal steps) reuse the same execution without asking
    /// the store again: the store's lookup sorts every execution with that fingerprint, each
    /// hit adds one, and asking it for every task made such a run quadratic.
    hits: Mutex<HashMap<String, CachedExecution>>,
}

/// An execution being recorded: what is known when the task starts.
pub(crate) struct Draft {
    kind: ExecutionType,
    props: Vec<(&'static str, Prop)>,
    inputs: Vec<(String, i64)>,
    opened: Option<i64>,
}

impl Draft {
    /// The execution's id once opened (0 when the store could not record it).
    pub(crate) fn id(&self) -> i64 {
        self.opened.unwrap_or(0)
    }

    pub(crate) fn set(&mut self, name: &'static str, value: Prop) {
        self.props.push((name, value));
    }
}

/// Where a task sits in the run.
pub(crate) struct Placement<'a> {
    pub task_name: &'a str,
    pub display_name: &'a str,
    pub path: &'a str,
    pub kind: ExecutionKind,
    pub parent: i64,
}

fn mlmd_state(state: TaskState) -> i64 {
    match state {
        TaskState::Succeeded => FinishedExecution::COMPLETE,
        TaskState::Failed => FinishedExecution::FAILED,
        TaskState::Cached => FinishedExecution::CACHED,
        TaskState::Running => FinishedExecution::RUNNING,
        // The backend records a task whose condition was false as CANCELED ("not triggered").
        TaskState::Skipped | TaskState::Canceled => FinishedExecution::CANCELED,
    }
}

pub(crate) fn execution_type(kind: ExecutionKind) -> ExecutionType {
    match kind {
        ExecutionKind::Container => ExecutionType::Container,
        ExecutionKind::Importer => ExecutionType::Importer,
        ExecutionKind::Root
        | ExecutionKind::Dag
        | ExecutionKind::Loop
        | ExecutionKind::Iteration => ExecutionType::Dag,
    }
}

/// Recorded artifact ids by output name: how a DAG (and the run) lists the outputs it passes on.
fn artifact_ids(artifacts: &Artifacts) -> Map<String, Value> {
    artifacts
        .iter()
        .map(|(name, list)| {
            let ids: Vec<Value> = list.iter().filter_map(|a| a.id).map(Value::from).collect();
            (name.clone(), Value::Array(ids))
        })
        .collect()
}

impl Ledger {
    pub(crate) fn new(
        store: Arc<Store>,
        run: RunHandle,
        events: EventSink,
        halt: CancellationToken,
    ) -> Self {
        Self {
            store,
            run,
            events,
            halt,
            failure: Mutex::new(None),
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Why recording the run failed, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn root_execution_id(&self) -> i64 {
        self.run.root_execution_id
    }

    /// The value a write returned; a failed write is reported and stops the run.
    fn keep<T>(&self, result: Result<T, StoreError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                let text = self.warn(&e, "recording the run");
                let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
                if failure.is_none() {
                    *failure = Some(text);
                    self.halt.cancel();
                }
                None
            }
        }
    }

    /// The value a read returned; a failed read is only reported.
    fn keep_read<T>(&self, result: Result<T, StoreError>) -> Option<T> {
        result.map_err(|e| self.warn(&e, "reading the store")).ok()
    }

    /// Report a store error as a warning; returns its text.
    fn warn(&self, error: &StoreError, doing: &str) -> String {
        let text = format!(
            "{doing} in {} failed: {}",
            self.store.path().display(),
            kfbox_step::error_chain(error)
        );
        self.events.send(RunEvent::Warning(text.clone()));
        text
    }

    pub(crate) fn draft(
        &self,
        at: &Placement<'_>,
        parameters: &Map<String, Value>,
        artifacts: &Artifacts,
    ) -> Draft {
        let mut props = vec![
            (props::DISPLAY_NAME, Prop::Text(at.display_name.to_owned())),
            (props::TASK_NAME, Prop::Text(at.task_name.to_owned())),
            (props::INPUTS, Prop::Struct(parameters.clone())),
            (props::PATH, Prop::Text(at.path.to_owned())),
            (props::KIND, Prop::Text(at.kind.as_str().to_owned())),
        ];
        if at.parent != 0 {
            props.push((props::PARENT_DAG_ID, Prop::Int(at.parent)));
        }
        let inputs = artifacts
            .iter()
            .flat_map(|(name, list)| list.iter().filter_map(|a| Some((name.clone(), a.id?))))
            .collect();
        Draft {
            kind: execution_type(at.kind),
            props,
            inputs,
            opened: None,
        }
    }

    /// Insert the execution as RUNNING: a killed run is then found with it unfinished.
    pub(crate) fn open(&self, draft: &mut Draft) {
        let execution = NewExecution {
            props: draft.props.clone(),
            inputs: draft.inputs.clone(),
            ..NewExecution::running(draft.kind)
        };
        draft.opened = self
            .keep(self.store.start_execution(&self.run, &execution))
            .map(|(id, _)| id);
    }

    /// Record how the task ended; new output artifacts get their ids.
    pub(crate) fn close(
        &self,
        draft: Draft,
        record: &TaskRecord,
        outputs: &Map<String, Value>,
        artifacts: &mut Artifacts,
        extra: Vec<(&'static str, Prop)>,
    ) {
        let mut props = extra;
        props.push((props::STATE, Prop::Text(record.state.as_str().to_owned())));
        props.push((props::ATTEMPTS, Prop::Int(record.attempts.into())));
        props.push((props::OUTPUTS, Prop::Struct(outputs.clone())));
        let optional = [
            (props::ERROR, &record.error),
            (props::REASON, &record.reason),
            (props::LOG, &record.log),
            (props::STARTED_AT, &record.started_at),
            (props::FINISHED_AT, &record.finished_at),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                props.push((name, Prop::Text(value.clone())));
            }
        }
        if let Some(count) = record.iterations {
            props.push((props::ITERATION_COUNT, Prop::Int(count as i64)));
        }
        // Steps and importers produce artifacts (OUTPUT events); DAGs only pass their
        // children's on, so they list ids instead of claiming to have produced them.
        let mut output_events = Vec::new();
        if draft.kind == ExecutionType::Dag {
            let ids = artifact_ids(artifacts);
            props.push((props::OUTPUT_ARTIFACTS, Prop::Struct(ids)));
        } else {
            for (name, list) in artifacts.iter() {
                for artifact in list {
                    let output = match artifact.id {
                        Some(id) => OutputArtifact::Existing(id),
                        None => OutputArtifact::New(NewArtifact {
                            schema_title: artifact.schema_title.clone(),
                            uri: artifact.uri.clone(),
                            metadata: artifact.metadata.clone(),
                        }),
                    };
                    output_events.push((name.clone(), output));
                }
            }
        }
        let state = mlmd_state(record.state);
        let ids = match draft.opened {
            Some(id) => self.keep(self.store.finish_execution(
                &self.run,
                id,
                &FinishedExecution {
                    state,
                    props,
                    outputs: output_events,
                },
            )),
            None => {
                let mut all = draft.props;
                all.extend(props);
                let execution = NewExecution {
                    kind: draft.kind,
                    state,
                    props: all,
                    inputs: draft.inputs,
                    outputs: output_events,
                };
                self.keep(self.store.start_execution(&self.run, &execution))
                    .map(|(_, ids)| ids)
            }
        };
        // Ids come back in the order the outputs were given: map order, then list order.
        let mut ids = ids.unwrap_or_default().into_iter();
        if draft.kind != ExecutionType::Dag {
            for list in artifacts.values_mut() {
                for artifact in list {
                    if let Some((_, id)) = ids.next() {
                        artifact.id = Some(id);
                    }
                }
            }
        }
    }

    /// Record the run's end on its root execution and in the run index.
    pub(crate) fn finish_run(
        &self,
        state: &str,
        error: Option<String>,
        outputs: &Map<String, Value>,
        artifacts: &Artifacts,
    ) {
        let outcome = RunOutcome {
            state: state.to_owned(),
            error,
            outputs: outputs.clone(),
            output_artifacts: artifact_ids(artifacts),
        };
        self.keep(self.store.finish_run(&self.run, &outcome));
    }

    /// The newest earlier execution of this pipeline with this fingerprint (the one an earlier
    /// task of this run reused, when one did).
    pub(crate) fn find_cached(&self, fingerprint: &str) -> Option<CachedExecution> {
        let hits = || self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = hits().get(fingerprint) {
            return Some(hit.clone());
        }
        let hit = self
            .keep_read(self.store.find_cached(&self.run, fingerprint))
            .flatten()?;
        hits().insert(fingerprint.to_owned(), hit.clone());
        Some(hit)
    }

    /// The newest execution of the task at `path` that succeeded in this run (for retries).
    pub(crate) fn find_succeeded(&self, path: &str) -> Option<CachedExecution> {
        self.keep_read(self.store.find_succeeded_in_run(&self.run, path))
            .flatten()
    }
}
