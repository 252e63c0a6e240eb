//! Caching and retried runs: what is reused, what runs again.

use kfbox_engine::model::{RunState, TaskState};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// A pipeline with one component, `comp-echo`, which writes its input `x` as its output `y`.
fn with_echo(name: &str) -> Pipeline {
    Pipeline::new(name).step(
        "comp-echo",
        &["x:NUMBER_INTEGER"],
        &["y:NUMBER_INTEGER"],
        &["write", &output_file("y"), &input("x")],
    )
}

fn cached(enable: bool) -> Pipeline {
    with_echo("cached").root(
        json!({"parameters": {"x": {"parameterType": "NUMBER_INTEGER"}}}),
        tasks(vec![task(
            "echo",
            "comp-echo",
            json!({
                "inputs": {"parameters": {"x": from_parent("x")}},
                "cachingOptions": {"enableCache": enable},
            }),
        )]),
    )
}

#[tokio::test(start_paused = true)]
async fn a_second_run_with_the_same_inputs_reuses_the_step() {
    let harness = Harness::new();
    let first = harness.run(&cached(true), json!({"x": 1})).await;
    let second = harness.run(&cached(true), json!({"x": 1})).await;
    assert_eq!(state(&first, "echo"), TaskState::Succeeded);
    assert_eq!(state(&second, "echo"), TaskState::Cached);
    assert_eq!(output(&second, "echo", "y"), json!(1));
    let reason = record(&second, "echo").reason.clone().unwrap();
    assert!(
        reason.starts_with("cache hit: reused execution"),
        "{reason}"
    );
    assert!(
        reason.ends_with(&format!("of run {}", &first.run_id[..8])),
        "{reason}"
    );
    assert_eq!(harness.fake.ran("echo"), 1);
}

#[tokio::test(start_paused = true)]
async fn other_inputs_miss_the_cache() {
    let harness = Harness::new();
    harness.run(&cached(true), json!({"x": 1})).await;
    let second = harness.run(&cached(true), json!({"x": 2})).await;
    assert_eq!(state(&second, "echo"), TaskState::Succeeded);
    assert_eq!(harness.fake.ran("echo"), 2);
}

#[tokio::test(start_paused = true)]
async fn a_task_without_caching_runs_every_time() {
    let harness = Harness::new();
    harness.run(&cached(false), json!({"x": 1})).await;
    let second = harness.run(&cached(false), json!({"x": 1})).await;
    assert_eq!(state(&second, "echo"), TaskState::Succeeded);
    assert_eq!(harness.fake.ran("echo"), 2);
}

#[tokio::test(start_paused = true)]
async fn with_reuse_off_steps_run_but_still_leave_their_fingerprints() {
    let mut harness = Harness::new();
    harness.runtime.reuse_cache = false;
    harness.run(&cached(true), json!({"x": 1})).await;
    harness.run(&cached(true), json!({"x": 1})).await;
    assert_eq!(harness.fake.ran("echo"), 2);
    harness.runtime.reuse_cache = true;
    let third = harness.run(&cached(true), json!({"x": 1})).await;
    assert_eq!(state(&third, "echo"), TaskState::Cached);
}

#[tokio::test(start_paused = true)]
async fn a_retried_run_reuses_what_succeeded_and_runs_the_rest() {
    let pipeline = Pipeline::new("retried")
        .step(
            "comp-ok",
            &[],
            &["y:STRING"],
            &["write", &output_file("y"), "done"],
        )
        .step("comp-flaky", &["x:STRING"], &[], &["fail-first", "1"])
        .root(
            json!({}),
            tasks(vec![
                task("ok", "comp-ok", json!({})),
                task(
                    "flaky",
                    "comp-flaky",
                    json!({"inputs": {"parameters": {"x": from_task("ok", "y")}}}),
                ),
            ]),
        );
    let harness = Harness::new();
    let first = harness.run(&pipeline, json!({})).await;
    assert_eq!(first.state, RunState::Failed);
    let again = harness
        .start(
            &pipeline,
            json!({}),
            Some(first.run_id.clone()),
            CancellationToken::new(),
        )
        .await;
    assert_eq!(again.run_id, first.run_id);
    assert_eq!(again.state, RunState::Succeeded, "{again:#?}");
    assert_eq!(state(&again, "ok"), TaskState::Cached);
    assert_eq!(state(&again, "flaky"), TaskState::Succeeded);
    assert_eq!(harness.fake.ran("ok"), 1);
    assert_eq!(harness.fake.ran("flaky"), 2);
}

/// Equal steps one after another in one run: the first runs, every later one reuses its
/// execution (the run's own hits are remembered, so the store is not searched per task).
#[tokio::test(start_paused = true)]
async fn equal_steps_in_one_run_reuse_the_first_ones_execution() {
    let pipeline = with_echo("equal-steps").root(
        json!({}),
        tasks(
            ["a", "b", "c", "d"]
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let after: Vec<&str> = ["a", "b", "c"].iter().take(i).copied().collect();
                    task(
                        name,
                        "comp-echo",
                        json!({
                            "inputs": {"parameters": {"x": constant(json!(7))}},
                            "dependentTasks": after,
                            "cachingOptions": {"enableCache": true},
                        }),
                    )
                })
                .collect(),
        ),
    );
    let harness = Harness::new();
    let run = harness.run(&pipeline, json!({})).await;
    assert_eq!(run.state, RunState::Succeeded);
    assert_eq!(state(&run, "a"), TaskState::Succeeded);
    let first = record(&run, "b").reason.clone().unwrap();
    assert!(
        first.ends_with(&format!("of run {}", &run.run_id[..8])),
        "{first}"
    );
    for name in ["b", "c", "d"] {
        assert_eq!(state(&run, name), TaskState::Cached, "{name}");
        assert_eq!(output(&run, name, "y"), json!(7));
        assert_eq!(record(&run, name).reason.as_ref(), Some(&first));
    }
    assert_eq!(harness.fake.attempts().len(), 1);
}
