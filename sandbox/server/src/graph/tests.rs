//! The graph built from a spec and executions: nesting, states, edges, large loops paged.

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
    let name = path.rsplit('/').next().unwrap_or_default();
    let kind = match name {
        "each" => "loop",
        _ if name.starts_with("iteration-") => "iteration",
        _ => "container",
    };
    props.insert("kfbox.kind".to_owned(), Prop::Text(kind.to_owned()));
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
    let graph = build(&spec(), &[], false, None);
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
    let graph = build(&spec(), &refs, true, None);
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

/// A loop's executions: every tenth iteration FAILED.
fn large_loop(iterations: usize) -> Vec<ExecutionRow> {
    let mut rows = vec![execution(1, "make", "SUCCEEDED")];
    for i in 0..iterations {
        let state = if i % 10 == 0 { "FAILED" } else { "SUCCEEDED" };
        let id = 10 + 2 * i as i64;
        rows.push(execution(id, &format!("each/iteration-{i}"), state));
        rows.push(execution(
            id + 1,
            &format!("each/iteration-{i}/train"),
            state,
        ));
    }
    rows
}

#[test]
fn a_large_loop_is_counted_by_state_and_its_iterations_left_out() {
    let graph_of = |iterations| {
        let rows = large_loop(iterations);
        let refs: Vec<&ExecutionRow> = rows.iter().collect();
        build(&spec(), &refs, true, None)
    };
    let graph = graph_of(1000);
    assert!(!graph.nodes.iter().any(|n| n.id.starts_with("each/")));
    let each = graph.nodes.iter().find(|n| n.id == "each").unwrap();
    assert!(each.paged);
    let states = each.iteration_states.as_ref().unwrap();
    assert_eq!((states["SUCCEEDED"], states["FAILED"]), (900, 100));
    // Every step that ran is counted, in the iterations left out too.
    assert_eq!(graph.step_states["FAILED"], 100);
    assert_eq!(graph.step_states["SUCCEEDED"], 901);
    // The graph's JSON does not grow with the iterations it leaves out (the counts' digits
    // aside).
    let size = |g: &super::Graph| serde_json::to_string(g).unwrap().len();
    assert!(size(&graph_of(5000)) - size(&graph) < 8);
    // A loop of at most 40 iterations has them all.
    let small = graph_of(40);
    assert!(!small.nodes.iter().find(|n| n.id == "each").unwrap().paged);
    assert!(small
        .nodes
        .iter()
        .any(|n| n.id == "each/iteration-39/train"));
}

#[test]
fn a_page_of_a_large_loop_holds_its_iterations_of_one_state() {
    let rows = large_loop(1000);
    let refs: Vec<&ExecutionRow> = rows.iter().collect();
    let page = super::LoopPage {
        loop_path: "each".to_owned(),
        offset: 50,
        state: Some("FAILED".to_owned()),
    };
    let graph = build(&spec(), &refs, true, Some(page));
    let iterations: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| n.kind == "iteration")
        .map(|n| n.id.as_str())
        .collect();
    assert_eq!(iterations.len(), 50);
    assert_eq!(iterations[0], "each/iteration-500");
    assert_eq!(iterations[49], "each/iteration-990");
    assert!(graph
        .nodes
        .iter()
        .any(|n| n.id == "each/iteration-990/train"));
    let shown = graph.page.as_ref().unwrap();
    assert_eq!((shown.matched, shown.limit), (100, 50));
}
