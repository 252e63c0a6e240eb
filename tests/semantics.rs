//! Pipelines compiled here by the real kfp SDK, run by kfbox, with their real outputs checked.

use chrono::DateTime;
use serde_json::json;

use crate::common::{compile, run_json, RunResult};

#[test]
fn conditions_take_the_matching_branch_and_oneof_returns_it() {
    let pipeline = compile("conditions");
    let medium = run_json(&pipeline, &[], &[]);
    assert_eq!(medium.code, 0, "{}", medium.stderr);
    assert_eq!(medium.summary["outputs"]["Output"], "medium");
    let big = run_json(&pipeline, &["value=42"], &[]);
    assert_eq!(big.summary["outputs"]["Output"], "big");
    let small = run_json(&pipeline, &["value=1"], &[]);
    assert_eq!(small.summary["outputs"]["Output"], "small");
    let skipped: Vec<&str> = small.summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "SKIPPED")
        .map(|t| t["path"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "two branches skipped: {skipped:?}");
    // Skip reasons in the user's words: the task's output, not the compiler's channel.
    assert_eq!(
        medium.task("condition-branches-1/condition-2")["reason"],
        "condition is false: int(roll.output) > 10"
    );
}

#[test]
fn fan_in_collects_typed_values_across_iterations() {
    let pipeline = compile("fan_in");
    let result = run_json(&pipeline, &["items=[5, 6, 7]"], &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    // `total` asserts inside the step that every element is an int.
    assert_eq!(result.summary["outputs"]["Output"], json!(36));
    let loop_task = result.summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "loop")
        .expect("loop task");
    assert_eq!(loop_task["iterations"], 3);
    assert_eq!(
        loop_task["outputs"]["parameters"]["pipelinechannel--double-Output"],
        json!([10, 12, 14])
    );
}

#[test]
fn retries_succeed_on_the_third_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    let param = format!("counter_path={}", counter.display());
    let result = run_json(&compile("retries"), &[&param], &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.task("flaky")["attempts"], 3);
    assert_eq!(result.summary["outputs"]["Output"], 3);
    let log = result.log_of("flaky");
    assert!(
        log.contains("attempt 1 fails on purpose") && log.contains("attempt 2 fails on purpose")
    );
}

#[test]
fn exit_handler_runs_after_a_failure_and_sees_failed() {
    let result = run_json(&compile("exit_handler"), &[], &[]);
    assert_eq!(result.code, 1);
    assert_eq!(result.state(), "FAILED");
    assert_eq!(result.task("exit-handler-1/fail")["state"], "FAILED");
    let report = result.task("report");
    assert_eq!(report["state"], "SUCCEEDED");
    assert_eq!(report["outputs"]["parameters"]["Output"], "FAILED");
}

#[test]
fn nested_pipelines_pass_inputs_and_return_outputs() {
    let result = run_json(&compile("nested"), &["start=0.5"], &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    // (0.5 + 1.5) then (2.0 + 10.0)
    assert_eq!(result.summary["outputs"]["Output"], json!(12.0));
    assert_eq!(
        result.task("inner-2/add")["outputs"]["parameters"]["Output"],
        json!(12.0)
    );
}

#[test]
fn artifacts_travel_by_path_with_their_metadata() {
    let result = run_json(&compile("artifacts"), &["rows=5"], &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.summary["outputs"]["Output"], json!(30));
    let produced = &result.task("produce")["outputs"]["artifacts"];
    assert_eq!(produced["data"][0]["metadata"]["rows"], json!(5));
    assert_eq!(produced["metrics"][0]["metadata"]["rows"], json!(5));
    let uri = produced["data"][0]["uri"].as_str().unwrap();
    assert_eq!(fs_err::read_to_string(uri).unwrap().lines().count(), 5);
}

#[test]
fn container_placeholders_if_present_and_concat() {
    let result = run_json(&compile("containers"), &[], &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert_eq!(result.summary["outputs"]["Output"], "hi hello kfbox");
    // Both steps have the image: said once, not per task.
    assert_eq!(
        result
            .stderr
            .matches("tasks with image `alpine` run `sh` from this host")
            .count(),
        1,
        "one note for the host-run image: {}",
        result.stderr
    );
}

#[test]
fn independent_steps_run_at_the_same_time() {
    let result = run_json(
        &compile("parallel"),
        &["seconds=2"],
        &["--parallelism", "4"],
    );
    assert_eq!(result.code, 0, "{}", result.stderr);
    let spans: Vec<(i64, i64)> = result.summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let at = |k: &str| {
                DateTime::parse_from_rfc3339(t[k].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis()
            };
            (at("started_at"), at("finished_at"))
        })
        .collect();
    assert_eq!(spans.len(), 4);
    // Every pair of steps overlaps in time: none waited for another to finish.
    let latest_start = spans.iter().map(|s| s.0).max().unwrap();
    let earliest_end = spans.iter().map(|s| s.1).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "steps ran one after another: {spans:?}"
    );
}

#[test]
fn interrupt_cancels_running_steps_and_records_them() {
    use std::process::Stdio;
    let pipeline = compile("parallel");
    let marker = format!("seconds={}", 120.25);
    let child = crate::common::kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--param",
        &marker,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Let the four steps start (the environment is ready after the other tests or this wait).
    let mut steps = Vec::new();
    crate::common::wait_for(
        "the four steps to start",
        std::time::Duration::from_secs(90),
        || {
            steps = crate::common::python_steps_under(child.id());
            steps.len() >= 4
        },
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let result = crate::common::parse_run(child.wait_with_output().unwrap());
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert_eq!(result.state(), "CANCELED");
    let states: Vec<&str> = result.summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["CANCELED"; 4]);
    // The steps' process groups are gone: none of the four still sleeps.
    let left: Vec<&u32> = steps
        .iter()
        .filter(|pid| crate::common::process_runs(**pid))
        .collect();
    assert!(left.is_empty(), "steps left behind: {left:?}");
}

/// Whole numbers in STRUCT and LIST parameters (compiled by the SDK as protobuf doubles, `3.0`)
/// reach the component as the launcher's protobuf JSON encoding writes them: `3`, so
/// `range(d['n'])` works; fractions stay fractions. The container's placeholder text too.
#[test]
fn whole_numbers_in_structs_and_lists_arrive_whole() {
    let pipeline = compile("struct_numbers");
    let run = run_json(&pipeline, &[], &[]);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.summary["outputs"]["Output"], "3 0.5 [2, 4] int");
    let echoed = run.log_of("echo");
    assert!(echoed.contains(r#"{"n":3,"rate":0.5}"#), "{echoed}");
    // Given on the command line as JSON, the same.
    let run = run_json(&pipeline, &["settings={\"n\": 5.0, \"rate\": 2}"], &[]);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.summary["outputs"]["Output"], "5 2 [2, 4] int");
}

/// `set_retry` on a task that runs a nested pipeline retries the steps inside it, as the
/// backend's compiler hands the policy down; the nested pipeline's task itself runs once.
#[test]
fn a_retry_policy_on_a_nested_pipeline_retries_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let counter = dir.path().join("count");
    let param = format!("counter_path={}", counter.display());
    let result = run_json(&compile("nested_retry"), &[&param], &[]);
    assert_eq!(result.code, 0, "{}\n{:#}", result.stderr, result.summary);
    assert_eq!(result.task("inner/flaky")["attempts"], 3);
    assert_eq!(result.summary["outputs"]["Output"], 3);
}

/// `kfp.kubernetes.set_timeout(task, 2)`: the 10 s step is stopped at about 2 s and fails
/// saying why; the quick step under the same limit succeeds; no "not applied" warning.
#[test]
fn set_timeout_stops_a_step_at_its_deadline() {
    let started = std::time::Instant::now();
    let run = run_json(&compile("timeout"), &[], &[]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.task("nap")["state"], "SUCCEEDED");
    let slow = run.task("nap-2");
    assert_eq!(slow["state"], "FAILED");
    let error = slow["error"].as_str().unwrap_or_default();
    assert!(error.contains("deadline of 2 s"), "{slow:#}");
    let seconds = |key: &str| {
        DateTime::parse_from_rfc3339(slow[key].as_str().unwrap())
            .unwrap()
            .timestamp_millis() as f64
            / 1000.0
    };
    let ran = seconds("finished_at") - seconds("started_at");
    assert!((1.5..6.0).contains(&ran), "ran {ran} s");
    assert!(
        took.as_secs_f64() < 9.0,
        "the run took {took:?}: the sleep was not cut"
    );
    assert!(
        !run.stderr.contains("activeDeadlineSeconds"),
        "{}",
        run.stderr
    );
}

/// `kfp.kubernetes.use_field_path_as_env`: the pod's name (the run's name and the task), its
/// namespace, the node (this host) and the pod labels and annotations the step was given.
#[test]
fn field_paths_read_as_documented() {
    let run = run_json(&compile("field_paths"), &[], &[]);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    let output = run.summary["outputs"]["Output"]
        .as_str()
        .unwrap()
        .to_owned();
    let fields: Vec<&str> = output.split('|').collect();
    let run_id = run.summary["run_id"].as_str().unwrap();
    assert_eq!(fields[0], format!("field-paths-{}-show", &run_id[..8]));
    assert_eq!(fields[1], "kubeflow");
    let host = fs_err::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(fields[2], host.trim());
    assert_eq!(&fields[3..], ["vision", "hello"]);
    assert!(!run.stderr.contains("fieldPathAsEnv"), "{}", run.stderr);
}

/// The SDK's pip prelude is skipped for host processes (the managed environment has the
/// packages), and the step's log says so, because a cluster runs that line in the pod.
#[test]
fn a_skipped_pip_prelude_is_recorded_in_the_steps_log() {
    let run = run_json(&compile("conditions"), &["value=3"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = run.log_of("roll");
    assert!(
        log.contains("[kfbox] skipped the SDK's prelude `pip install kfp==2.17.0"),
        "{log}"
    );
}

/// `set_cpu_limit("250m")` on a host process: a step that spins for 3 s gets about 0.75 s of
/// CPU time (the group is stopped while it is over its share); `set_memory_limit("64Mi")` on
/// a step that holds 200 MB: killed, and the task fails as OOMKilled, as on a cluster.
#[test]
fn cpu_and_memory_limits_hold_for_host_processes() {
    cpu_and_memory_limits_hold(&["--executor", "process"]);
}

/// The checks of [`cpu_and_memory_limits_hold_for_host_processes`] with other executor flags.
pub fn cpu_and_memory_limits_hold(extra: &[&str]) -> RunResult {
    let run = run_json(&compile("limits"), &[], extra);
    assert_eq!(run.code, 1, "{}\n{:#}", run.stderr, run.summary);
    let spin = run.task("spin");
    assert_eq!(spin["state"], "SUCCEEDED", "{spin:#}");
    let cpu = spin["outputs"]["parameters"]["Output"].as_f64().unwrap();
    assert!((0.2..1.3).contains(&cpu), "3 s at 250m used {cpu} s of CPU");
    let hog = run.task("hog");
    assert_eq!(hog["state"], "FAILED", "{hog:#}");
    let error = hog["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("OOMKilled") && error.contains("64 MiB"),
        "{error}"
    );
    assert!(run.log_of("hog").contains("(OOMKilled)"));
    assert!(!run.stderr.contains("not enforced"), "{}", run.stderr);
    run
}
