//! ParallelFor: items, `parallelismLimit`, fan-in (`dsl.Collected`), failing iterations.

use kfbox_engine::model::{RunState, TaskState};
use kfbox_engine::recorded::{ExecutionKind, RecordedTask};
use serde_json::{json, Value};

use crate::support::*;

const ITEM: &str = "pipelinechannel--loop-item-param-1";

/// A loop over `items` whose body echoes each item; its `ys` output collects them.
fn loop_pipeline(items: Value, limit: u32, body_args: &[&str]) -> Pipeline {
    loop_over("LIST", items, limit, body_args)
}

/// [`loop_pipeline`] with the items input of type `items_type`.
fn loop_over(items_type: &str, items: Value, limit: u32, body_args: &[&str]) -> Pipeline {
    Pipeline::new("loop")
        .step(
            "comp-each",
            &[&format!("{ITEM}:NUMBER_INTEGER")],
            &["y:NUMBER_INTEGER"],
            body_args,
        )
        .dag(
            "comp-for-loop-1",
            &[
                &format!("{ITEM}:NUMBER_INTEGER"),
                &format!("pipelinechannel--items:{items_type}"),
            ],
            &["ys:LIST"],
            json!({
                "tasks": tasks(vec![task("each", "comp-each", json!({
                    "inputs": {"parameters": {ITEM: from_parent(ITEM)}},
                }))]),
                "outputs": {"parameters": {"ys": {"valueFromParameter": {"producerSubtask": "each", "outputParameterKey": "y"}}}},
            }),
        )
        .root_dag(
            json!({"parameters": {"items": {"parameterType": items_type}}}),
            json!({
                "tasks": tasks(vec![task("for-loop-1", "comp-for-loop-1", json!({
                    "inputs": {"parameters": {"pipelinechannel--items": from_parent("items")}},
                    "parameterIterator": {"items": items, "itemInput": ITEM},
                    "iteratorPolicy": {"parallelismLimit": limit},
                }))]),
                "outputs": {"parameters": {"ys": {"valueFromParameter": {"producerSubtask": "for-loop-1", "outputParameterKey": "ys"}}}},
            }),
            &["ys:LIST"],
        )
}

fn echo_item() -> Vec<String> {
    vec!["write".into(), output_file("y"), input(ITEM)]
}

fn words(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

#[tokio::test(start_paused = true)]
async fn a_loop_fans_out_over_raw_items_and_collects_in_order() {
    let args = echo_item();
    let pipeline = loop_pipeline(json!({"raw": "[3, 1, 2]"}), 0, &words(&args));
    let summary = Harness::new().run(&pipeline, json!({"items": []})).await;
    assert_eq!(summary.state, RunState::Succeeded, "{summary:#?}");
    assert_eq!(record(&summary, "for-loop-1").iterations, Some(3));
    assert_eq!(summary.outputs["ys"], json!([3, 1, 2]));
    assert_eq!(
        state(&summary, "for-loop-1/iteration-2/each"),
        TaskState::Succeeded
    );
}

#[tokio::test(start_paused = true)]
async fn a_loop_runs_over_an_input_list() {
    let args = echo_item();
    let pipeline = loop_pipeline(
        json!({"inputParameter": "pipelinechannel--items"}),
        0,
        &words(&args),
    );
    let summary = Harness::new()
        .run(&pipeline, json!({"items": [5, 6]}))
        .await;
    assert_eq!(summary.outputs["ys"], json!([5, 6]));
}

#[tokio::test(start_paused = true)]
async fn parallelism_limit_bounds_iterations_at_once() {
    let args = ["sleep", "100", "write", &output_file("y"), &input(ITEM)].map(String::from);
    let pipeline = loop_pipeline(json!({"raw": "[1, 2, 3, 4, 5]"}), 2, &words(&args));
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({"items": []})).await;
    assert_eq!(summary.state, RunState::Succeeded);
    assert_eq!(harness.fake.peak(), 2);
}

#[tokio::test(start_paused = true)]
async fn without_a_limit_all_iterations_run_at_once() {
    let args = ["sleep", "100", "write", &output_file("y"), &input(ITEM)].map(String::from);
    let pipeline = loop_pipeline(json!({"raw": "[1, 2, 3, 4, 5]"}), 0, &words(&args));
    let harness = Harness::new();
    harness.run(&pipeline, json!({"items": []})).await;
    assert_eq!(harness.fake.peak(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_failed_iteration_fails_the_loop_and_starts_no_new_one() {
    // One at a time: iteration 0 fails, so 1 and 2 never start.
    let pipeline = loop_pipeline(json!({"raw": "[1, 2, 3]"}), 1, &["exit", "1"]);
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({"items": []})).await;
    assert_eq!(summary.state, RunState::Failed);
    let the_loop = record(&summary, "for-loop-1");
    assert_eq!(the_loop.state, TaskState::Failed);
    assert_eq!(the_loop.error.as_deref(), Some("iteration(s) 0 failed"));
    assert_eq!(harness.fake.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_empty_loop_succeeds_with_empty_lists() {
    let args = echo_item();
    let pipeline = loop_pipeline(json!({"raw": "[]"}), 0, &words(&args));
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({"items": []})).await;
    assert_eq!(summary.state, RunState::Succeeded);
    assert_eq!(summary.outputs["ys"], json!([]));
    assert_eq!(harness.fake.attempts().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn items_that_are_not_a_list_fail_the_loop() {
    let args = echo_item();
    let pipeline = loop_over(
        "STRING",
        json!({"inputParameter": "pipelinechannel--items"}),
        0,
        &words(&args),
    );
    let summary = Harness::new()
        .run(&pipeline, json!({"items": "{\"a\": 1}"}))
        .await;
    assert_eq!(state(&summary, "for-loop-1"), TaskState::Failed);
    let error = record(&summary, "for-loop-1").error.clone().unwrap();
    assert!(error.starts_with("loop items are not a list"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn artifacts_fan_in_as_a_list() {
    let pipeline = Pipeline::new("artifact-loop")
        .step(
            "comp-make",
            &[&format!("{ITEM}:NUMBER_INTEGER")],
            &["data:system.Dataset"],
            &[
                "write",
                "{{$.outputs.artifacts['data'].path}}",
                &input(ITEM),
            ],
        )
        .dag(
            "comp-for-loop-1",
            &[&format!("{ITEM}:NUMBER_INTEGER")],
            &["data:system.Dataset"],
            json!({
                "tasks": tasks(vec![task("make", "comp-make", json!({
                    "inputs": {"parameters": {ITEM: from_parent(ITEM)}},
                }))]),
                "outputs": {"artifacts": {"data": {"artifactSelectors": [{"producerSubtask": "make", "outputArtifactKey": "data"}]}}},
            }),
        )
        .root(
            json!({}),
            tasks(vec![task("for-loop-1", "comp-for-loop-1", json!({
                "parameterIterator": {"items": {"raw": "[10, 20]"}, "itemInput": ITEM},
            }))]),
        );
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Succeeded, "{summary:#?}");
    let collected = &record(&summary, "for-loop-1").outputs.artifacts["data"];
    assert_eq!(collected.len(), 2);
    let texts: Vec<String> = collected
        .iter()
        .map(|a| fs_err::read_to_string(&a.uri).unwrap())
        .collect();
    assert_eq!(texts, ["10", "20"]);
}

/// The recorded inputs of each iteration of `summary`'s loop, in iteration order.
fn iteration_inputs(harness: &Harness, summary: &kfbox_engine::model::RunSummary) -> Vec<Value> {
    let store = &harness.runtime.store;
    let run = store
        .find_run(&kfbox_store::RunSelector(summary.run_id.clone()))
        .unwrap();
    let mut iterations: Vec<RecordedTask> = store
        .run_executions(&run)
        .unwrap()
        .iter()
        .map(RecordedTask::of)
        .filter(|t| t.kind == Some(ExecutionKind::Iteration))
        .collect();
    iterations.sort_by(|a, b| a.path.cmp(&b.path));
    iterations
        .into_iter()
        .map(|t| Value::Object(t.inputs.unwrap_or_default()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn iterations_keep_the_list_only_when_their_body_reads_it() {
    // The body reads only the item: n iterations do not each carry (and record) n items.
    let args = echo_item();
    let pipeline = loop_pipeline(
        json!({"inputParameter": "pipelinechannel--items"}),
        0,
        &words(&args),
    );
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({"items": [5, 6]})).await;
    assert_eq!(summary.outputs["ys"], json!([5, 6]));
    assert_eq!(
        iteration_inputs(&harness, &summary),
        vec![json!({ITEM: 5}), json!({ITEM: 6})]
    );

    // The body reads the list too (a nested loop over the same items would): it is there.
    let list = "pipelinechannel--items";
    let pipeline = Pipeline::new("loop")
        .step(
            "comp-each",
            &[&format!("{list}:LIST")],
            &["y:LIST"],
            &["write", &output_file("y"), &input(list)],
        )
        .dag(
            "comp-for-loop-1",
            &[&format!("{ITEM}:NUMBER_INTEGER"), &format!("{list}:LIST")],
            &["ys:LIST"],
            json!({
                "tasks": tasks(vec![task("each", "comp-each", json!({
                    "inputs": {"parameters": {list: from_parent(list)}},
                }))]),
                "outputs": {"parameters": {"ys": {"valueFromParameter": {"producerSubtask": "each", "outputParameterKey": "y"}}}},
            }),
        )
        .root_dag(
            json!({"parameters": {"items": {"parameterType": "LIST"}}}),
            json!({
                "tasks": tasks(vec![task("for-loop-1", "comp-for-loop-1", json!({
                    "inputs": {"parameters": {list: from_parent("items")}},
                    "parameterIterator": {"items": {"inputParameter": list}, "itemInput": ITEM},
                }))]),
                "outputs": {"parameters": {"ys": {"valueFromParameter": {"producerSubtask": "for-loop-1", "outputParameterKey": "ys"}}}},
            }),
            &["ys:LIST"],
        );
    let summary = harness.run(&pipeline, json!({"items": [5, 6]})).await;
    assert_eq!(summary.state, RunState::Succeeded, "{summary:#?}");
    assert_eq!(summary.outputs["ys"], json!([[5, 6], [5, 6]]));
    assert_eq!(
        iteration_inputs(&harness, &summary),
        vec![
            json!({ITEM: 5, list: [5, 6]}),
            json!({ITEM: 6, list: [5, 6]})
        ]
    );
}
