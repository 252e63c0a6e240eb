//! The command line: bad input is refused whole with exit 2, and `--json` keeps its shape.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::common::{compile, kfbox, run_json};

/// The documented `--json` contract. Unknown fields fail to parse, so any change of shape
/// fails this test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Summary {
    run_id: String,
    pipeline: String,
    state: String,
    outputs: BTreeMap<String, Value>,
    tasks: Vec<Task>,
    started_at: String,
    finished_at: String,
    run_dir: String,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Task {
    name: String,
    path: String,
    kind: String,
    state: String,
    attempts: u32,
    started_at: Option<String>,
    finished_at: Option<String>,
    outputs: TaskOutputs,
    error: Option<String>,
    reason: Option<String>,
    iterations: Option<usize>,
    log: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TaskOutputs {
    parameters: BTreeMap<String, Value>,
    artifacts: BTreeMap<String, Vec<ArtifactRef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ArtifactRef {
    uri: String,
    metadata: BTreeMap<String, Value>,
}

#[test]
fn json_summary_keeps_its_contract() {
    let output = kfbox(&[
        "run",
        compile("artifacts").to_str().unwrap(),
        "--json",
        "--param",
        "rows=3",
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let summary: Summary = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is exactly one summary object ({e}):\n{stdout}"));
    assert_eq!(summary.state, "SUCCEEDED");
    assert_eq!(summary.pipeline, "artifacts");
    assert_eq!(summary.tasks.len(), 2);
    for task in &summary.tasks {
        assert_eq!(task.attempts, 1);
        for stamp in [&task.started_at, &task.finished_at].into_iter().flatten() {
            chrono::DateTime::parse_from_rfc3339(stamp).expect("RFC3339");
        }
    }
    // `runs get --json` prints the same contract, rebuilt from the store.
    let stored = kfbox(&["runs", "get", &summary.run_id, "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(stored.stdout).unwrap();
    let stored: Summary = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("runs get --json keeps the summary shape ({e}):\n{stdout}"));
    assert_eq!(stored.run_id, summary.run_id);
    assert_eq!(stored.tasks.len(), 2);
}

fn refused(pipeline: &Path, params: &[&str]) -> String {
    let result = run_json(pipeline, params, &[]);
    assert_eq!(
        result.code, 2,
        "exit 2 expected; stderr:\n{}",
        result.stderr
    );
    assert!(result.summary.is_null(), "nothing on stdout when refused");
    result.stderr
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs_err::write(&path, text).unwrap();
    path
}

#[test]
fn malformed_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.yaml", "root: [unclosed\n");
    let stderr = refused(&broken, &[]);
    assert!(
        stderr.contains("broken.yaml") && stderr.contains("not valid YAML"),
        "{stderr}"
    );
    let not_pipeline = write(dir.path(), "other.yaml", "apiVersion: v1\nkind: Pod\n");
    let stderr = refused(&not_pipeline, &[]);
    assert!(stderr.contains("`root` is missing"), "{stderr}");
}

#[test]
fn parameters_are_checked_before_anything_runs() {
    let pipeline = compile("fan_in");
    let stderr = refused(&pipeline, &["items=not-json"]);
    assert!(
        stderr.contains("parameter `items` = not-json: expected list"),
        "{stderr}"
    );
    let stderr = refused(&pipeline, &["nope=1"]);
    assert!(
        stderr.contains("parameter `nope`: the pipeline has no such parameter")
            && stderr.contains("items"),
        "{stderr}"
    );
    let retries = compile("retries");
    let stderr = refused(&retries, &[]);
    assert!(
        stderr.contains("`counter_path` (str) is required"),
        "{stderr}"
    );
    let conditions = compile("conditions");
    let stderr = refused(&conditions, &["value=1.5"]);
    assert!(stderr.contains("expected int"), "{stderr}");
}

/// Edit a compiled pipeline's text and check the result is refused with a located message.
fn refused_after_edit(module: &str, from: &str, to: &str, expect: &[&str]) {
    let text = fs_err::read_to_string(compile(module)).unwrap();
    assert!(text.contains(from), "fixture text `{from}` not in {module}");
    let dir = tempfile::tempdir().unwrap();
    let edited = write(dir.path(), "edited.yaml", &text.replacen(from, to, 1));
    let stderr = refused(&edited, &[]);
    for needle in expect {
        assert!(stderr.contains(needle), "`{needle}` not in:\n{stderr}");
    }
}

#[test]
fn broken_references_are_located() {
    refused_after_edit(
        "artifacts",
        "name: comp-consume\n",
        "name: comp-missing\n",
        &[
            "task `consume`",
            "componentRef.name",
            "unknown component `comp-missing`",
        ],
    );
    refused_after_edit(
        "artifacts",
        "executorLabel: exec-consume",
        "executorLabel: exec-missing",
        &["unknown executor `exec-missing`"],
    );
    refused_after_edit(
        "containers",
        "{{$.outputs.parameters[''out''].output_file}}",
        "{{$.outputs.nonsense}}",
        &["exec-greet", "unknown placeholder `{{$.outputs.nonsense}}`"],
    );
}

#[test]
fn dependency_cycles_are_refused() {
    // produce now waits for consume, which consumes produce's artifact.
    refused_after_edit(
        "artifacts",
        "      produce:\n        cachingOptions:",
        "      produce:\n        dependentTasks:\n        - consume\n        cachingOptions:",
        &["dependency cycle", "consume", "produce"],
    );
}

/// Parse a command's `--json` output into the type kfbox declares for it (unknown fields
/// refused), so an output and its type cannot drift apart.
fn parsed<T: serde::de::DeserializeOwned>(args: &[&str]) -> T {
    let output = kfbox(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "kfbox {args:?} --json does not match its type ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn every_json_output_matches_its_declared_type() {
    use kfbox_app::json::{
        ArtifactDetail, ArtifactList, CheckReport, DeletedRunReport, DoctorReport, EnvInfo,
        LineageReport, ObjectList, RunList, RunSummary, StatusReport, VolumeList,
    };
    let pipeline = compile("artifacts");
    let summary: RunSummary = parsed(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--param",
        "rows=3",
    ]);
    let run = summary.run_id.clone();
    let stored: RunSummary = parsed(&["runs", "get", &run, "--json"]);
    assert_eq!(stored.tasks.len(), summary.tasks.len());
    let list: RunList = parsed(&["runs", "list", "--json", "--limit", "3"]);
    assert!(list.runs.iter().any(|r| r.run_id == run), "{list:?}");
    let artifacts: ArtifactList = parsed(&["artifacts", "list", "--run", &run, "--json"]);
    let first = artifacts.artifacts.first().expect("the run made artifacts");
    let id = first.id.to_string();
    let detail: ArtifactDetail = parsed(&["artifacts", "get", &id, "--json"]);
    assert_eq!(detail.uri, first.uri);
    assert!(detail.produced_by.is_some());
    let lineage: LineageReport = parsed(&["lineage", &id, "--json"]);
    assert_eq!(lineage.artifact.id, first.id);
    let envs: Vec<EnvInfo> = parsed(&["env", "--json"]);
    assert!(!envs.is_empty());
    let _: DoctorReport = parsed(&["doctor", "--json"]);
    let check: CheckReport = parsed(&[
        "check",
        pipeline.to_str().unwrap(),
        "--for",
        "cluster",
        "--json",
    ]);
    assert!(!check.findings.is_empty(), "{check:?}");
    let _: StatusReport = parsed(&["status", "--json"]);
    let _: VolumeList = parsed(&["volumes", "list", "--json"]);
    let _: ObjectList = parsed(&["secrets", "list", "--json"]);
    let _: ObjectList = parsed(&["configmaps", "list", "--json"]);
    let deleted: DeletedRunReport = parsed(&["runs", "delete", &run, "--json"]);
    assert!(deleted.deleted);
    assert_eq!(deleted.run_id, run);
}

#[test]
fn env_lists_the_managed_environment() {
    // Running any Python step first guarantees the base environment exists.
    let result = run_json(&compile("nested"), &[], &[]);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let output = kfbox(&["env", "--json"]).output().unwrap();
    assert!(output.status.success());
    let envs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        envs.iter().any(|e| e["ready"] == true
            && e["requirements"][0]
                .as_str()
                .unwrap_or("")
                .starts_with("kfp==")),
        "{envs:?}"
    );
}

#[test]
fn input_artifacts_are_checked_before_anything_runs() {
    let pipeline = compile("artifacts");
    let result = run_json(&pipeline, &[], &["--artifact", "nope=/definitely/missing"]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .contains("--artifact nope: the pipeline has no input artifact `nope`"),
        "{}",
        result.stderr
    );
    let result = run_json(&pipeline, &[], &["--artifact", "no-equals-sign"]);
    assert_eq!(result.code, 2);
    assert!(
        result
            .stderr
            .contains("--artifact no-equals-sign: expected NAME=VALUE"),
        "{}",
        result.stderr
    );
}

/// Regression: `kfbox env | head -1` panicked with "failed printing to stdout: Broken pipe".
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let bin = crate::common::kfbox_bin();
    let home = crate::common::shared_home();
    // `true` exits without reading, so kfbox writes into a closed pipe.
    let output = std::process::Command::new("sh")
        .args(["-c", "\"$0\" env --json | true", bin.to_str().unwrap()])
        .env("KFBOX_HOME", home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
