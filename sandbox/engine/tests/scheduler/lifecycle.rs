//! A run from launch to its records: cancel, importers, runtime constants, and the recorded
//! run read back as it was reported.

use std::time::Duration;

use kfbox_engine::model::{RunState, TaskState};
use kfbox_engine::recorded::recorded_summary;
use kfbox_store::RunSelector;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn a_cancel_stops_running_steps_and_starts_nothing_new() {
    let pipeline = Pipeline::new("cancel")
        .step("comp-wait", &[], &[], &["wait-cancel"])
        .step("comp-ok", &[], &[], &[])
        .root(
            json!({}),
            tasks(vec![
                task("wait", "comp-wait", json!({})),
                task("after", "comp-ok", json!({"dependentTasks": ["wait"]})),
            ]),
        );
    let harness = Harness::new();
    let cancel = CancellationToken::new();
    let canceler = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        canceler.cancel();
    });
    let summary = harness.start(&pipeline, json!({}), None, cancel).await;
    assert_eq!(summary.state, RunState::Canceled);
    assert_eq!(summary.error.as_deref(), Some("the run was canceled"));
    assert_eq!(state(&summary, "wait"), TaskState::Canceled);
    assert_eq!(state(&summary, "after"), TaskState::Canceled);
    assert_eq!(
        record(&summary, "after").reason.as_deref(),
        Some("the run was canceled before it started")
    );
    assert_eq!(harness.fake.ran("after"), 0);
}

#[tokio::test(start_paused = true)]
async fn an_importer_brings_its_uri_in_as_an_artifact() {
    let pipeline = Pipeline::new("importer")
        .importer("comp-importer", "file:///data/train.csv")
        .step(
            "comp-read",
            &["data:system.Dataset"],
            &["uri:STRING"],
            &["write", &output_file("uri"), "{{$.inputs.artifacts['data'].uri}}"],
        )
        .root(
            json!({}),
            tasks(vec![
                task("importer", "comp-importer", json!({})),
                task("read", "comp-read", json!({"inputs": {"artifacts": {"data": {
                    "taskOutputArtifact": {"producerTask": "importer", "outputArtifactKey": "artifact"},
                }}}})),
            ]),
        );
    let summary = Harness::new().run(&pipeline, json!({})).await;
    assert_eq!(summary.state, RunState::Succeeded, "{summary:#?}");
    let imported = &record(&summary, "importer").outputs.artifacts["artifact"][0];
    assert_eq!(imported.uri, "/data/train.csv");
    assert_eq!(imported.metadata["source"], "fixture");
    assert_eq!(output(&summary, "read", "uri"), json!("/data/train.csv"));
}

#[tokio::test(start_paused = true)]
async fn runtime_constants_name_the_run_and_the_task() {
    let pipeline = Pipeline::new("constants")
        .step(
            "comp-say",
            &["job:STRING", "task:STRING"],
            &["said:STRING"],
            &[
                "write",
                &output_file("said"),
                &format!("{} {}", input("job"), input("task")),
            ],
        )
        .root(
            json!({}),
            tasks(vec![task(
                "say",
                "comp-say",
                json!({"inputs": {"parameters": {
                    "job": constant(json!("{{$.pipeline_job_resource_name}}")),
                    "task": constant(json!("{{$.pipeline_task_name}}")),
                }}}),
            )]),
        );
    let summary = Harness::new().run(&pipeline, json!({})).await;
    let expected = format!("constants-{} say", &summary.run_id[..8]);
    assert_eq!(output(&summary, "say", "said"), json!(expected));
}

#[tokio::test(start_paused = true)]
async fn the_recorded_run_reads_back_as_it_was_reported() {
    let pipeline = Pipeline::new("recorded")
        .step(
            "comp-ok",
            &[],
            &["y:STRING"],
            &["write", &output_file("y"), "v"],
        )
        .step("comp-fail", &[], &[], &["exit", "1"])
        .root(
            json!({}),
            tasks(vec![
                task("ok", "comp-ok", json!({})),
                task("fail", "comp-fail", json!({"dependentTasks": ["ok"]})),
                task("skipped", "comp-ok", json!({"dependentTasks": ["fail"]})),
            ]),
        );
    let harness = Harness::new();
    let reported = harness.run(&pipeline, json!({})).await;
    let store = &harness.runtime.store;
    let run = store
        .find_run(&RunSelector(reported.run_id.clone()))
        .unwrap();
    let recorded = recorded_summary(store, &run).unwrap();
    assert_eq!(recorded.state, reported.state);
    assert_eq!(recorded.error, reported.error);
    let view = |s: &kfbox_engine::model::RunSummary| -> Vec<(String, TaskState, Option<String>)> {
        let mut tasks: Vec<_> = s
            .tasks
            .iter()
            .map(|t| (t.path.clone(), t.state, t.error.clone()))
            .collect();
        tasks.sort_by(|a, b| a.0.cmp(&b.0));
        tasks
    };
    assert_eq!(view(&recorded), view(&reported));
    let summary_file = std::path::Path::new(&reported.run_dir).join("summary.json");
    let written: kfbox_engine::model::RunSummary =
        serde_json::from_str(&fs_err::read_to_string(summary_file).unwrap()).unwrap();
    assert_eq!(written, reported);
}
