//! A run's graph for the UI: the pipeline's tasks as nodes nested in their groups (nested
//! pipelines, conditions, loops and their iterations), the dependencies between siblings as
//! edges, and each node's newest execution laid over it. Without executions it is the
//! pipeline's preview.

use std::collections::{BTreeSet, HashMap};

use kfbox_engine::recorded::{recorded_root, ExecutionKind, RecordedTask};
use kfbox_spec::ir::{ComponentSpec, DagSpec, PipelineSpec, TaskSpec};
use kfbox_store::ExecutionRow;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
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
/// rather than PENDING.
pub fn build(spec: &PipelineSpec, executions: &[&ExecutionRow], ended: bool) -> Graph {
    let by_path: HashMap<String, RecordedTask> = executions
        .iter()
        .map(|e| RecordedTask::of(e))
        .map(|task| (task.path.clone(), task))
        .collect();
    let mut builder = Builder {
        spec,
        by_path,
        ended,
        graph: Graph {
            nodes: Vec::new(),
            edges: Vec::new(),
            parameters: None,
            outputs: None,
        },
    };
    if let Some(dag) = &spec.root.dag {
        builder.dag(dag, "", None);
    }
    builder.graph
}

struct Builder<'a> {
    spec: &'a PipelineSpec,
    by_path: HashMap<String, RecordedTask>,
    ended: bool,
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
            for index in iterations {
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
    let nodes = executions
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
    Graph {
        nodes,
        edges: Vec::new(),
        parameters: None,
        outputs: None,
    }
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
mod tests {
    use std::collections::BTreeMap;

    use kfbox_store::value::Prop;
    use kfbox_store::ExecutionRow;

    use super::build;

    const SPEC: &str = r#"
pipelineInfo: {name: p}
root:
  dag:
    tasks:
      make:
        taskInfo: {name: make}
        componentRef: {name: comp-make}
      each:
        taskInfo: {name: each}
        componentRef: {name: comp-each}
        dependentTasks: [make]
        parameterIterator:
          itemInput: item
          items: {inputParameter: pipelinechannel--make-Output}
      check:
        taskInfo: {name: check}
        componentRef: {name: comp-check}
        triggerPolicy: {condition: "inputs.parameter_values['x'] > 1"}
      last:
        taskInfo: {name: last}
        componentRef: {name: comp-make}
        inputs:
          parameters:
            x: {taskOutputParameter: {producerTask: make, outputParameterKey: Output}}
components:
  comp-make: {executorLabel: exec-make}
  comp-each:
    dag:
      tasks:
        train: {taskInfo: {name: train}, componentRef: {name: comp-make}}
        score:
          taskInfo: {name: score}
          componentRef: {name: comp-make}
          dependentTasks: [train]
  comp-check:
    dag:
      tasks:
        inner: {taskInfo: {name: inner}, componentRef: {name: comp-make}}
deploymentSpec:
  executors:
    exec-make: {container: {image: python:3.11, command: [echo]}}
"#;

    fn spec() -> kfbox_spec::ir::PipelineSpec {
        let documents = kfbox_spec::parse_documents(std::path::Path::new("p.yaml"), SPEC).unwrap();
        kfbox_spec::pipeline_from_documents(std::path::Path::new("p.yaml"), documents)
            .unwrap()
            .spec
    }

    fn execution(id: i64, path: &str, state: &str) -> ExecutionRow {
        let mut props = BTreeMap::new();
        props.insert("kfbox.path".to_owned(), Prop::Text(path.to_owned()));
        props.insert("kfbox.state".to_owned(), Prop::Text(state.to_owned()));
        ExecutionRow {
            id,
            type_name: "system.ContainerExecution".into(),
            state: "COMPLETE",
            props,
            inputs: Vec::new(),
            outputs: Vec::new(),
            run_id: None,
        }
    }

    #[test]
    fn a_preview_shows_each_group_once_with_edges_between_siblings() {
        let graph = build(&spec(), &[], false);
        let ids: Vec<(&str, &str, Option<&str>)> = graph
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.kind, n.parent.as_deref()))
            .collect();
        assert_eq!(
            ids,
            [
                ("make", "container", None),
                ("each", "loop", None),
                ("each/train", "container", Some("each")),
                ("each/score", "container", Some("each")),
                ("check", "condition", None),
                ("check/inner", "container", Some("check")),
                ("last", "container", None),
            ]
        );
        assert!(graph.nodes.iter().all(|n| n.state == "PENDING"));
        let edges: Vec<(&str, &str)> = graph
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(
            edges,
            [
                ("make", "each"),
                ("each/train", "each/score"),
                ("make", "last")
            ]
        );
    }

    #[test]
    fn without_a_spec_the_tasks_nest_by_path() {
        let rows = [
            execution(1, "", "RUNNING"),
            execution(2, "each", "SUCCEEDED"),
            execution(3, "each/iteration-0", "SUCCEEDED"),
            execution(4, "each/iteration-0/train", "CACHED"),
        ];
        let refs: Vec<&ExecutionRow> = rows.iter().collect();
        let graph = super::from_executions(&refs, true);
        let nodes: Vec<(&str, &str, Option<&str>, &str)> = graph
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id.as_str(),
                    n.name.as_str(),
                    n.parent.as_deref(),
                    n.state.as_str(),
                )
            })
            .collect();
        assert_eq!(
            nodes,
            [
                ("each", "each", None, "SUCCEEDED"),
                ("each/iteration-0", "iteration-0", Some("each"), "SUCCEEDED"),
                (
                    "each/iteration-0/train",
                    "train",
                    Some("each/iteration-0"),
                    "CACHED"
                ),
            ]
        );
    }

    #[test]
    fn iterations_that_ran_become_groups_and_executions_give_states() {
        let rows = [
            execution(1, "make", "SUCCEEDED"),
            execution(2, "each", "RUNNING"),
            execution(3, "each/iteration-0", "SUCCEEDED"),
            execution(4, "each/iteration-0/train", "CACHED"),
            execution(5, "each/iteration-0/score", "SUCCEEDED"),
            execution(6, "each/iteration-1", "RUNNING"),
            execution(7, "each/iteration-1/train", "FAILED"),
        ];
        let refs: Vec<&ExecutionRow> = rows.iter().collect();
        let graph = build(&spec(), &refs, true);
        let state = |id: &str| {
            graph
                .nodes
                .iter()
                .find(|n| n.id == id)
                .map(|n| n.state.as_str())
        };
        assert_eq!(state("each/iteration-0/train"), Some("CACHED"));
        assert_eq!(state("each/iteration-1/train"), Some("FAILED"));
        assert_eq!(state("each/iteration-1/score"), Some("NOT_RUN"));
        assert_eq!(
            state("each/train"),
            None,
            "no template once iterations exist"
        );
        assert_eq!(
            graph
                .nodes
                .iter()
                .find(|n| n.id == "each/iteration-1/score")
                .and_then(|n| n.parent.as_deref()),
            Some("each/iteration-1")
        );
        assert!(graph
            .edges
            .iter()
            .any(|e| e.from == "each/iteration-1/train" && e.to == "each/iteration-1/score"));
    }
}
