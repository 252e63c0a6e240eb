//! Walking a DAG: order, concurrency, fail-fast, trigger strategies, conditions, nested DAGs.

use kfbox_engine::model::{RunState, TaskState};
use serde_json::json;

use crate::support::*;

/// `add-one`: writes its input plus nothing (the fake cannot add): the value it got.
fn echo(pipeline: Pipeline) -> Pipeline {
    pipeline.step(
        "comp-echo",
        &["x:NUMBER_INTEGER"],
        &["y:NUMBER_INTEGER"],
        &["write", &output_file("y"), &input("x")],
    )
}

#[tokio::test(start_paused = true)]
async fn outputs_flow_downstream_and_out_of_the_run() {
    let pipeline = echo(Pipeline::new("chain")).root_dag(
        json!({"parameters": {"x": {"parameterType": "NUMBER_INTEGER"}}}),
        json!({
            "tasks": tasks(vec![
                task("a", "comp-echo", json!({"inputs": {"parameters": {"x": from_parent("x")}}})),
                task("b", "comp-echo", json!({"inputs": {"parameters": {"x": from_task("a", "y")}}})),
            ]),
            "outputs": {"parameters": {"y": {"valueFromParameter": {"producerSubtask": "b", "outputParameterKey": "y"}}}},
        }),
        &["y:NUMBER_INTEGER"],
    );
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({"x": 41})).await;
    assert_eq!(summary.state, RunState::Succeeded, "{summary:#?}");
    assert_eq!(output(&summary, "b", "y"), json!(41));
    assert_eq!(summary.outputs["y"], json!(41));
    let attempts = harness.fake.attempts();
    let order: Vec<&str> = attempts.iter().map(|a| a.task.as_str()).collect();
    assert_eq!(order, ["a", "b"]);
}

fn sleeper(pipeline: Pipeline) -> Pipeline {
    pipeline.step("comp-nap", &[], &[], &["sleep", "1000"])
}

#[tokio::test(start_paused = true)]
async fn independent_tasks_run_at_once() {
    let pipeline = sleeper(Pipeline::new("wide")).root(
        json!({}),
        tasks(
            (0..4)
                .map(|i| task(&format!("t{i}"), "comp-nap", json!({})))
                .collect(),
        ),
    );
    let harness = Harness::new();
    let started = tokio::time::Instant::now();
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Succeeded);
    assert_eq!(harness.fake.peak(), 4);
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn step_slots_bound_steps_across_the_run() {
    let pipeline = sleeper(Pipeline::new("wide")).root(
        json!({}),
        tasks(
            (0..5)
                .map(|i| task(&format!("t{i}"), "comp-nap", json!({})))
                .collect(),
        ),
    );
    let harness = Harness::with_slots(2);
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Succeeded);
    assert_eq!(harness.fake.peak(), 2);
}

fn failing(pipeline: Pipeline) -> Pipeline {
    pipeline
        .step("comp-fail", &[], &["y:NUMBER_INTEGER"], &["exit", "3"])
        .step("comp-nap", &[], &[], &["sleep", "1000"])
        .step("comp-ok", &[], &[], &[])
}

#[tokio::test(start_paused = true)]
async fn after_a_failure_no_new_task_starts_but_running_ones_finish() {
    let pipeline = failing(Pipeline::new("fail-fast")).root(
        json!({}),
        tasks(vec![
            task("fail", "comp-fail", json!({})),
            task("slow", "comp-nap", json!({})),
            task("after-slow", "comp-ok", json!({"dependentTasks": ["slow"]})),
        ]),
    );
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Failed);
    assert_eq!(state(&summary, "fail"), TaskState::Failed);
    assert_eq!(state(&summary, "slow"), TaskState::Succeeded);
    assert_eq!(state(&summary, "after-slow"), TaskState::Skipped);
    assert_eq!(
        record(&summary, "after-slow").reason.as_deref(),
        Some("not started: task `fail` failed earlier in this DAG")
    );
    assert_eq!(harness.fake.ran("after-slow"), 0);
    assert_eq!(
        summary.error.as_deref(),
        Some("task `fail` failed: the step exited with code 3 (see its log)")
    );
}

#[tokio::test(start_paused = true)]
async fn dependents_of_a_failed_task_are_skipped_with_the_reason() {
    let pipeline = echo(failing(Pipeline::new("downstream"))).root(
        json!({}),
        tasks(vec![
            task("fail", "comp-fail", json!({})),
            task(
                "use",
                "comp-echo",
                json!({"inputs": {"parameters": {"x": from_task("fail", "y")}}}),
            ),
        ]),
    );
    let summary = Harness::new().run(&pipeline, json!({})).await;
    assert_eq!(state(&summary, "use"), TaskState::Skipped);
    assert_eq!(
        record(&summary, "use").reason.as_deref(),
        Some("upstream task `fail` ended FAILED")
    );
}

#[tokio::test(start_paused = true)]
async fn all_upstream_tasks_completed_runs_after_a_failure_and_sees_its_status() {
    let pipeline = failing(Pipeline::new("exit-handler"))
        .step(
            "comp-report",
            &["status:TASK_FINAL_STATUS"],
            &["seen:STRUCT"],
            &["write", &output_file("seen"), &input("status")],
        )
        .root(
            json!({}),
            tasks(vec![
                task("fail", "comp-fail", json!({})),
                task(
                    "report",
                    "comp-report",
                    json!({
                        "dependentTasks": ["fail"],
                        "triggerPolicy": {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"},
                        "inputs": {"parameters": {"status": {"taskFinalStatus": {"producerTask": "fail"}}}},
                    }),
                ),
            ]),
        );
    let summary = Harness::new().run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Failed);
    assert_eq!(state(&summary, "report"), TaskState::Succeeded);
    let seen = output(&summary, "report", "seen");
    assert_eq!(seen["state"], "FAILED");
    assert_eq!(seen["pipelineTaskName"], "fail");
    assert_eq!(
        seen["error"]["message"],
        "the step exited with code 3 (see its log)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_false_condition_skips_the_task_and_its_dependents_still_run() {
    let condition = "inputs.parameter_values['pipelinechannel--go'] == 'yes'";
    let pipeline = Pipeline::new("conditions")
        .step("comp-ok", &["pipelinechannel--go:STRING"], &[], &[])
        .step("comp-after", &[], &[], &[])
        .root(
            json!({"parameters": {"go": {"parameterType": "STRING"}}}),
            tasks(vec![
                task(
                    "maybe",
                    "comp-ok",
                    json!({
                        "inputs": {"parameters": {"pipelinechannel--go": from_parent("go")}},
                        "triggerPolicy": {"condition": condition},
                    }),
                ),
                task("after", "comp-after", json!({"dependentTasks": ["maybe"]})),
            ]),
        );
    let harness = Harness::new();
    let no = harness.run(&pipeline, json!({"go": "no"})).await;
    assert_eq!(no.state, RunState::Succeeded);
    assert_eq!(state(&no, "maybe"), TaskState::Skipped);
    assert_eq!(
        record(&no, "maybe").reason.as_deref(),
        // In the user's words: the pipeline parameter, not the compiler's channel.
        Some("condition is false: go == 'yes'")
    );
    assert_eq!(state(&no, "after"), TaskState::Succeeded);
    let yes = harness.run(&pipeline, json!({"go": "yes"})).await;
    assert_eq!(state(&yes, "maybe"), TaskState::Succeeded);
    assert_eq!(harness.fake.ran("maybe"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_nested_dag_passes_its_inner_outputs_out() {
    let pipeline = echo(Pipeline::new("nested"))
        .dag(
            "comp-inner",
            &["x:NUMBER_INTEGER"],
            &["y:NUMBER_INTEGER"],
            json!({
                "tasks": tasks(vec![task("deep", "comp-echo", json!({"inputs": {"parameters": {"x": from_parent("x")}}}))]),
                "outputs": {"parameters": {"y": {"valueFromParameter": {"producerSubtask": "deep", "outputParameterKey": "y"}}}},
            }),
        )
        .root(
            json!({}),
            tasks(vec![
                task("inner", "comp-inner", json!({"inputs": {"parameters": {"x": constant(json!(7))}}})),
                task("outer", "comp-echo", json!({"inputs": {"parameters": {"x": from_task("inner", "y")}}})),
            ]),
        );
    let summary = Harness::new().run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Succeeded, "{summary:#?}");
    assert_eq!(state(&summary, "inner/deep"), TaskState::Succeeded);
    assert_eq!(output(&summary, "inner", "y"), json!(7));
    assert_eq!(output(&summary, "outer", "y"), json!(7));
}

#[tokio::test(start_paused = true)]
async fn one_of_takes_the_branch_that_ran() {
    let branch = |value: &str| vec!["write".to_owned(), output_file("y"), value.to_owned()];
    let heads = branch("heads");
    let tails = branch("tails");
    let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
    let tails: Vec<&str> = tails.iter().map(String::as_str).collect();
    let pipeline = Pipeline::new("oneof")
        .step("comp-heads", &["pipelinechannel--side:STRING"], &["y:STRING"], &heads)
        .step("comp-tails", &["pipelinechannel--side:STRING"], &["y:STRING"], &tails)
        .root_dag(
            json!({"parameters": {"side": {"parameterType": "STRING"}}}),
            json!({
                "tasks": tasks(vec![
                    task("h", "comp-heads", json!({
                        "inputs": {"parameters": {"pipelinechannel--side": from_parent("side")}},
                        "triggerPolicy": {"condition": "inputs.parameter_values['pipelinechannel--side'] == 'heads'"},
                    })),
                    task("t", "comp-tails", json!({
                        "inputs": {"parameters": {"pipelinechannel--side": from_parent("side")}},
                        "triggerPolicy": {"condition": "!(inputs.parameter_values['pipelinechannel--side'] == 'heads')"},
                    })),
                ]),
                "outputs": {"parameters": {"y": {"valueFromOneof": {"parameterSelectors": [
                    {"producerSubtask": "h", "outputParameterKey": "y"},
                    {"producerSubtask": "t", "outputParameterKey": "y"},
                ]}}}},
            }),
            &["y:STRING"],
        );
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({"side": "tails"})).await;
    assert_eq!(summary.outputs["y"], "tails");
    let summary = harness.run(&pipeline, json!({"side": "heads"})).await;
    assert_eq!(summary.outputs["y"], "heads");
}

#[tokio::test(start_paused = true)]
async fn a_step_that_writes_no_declared_output_fails() {
    let pipeline = Pipeline::new("silent")
        .step("comp-silent", &[], &["y:NUMBER_INTEGER"], &[])
        .root(
            json!({}),
            tasks(vec![task("silent", "comp-silent", json!({}))]),
        );
    let summary = Harness::new().run(&pipeline, json!({})).await;
    assert_eq!(state(&summary, "silent"), TaskState::Failed);
    let error = record(&summary, "silent").error.clone().unwrap();
    assert!(
        error.starts_with("output parameter `y` was not written"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn outputs_are_typed_against_the_component() {
    let pipeline = Pipeline::new("typed")
        .step(
            "comp-liar",
            &[],
            &["y:NUMBER_INTEGER"],
            &["write", &output_file("y"), "not a number"],
        )
        .root(json!({}), tasks(vec![task("liar", "comp-liar", json!({}))]));
    let summary = Harness::new().run(&pipeline, json!({})).await;
    assert_eq!(state(&summary, "liar"), TaskState::Failed);
    let error = record(&summary, "liar").error.clone().unwrap();
    assert!(error.starts_with("output parameter `y`"), "{error}");
}
