//! Retries: backoff that grows by its factor up to its cap (on tokio's paused clock), limits,
//! problems no retry can fix, and cancel while waiting.

use std::time::Duration;

use kfbox_engine::model::{RunState, TaskState};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::support::*;

fn flaky(args: &[&str], retry: Value) -> Pipeline {
    Pipeline::new("flaky")
        .step("comp-flaky", &[], &[], args)
        .root(
            json!({}),
            tasks(vec![task(
                "flaky",
                "comp-flaky",
                json!({"retryPolicy": retry}),
            )]),
        )
}

/// Seconds between the starts of consecutive attempts.
fn gaps(harness: &Harness) -> Vec<u64> {
    let attempts = harness.fake.attempts();
    attempts
        .windows(2)
        .map(|w| (w[1].started - w[0].started).as_secs())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_step_is_retried_with_growing_backoff_until_it_succeeds() {
    let pipeline = flaky(
        &["fail-first", "2"],
        json!({"maxRetryCount": 3, "backoffDuration": "10s", "backoffFactor": 2}),
    );
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Succeeded);
    assert_eq!(record(&summary, "flaky").attempts, 3);
    assert_eq!(gaps(&harness), [10, 20]);
}

#[tokio::test(start_paused = true)]
async fn backoff_stops_growing_at_its_cap() {
    let pipeline = flaky(
        &["fail-first", "3"],
        json!({"maxRetryCount": 3, "backoffDuration": "10s", "backoffFactor": 3, "backoffMaxDuration": "25s"}),
    );
    let harness = Harness::new();
    harness.run(&pipeline, json!({})).await;
    assert_eq!(gaps(&harness), [10, 25, 25]);
}

#[tokio::test(start_paused = true)]
async fn retries_end_at_the_limit_with_the_last_error() {
    let pipeline = flaky(&["exit", "2"], json!({"maxRetryCount": 2}));
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Failed);
    let task = record(&summary, "flaky");
    assert_eq!(task.attempts, 3);
    assert_eq!(
        task.error.as_deref(),
        Some("the step exited with code 2 (see its log)")
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_retry_policy_a_step_runs_once() {
    let pipeline = Pipeline::new("once")
        .step("comp-flaky", &[], &[], &["fail-first", "1"])
        .root(
            json!({}),
            tasks(vec![task("flaky", "comp-flaky", json!({}))]),
        );
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(state(&summary, "flaky"), TaskState::Failed);
    assert_eq!(harness.fake.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn what_no_retry_can_fix_is_not_retried() {
    let pipeline = flaky(&["unrunnable"], json!({"maxRetryCount": 5}));
    let harness = Harness::new();
    let summary = harness.run(&pipeline, json!({})).await;
    assert_eq!(record(&summary, "flaky").attempts, 1);
    assert_eq!(
        record(&summary, "flaky").error.as_deref(),
        Some("no such image")
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancel_during_backoff_ends_the_task_canceled() {
    let pipeline = flaky(
        &["exit", "1"],
        json!({"maxRetryCount": 3, "backoffDuration": "3600s"}),
    );
    let harness = Harness::new();
    let cancel = CancellationToken::new();
    let canceler = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        canceler.cancel();
    });
    let started = tokio::time::Instant::now();
    let summary = harness.start(&pipeline, json!({}), None, cancel).await;
    assert_eq!(summary.state, RunState::Canceled);
    assert_eq!(state(&summary, "flaky"), TaskState::Canceled);
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(harness.fake.attempts().len(), 1);
}
