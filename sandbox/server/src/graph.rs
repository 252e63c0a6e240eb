//! A run's graph for the UI: the pipeline's tasks as nodes nested in their groups (nested
//! pipelines, conditions, loops and their iterations), the dependencies between siblings as
//! edges, and each node's newest execution laid over it. Without executions it is the
//! pipeline's preview.
//!
//! A loop of more than [`INLINE_ITERATIONS`] iterations is drawn collapsed: its node counts
//! its iterations by state and the graph holds none of them, so its size does not grow with
//! them; a [`LoopPage`] asks for one page of one such loop's iterations, filtered by state.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kfbox_engine::recorded::{recorded_root, ExecutionKind, RecordedTask};
use kfbox_spec::ir::{ComponentSpec, DagSpec, PipelineSpec, TaskSpec};
use kfbox_store::ExecutionRow;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Loops of at most this many iterations have them all in the graph.
pub const INLINE_ITERATIONS: usize = 40;

/// Iterations in a page of a loop's.
pub const PAGE_ITERATIONS: usize = 50;

/// One page of a large loop's iterations, asked for by the loop's path.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoopPage {
    /// The loop's node id.
    #[serde(rename = "loop")]
    pub loop_path: String,
    /// Iterations skipped, among those of `state`.
    pub offset: usize,
    /// Only iterations in this state (SUCCEEDED, FAILED, RUNNING...).
    pub state: Option<String>,
}

/// The page a graph holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShownPage {
    #[serde(flatten)]
    pub page: LoopPage,
    /// Iterations of that state in all (all iterations without `state`).
    pub matched: usize,
    pub limit: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Every step's state, counted over the whole run: the steps of iterations left out of
    /// `nodes` too (those that started).
    pub step_states: BTreeMap<String, usize>,
    /// The page of a large loop's iterations in `nodes`, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<ShownPage>,
    /// A run's parameter values as it ran, defaults included (none for a version preview).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    /// A run's outputs, once it produced them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Map<String, Value>>,
}

impl Graph {
    /// With the run's own values: those its root execution recorded.
    pub fn with_run_values(mut self, executions: &[&ExecutionRow]) -> Self {
        if let Some(root) = recorded_root(executions.iter().copied()) {
            self.parameters = root.inputs;
            self.outputs = root.outputs.filter(|outputs| !outputs.is_empty());
        }
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Node {
    /// The task's path in the run (`loop/iteration-0/train`): unique, and the node id the
    /// log and artifact routes take.
    pub id: String,
    /// The task name in its DAG (`iteration-0` for an iteration).
    pub name: String,
    /// container, importer, dag, condition, loop, iteration.
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// The group the node is drawn in; `None` at the top level.
    pub parent: Option<String>,
    /// The component the task runs.
    pub component: String,
    /// PENDING (not started yet), NOT_RUN (the run ended without it), RUNNING, SUCCEEDED,
    /// CACHED, FAILED, SKIPPED, CANCELED.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<i64>,
    /// Attempts the step took; more than one means it was retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iteration_count: Option<i64>,
    /// A loop's iterations that started, by state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iteration_states: Option<BTreeMap<String, usize>>,
    /// A loop of more than [`INLINE_ITERATIONS`] iterations: they are in the graph only a
    /// page at a time, when asked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it ended as it did (skipped by a condition, canceled, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What a running task is busy with before its program starts (installing its
    /// `packages_to_install`, with progress), for runs this server executes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The execution a cache hit reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<String>,
    /// Parameter values in and out.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub inputs: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Map<String, Value>>,
    /// Artifacts in and out: `[name, artifact id]` pairs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<Value>>)]
    pub input_artifacts: Vec<(String, i64)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<Value>>)]
    pub output_artifacts: Vec<(String, i64)>,
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// The graph of `spec`; `executions` are the run's newest execution per task path (none for a
/// preview); `ended` says whether the run is over, so tasks that never started are NOT_RUN
/// rather than PENDING; `page`: the iterations of one large loop to include.
pub fn build(
    spec: &PipelineSpec,
    executions: &[&ExecutionRow],
    ended: bool,
    page: Option<LoopPage>,
) -> Graph {
    let by_path: HashMap<String, RecordedTask> = executions
        .iter()
        .map(|e| RecordedTask::of(e))
        .map(|task| (task.path.clone(), task))
        .collect();
    let mut builder = Builder {
        spec,
        by_path,
        ended,
        page,
        graph: Graph {
            nodes: Vec::new(),
            edges: Vec::new(),
            step_states: BTreeMap::new(),
            page: None,
            parameters: None,
            outputs: None,
        },
    };
    if let Some(dag) = &spec.root.dag {
        builder.dag(dag, "", None);
    }
    builder.count_steps();
    builder.graph
}

struct Builder<'a> {
    spec: &'a PipelineSpec,
    by_path: HashMap<String, RecordedTask>,
    ended: bool,
    page: Option<LoopPage>,
    graph: Graph,
}

impl<'a> Builder<'a> {
    fn dag(&mut self, dag: &'a DagSpec, prefix: &str, parent: Option<&str>) {
        for (name, task) in &dag.tasks {
            let path = join(prefix, name);
            let component = self.spec.components.get(&task.component_ref.name);
            let looped = task.parameter_iterator.is_some() || task.artifact_iterator.is_some();
            let body = component.and_then(|c| c.dag.as_ref());
            let kind = match (looped, body) {
                (true, _) => "loop",
                (false, Some(_)) if task.trigger_policy.condition.is_some() => "condition",
                (false, Some(_)) => "dag",
                (false, None) if self.is_importer(component) => "importer",
                (false, None) => "container",
            };
            self.node(&path, name, kind, parent, task);
            for producer in upstream(task) {
                if dag.tasks.contains_key(&producer) {
                    self.graph.edges.push(Edge {
                        from: join(prefix, &producer),
                        to: path.clone(),
                    });
                }
            }
            let Some(body) = body else { continue };
            if !looped {
                self.dag(body, &path, Some(&path));
                continue;
            }
            let iterations = self.iterations(&path);
            if iterations.is_empty() {
                // Not started yet: the body once, as what each iteration will run.
                self.dag(body, &path, Some(&path));
            }
            for index in self.shown_iterations(&path, iterations) {
                let name = format!("iteration-{index}");
                let iteration = join(&path, &name);
                self.node(&iteration, &name, "iteration", Some(&path), task);
                self.dag(body, &iteration, Some(&iteration));
            }
        }
    }

    fn is_importer(&self, component: Option<&ComponentSpec>) -> bool {
        component
            .and_then(|c| c.executor_label.as_ref())
            .and_then(|label| self.spec.deployment_spec.executors.get(label))
            .is_some_and(|executor| executor.importer.is_some())
    }

    /// Of a loop's iterations, those the graph holds: all of a small loop's, the page asked
    /// for of a large one's. The loop's node (the last one pushed) gets their states.
    fn shown_iterations(&mut self, loop_path: &str, iterations: Vec<u64>) -> Vec<u64> {
        let state_of = |index: &u64| {
            self.by_path
                .get(&format!("{loop_path}/iteration-{index}"))
                .map_or("PENDING", |task| task.state.as_str())
        };
        let states = tally(iterations.iter().map(state_of));
        let paged = iterations.len() > INLINE_ITERATIONS;
        let shown = match self.page.as_ref() {
            _ if !paged => iterations,
            Some(page) if page.loop_path == loop_path => {
                let matching: Vec<u64> = iterations
                    .into_iter()
                    .filter(|index| page.state.as_deref().is_none_or(|s| state_of(index) == s))
                    .collect();
                let shown: Vec<u64> = matching
                    .iter()
                    .skip(page.offset)
                    .take(PAGE_ITERATIONS)
                    .copied()
                    .collect();
                self.graph.page = Some(ShownPage {
                    page: page.clone(),
                    matched: matching.len(),
                    limit: PAGE_ITERATIONS,
                });
                shown
            }
            _ => Vec::new(),
        };
        if let Some(node) = self.graph.nodes.last_mut() {
            node.iteration_states = Some(states);
            node.paged = paged;
        }
        shown
    }

    /// Every step's state: each step that started (in the graph or in an iteration left out
    /// of it), and the steps in the graph that did not.
    fn count_steps(&mut self) {
        let started = self
            .by_path
            .values()
            .filter(|task| {
                matches!(
                    task.kind,
                    Some(ExecutionKind::Container | ExecutionKind::Importer)
                )
            })
            .map(|task| task.state.as_str());
        let not_started = self
            .graph
            .nodes
            .iter()
            .filter(|node| node.is_step() && node.execution_id.is_none())
            .map(|node| node.state.as_str());
        self.graph.step_states = tally(started.chain(not_started));
    }

    /// Indexes of the loop's iterations that have executions, in order.
    fn iterations(&self, loop_path: &str) -> Vec<u64> {
        let prefix = format!("{loop_path}/iteration-");
        let indexes: BTreeSet<u64> = self
            .by_path
            .keys()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('/').next()?.parse().ok())
            .collect();
        indexes.into_iter().collect()
    }

    fn node(
        &mut self,
        path: &str,
        name: &str,
        kind: &'static str,
        parent: Option<&str>,
        task: &TaskSpec,
    ) {
        let execution = self.by_path.get(path);
        let mut node = Node::new(path, name, kind, parent, execution, self.ended);
        node.component = task.component_ref.name.clone();
        if kind == "condition" {
            node.condition = task.trigger_policy.condition.clone();
        }
        self.graph.nodes.push(node);
    }
}

impl Node {
    fn is_step(&self) -> bool {
        self.kind == "container" || self.kind == "importer"
    }

    fn new(
        path: &str,
        name: &str,
        kind: &'static str,
        parent: Option<&str>,
        task: Option<&RecordedTask>,
        ended: bool,
    ) -> Self {
        let state = match task {
            Some(task) => task.state.as_str().to_owned(),
            None if ended => "NOT_RUN".to_owned(),
            None => "PENDING".to_owned(),
        };
        let field = |get: fn(&RecordedTask) -> &Option<String>| task.and_then(|t| get(t).clone());
        Node {
            id: path.to_owned(),
            name: name.to_owned(),
            kind,
            parent: parent.map(str::to_owned),
            component: String::new(),
            state,
            execution_id: task.map(|t| t.execution_id),
            attempts: task.map(|t| i64::from(t.attempts)),
            iteration_count: (kind == "loop")
                .then(|| task.and_then(|t| t.iteration_count).map(|n| n as i64))
                .flatten(),
            iteration_states: None,
            paged: false,
            condition: None,
            started_at: field(|t| &t.started_at),
            finished_at: field(|t| &t.finished_at),
            error: field(|t| &t.error),
            reason: field(|t| &t.reason),
            phase: None,
            cached_from: field(|t| &t.cached_from),
            inputs: task.and_then(|t| t.inputs.clone()),
            outputs: task.and_then(|t| t.outputs.clone()),
            input_artifacts: task.map(|t| t.input_artifacts.clone()).unwrap_or_default(),
            output_artifacts: task.map(|t| t.output_artifacts.clone()).unwrap_or_default(),
        }
    }
}

/// The graph of a run recorded without its spec (by a kfbox before specs were kept): its
/// tasks nested by path, with no edges.
pub fn from_executions(executions: &[&ExecutionRow], ended: bool) -> Graph {
    let nodes: Vec<Node> = executions
        .iter()
        .map(|e| RecordedTask::of(e))
        .filter(|task| !task.path.is_empty())
        .map(|task| {
            let (parent, name) = match task.path.rsplit_once('/') {
                Some((parent, name)) => (Some(parent), name),
                None => (None, task.path.as_str()),
            };
            let kind = match task.kind {
                Some(ExecutionKind::Importer) => "importer",
                Some(ExecutionKind::Dag) => "dag",
                Some(ExecutionKind::Loop) => "loop",
                Some(ExecutionKind::Iteration) => "iteration",
                _ => "container",
            };
            Node::new(&task.path, name, kind, parent, Some(&task), ended)
        })
        .collect();
    let step_states = tally(
        nodes
            .iter()
            .filter(|node| node.is_step())
            .map(|node| node.state.as_str()),
    );
    Graph {
        nodes,
        edges: Vec::new(),
        step_states,
        page: None,
        parameters: None,
        outputs: None,
    }
}

/// How many of each state.
fn tally<'s>(states: impl Iterator<Item = &'s str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for state in states {
        *counts.entry(state.to_owned()).or_default() += 1;
    }
    counts
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The sibling tasks a task waits for: its declared dependencies and the producers of its
/// inputs (older compilers leave some of those out of `dependentTasks`).
fn upstream(task: &TaskSpec) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = task.dependent_tasks.iter().cloned().collect();
    for input in task.inputs.parameters.values() {
        if let Some(output) = &input.task_output_parameter {
            names.insert(output.producer_task.clone());
        }
        if let Some(status) = &input.task_final_status {
            names.insert(status.producer_task.clone());
        }
    }
    for input in task.inputs.artifacts.values() {
        if let Some(output) = &input.task_output_artifact {
            names.insert(output.producer_task.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests;
