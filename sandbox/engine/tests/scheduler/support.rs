//! A fake executor and a pipeline builder: the scheduler exercised in milliseconds, without
//! Python, the `kfp` SDK or processes.
//!
//! A fake step's `args` are a small script, placeholders already expanded by the scheduler:
//! `write PATH TEXT` writes a file (an output parameter or artifact), `sleep MS` waits (on
//! tokio's clock, so tests with paused time take no time), `fail-first N` exits 1 on the task's
//! first N attempts, `exit CODE` ends with that code, `wait-cancel` runs until canceled,
//! `unrunnable` fails as a missing image does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kfbox_engine::model::{RunSummary, TaskRecord, TaskState};
use kfbox_engine::{launch, Launch, Runtime};
use kfbox_gpu::{GpuPlan, GpuPolicy};
use kfbox_spec::LoadedPipeline;
use kfbox_step::events::EventSink;
use kfbox_step::{Executor, ExecutorError, Step, StepExit};
use kfbox_store::Store;
use serde_json::{json, Map, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One attempt the fake executor ran.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub task: String,
    pub started: Instant,
}

#[derive(Default)]
pub struct Fake {
    attempts: Mutex<Vec<Attempt>>,
    counts: Mutex<HashMap<String, u32>>,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Fake {
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().unwrap().clone()
    }

    /// How many attempts of tasks at `path` ran, over every run.
    pub fn ran(&self, path: &str) -> usize {
        self.attempts().iter().filter(|a| a.task == path).count()
    }

    /// The most steps that ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    async fn script(
        &self,
        step: &Step,
        attempt: u32,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        let mut words = step.args.iter();
        while let Some(word) = words.next() {
            let mut next = || words.next().cloned().unwrap_or_default();
            match word.as_str() {
                "write" => {
                    let path = next();
                    let text = next();
                    let path = Path::new(&path);
                    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
                    fs_err::write(path, text).unwrap();
                }
                "sleep" => {
                    let ms: u64 = next().parse().unwrap();
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                        () = cancel.cancelled() => return Ok(StepExit::Canceled),
                    }
                }
                "fail-first" => {
                    if attempt <= next().parse().unwrap() {
                        return Ok(StepExit::Exited(1));
                    }
                }
                "exit" => return Ok(StepExit::Exited(next().parse().unwrap())),
                "wait-cancel" => {
                    cancel.cancelled().await;
                    return Ok(StepExit::Canceled);
                }
                "unrunnable" => {
                    return Err(ExecutorError::Unrunnable("no such image".into()));
                }
                other => panic!("fake step: unknown word `{other}`"),
            }
        }
        Ok(StepExit::Exited(0))
    }
}

#[async_trait]
impl Executor for Fake {
    async fn run(
        &self,
        step: &Step,
        _events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        let attempt = {
            let mut counts = self.counts.lock().unwrap();
            let count = counts.entry(step.task_path.clone()).or_default();
            *count += 1;
            *count
        };
        self.attempts.lock().unwrap().push(Attempt {
            task: step.task_path.clone(),
            started: Instant::now(),
        });
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let exit = self.script(step, attempt, cancel).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        exit
    }

    fn shares_host_files(&self, _step: &Step) -> bool {
        true
    }
}

/// A pipeline under construction, as the compiler would write it (JSON form of the IR).
pub struct Pipeline {
    spec: Value,
}

/// `NAME:TYPE` pairs as definitions (`parameterType`, or an artifact's `schemaTitle` when the
/// type starts with `system.`).
fn definitions(pairs: &[&str]) -> Value {
    let mut parameters = Map::new();
    let mut artifacts = Map::new();
    for pair in pairs {
        let (name, ty) = pair.split_once(':').expect("NAME:TYPE");
        if ty.starts_with("system.") {
            artifacts.insert(
                name.into(),
                json!({"artifactType": {"schemaTitle": ty, "schemaVersion": "0.0.1"}}),
            );
        } else {
            parameters.insert(name.into(), json!({ "parameterType": ty }));
        }
    }
    json!({"parameters": parameters, "artifacts": artifacts})
}

impl Pipeline {
    pub fn new(name: &str) -> Self {
        Self {
            spec: json!({
                "pipelineInfo": {"name": name},
                "schemaVersion": "2.1.0",
                "sdkVersion": "kfp-2.17.0",
                "components": {},
                "deploymentSpec": {"executors": {}},
                "root": {"dag": {"tasks": {}}},
            }),
        }
    }

    /// A container component run by the fake executor: `args` is its script.
    pub fn step(mut self, name: &str, inputs: &[&str], outputs: &[&str], args: &[&str]) -> Self {
        self.spec["components"][name] = json!({
            "executorLabel": format!("exec-{name}"),
            "inputDefinitions": definitions(inputs),
            "outputDefinitions": definitions(outputs),
        });
        self.spec["deploymentSpec"]["executors"][format!("exec-{name}")] = json!({
            "container": {"image": "fake", "command": ["fake"], "args": args},
        });
        self
    }

    /// An importer component bringing in `uri` as a `system.Dataset`.
    pub fn importer(mut self, name: &str, uri: &str) -> Self {
        self.spec["components"][name] = json!({
            "executorLabel": format!("exec-{name}"),
            "outputDefinitions": definitions(&["artifact:system.Dataset"]),
        });
        self.spec["deploymentSpec"]["executors"][format!("exec-{name}")] = json!({
            "importer": {
                "artifactUri": {"constant": uri},
                "typeSchema": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"},
                "metadata": {"source": "fixture"},
            },
        });
        self
    }

    /// A DAG component: `dag` holds `tasks` and `outputs`.
    pub fn dag(mut self, name: &str, inputs: &[&str], outputs: &[&str], dag: Value) -> Self {
        self.spec["components"][name] = json!({
            "dag": dag,
            "inputDefinitions": definitions(inputs),
            "outputDefinitions": definitions(outputs),
        });
        self
    }

    pub fn root(mut self, inputs: Value, tasks: Value) -> Self {
        self.spec["root"] = json!({"dag": {"tasks": tasks}, "inputDefinitions": inputs});
        self
    }

    pub fn root_dag(mut self, inputs: Value, dag: Value, outputs: &[&str]) -> Self {
        self.spec["root"] = json!({
            "dag": dag,
            "inputDefinitions": inputs,
            "outputDefinitions": definitions(outputs),
        });
        self
    }

    pub fn load(&self) -> LoadedPipeline {
        let text = self.spec.to_string();
        kfbox_spec::parse_pipeline(Path::new("pipeline.json"), &text)
            .unwrap_or_else(|e| panic!("the test's pipeline does not load: {e}"))
    }
}

/// A task of a DAG: `name` runs `component` with `extra` merged in (inputs, dependencies,
/// policies).
pub fn task(name: &str, component: &str, extra: Value) -> (String, Value) {
    let mut task = json!({
        "taskInfo": {"name": name},
        "componentRef": {"name": component},
    });
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            task[key] = value;
        }
    }
    (name.to_owned(), task)
}

pub fn tasks(list: Vec<(String, Value)>) -> Value {
    Value::Object(list.into_iter().collect())
}

/// An input taken from a sibling's output parameter.
pub fn from_task(producer: &str, output: &str) -> Value {
    json!({"taskOutputParameter": {"producerTask": producer, "outputParameterKey": output}})
}

pub fn constant(value: Value) -> Value {
    json!({"runtimeValue": {"constant": value}})
}

pub fn from_parent(input: &str) -> Value {
    json!({"componentInputParameter": input})
}

/// The placeholder of an output parameter's file.
pub fn output_file(name: &str) -> String {
    format!("{{{{$.outputs.parameters['{name}'].output_file}}}}")
}

pub fn input(name: &str) -> String {
    format!("{{{{$.inputs.parameters['{name}']}}}}")
}

/// A home for runs: a store, run directories and the fake executor.
pub struct Harness {
    _home: tempfile::TempDir,
    pub runtime: Runtime,
    pub fake: Arc<Fake>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_slots(16)
    }

    pub fn with_slots(slots: usize) -> Self {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(&home.path().join("kfbox.sqlite")).unwrap();
        let runtime = Runtime {
            store: Arc::new(store),
            runs_dir: home.path().join("runs"),
            step_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            reuse_cache: true,
            gpus: GpuPlan::new(Vec::new(), false, GpuPolicy::Prefer),
            namespace: kfbox_namespace::Namespace::new(home.path()),
        };
        Self {
            _home: home,
            runtime,
            fake: Arc::new(Fake::default()),
        }
    }

    pub async fn run(&self, pipeline: &Pipeline, parameters: Value) -> RunSummary {
        self.start(pipeline, parameters, None, CancellationToken::new())
            .await
    }

    pub async fn start(
        &self,
        pipeline: &Pipeline,
        parameters: Value,
        retry_of: Option<String>,
        cancel: CancellationToken,
    ) -> RunSummary {
        let loaded = pipeline.load();
        let given: Vec<(String, kfbox_engine::GivenValue)> = parameters
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, kfbox_engine::GivenValue::Json(v)))
            .collect();
        let parameters = kfbox_engine::resolve_root_parameters(&loaded.spec, &given)
            .unwrap_or_else(|e| panic!("parameters: {e:?}"));
        let launched = launch(
            &self.runtime,
            Launch {
                spec_text: loaded.source.to_string(),
                pipeline: Arc::new(loaded),
                parameters,
                artifacts: Default::default(),
                display_name: None,
                experiment_id: None,
                retry_of,
            },
        )
        .unwrap();
        launched
            .execute(self.fake.clone(), EventSink::discard(), cancel)
            .await
    }
}

/// The summary's record of the task at `path`.
pub fn record<'a>(summary: &'a RunSummary, path: &str) -> &'a TaskRecord {
    summary
        .tasks
        .iter()
        .find(|t| t.path == path)
        .unwrap_or_else(|| panic!("no task `{path}` in {:#?}", summary.tasks))
}

pub fn state(summary: &RunSummary, path: &str) -> TaskState {
    record(summary, path).state
}

pub fn output(summary: &RunSummary, path: &str, name: &str) -> Value {
    record(summary, path).outputs.parameters[name].clone()
}
