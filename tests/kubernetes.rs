//! `kfp.kubernetes` volumes and namespace objects, compiled by the real kfp-kubernetes
//! package: PVCs made, shared and deleted by the pipeline, Secrets and ConfigMaps as variables
//! and files, scratch space, and what keeps a pod from starting. Host processes here;
//! `docker.rs` runs the same pipeline in containers.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::served::{get, kfbox_in, Served};
use crate::common::{
    compile, kfbox, kfbox_json, parse_run, run_json, shared_home, uuid_like, RunResult,
};

/// A Secret and a ConfigMap of unique names (tests share a home and run concurrently),
/// deleted when dropped.
pub struct Objects {
    pub secret: String,
    pub settings: String,
    pub password: String,
    home: PathBuf,
}

impl Objects {
    /// In the shared home.
    pub fn create() -> Self {
        Self::create_in(&shared_home())
    }

    pub fn create_in(home: &Path) -> Self {
        let unique = uuid_like().to_lowercase();
        let objects = Objects {
            secret: format!("db-{unique}"),
            settings: format!("settings-{unique}"),
            password: format!("pw-{unique}-Zq8"),
            home: home.to_owned(),
        };
        // The value through a file, as the help recommends for credentials.
        let file = tempfile::NamedTempFile::new().unwrap();
        fs_err::write(file.path(), &objects.password).unwrap();
        let from_file = format!("password={}", file.path().display());
        for args in [
            ["secrets", "set", &objects.secret, "--from-file", &from_file],
            [
                "configmaps",
                "set",
                &objects.settings,
                "mode=fast",
                "level=3",
            ],
        ] {
            let set = kfbox_in(home, &args).output().unwrap();
            let stderr = String::from_utf8_lossy(&set.stderr);
            assert!(set.status.success(), "{args:?}: {stderr}");
        }
        objects
    }

    pub fn params(&self) -> [String; 2] {
        [
            format!("secret={}", self.secret),
            format!("settings={}", self.settings),
        ]
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        let _ = kfbox_in(&self.home, &["secrets", "delete", &self.secret]).output();
        let _ = kfbox_in(&self.home, &["configmaps", "delete", &self.settings]).output();
    }
}

fn volume_names() -> Vec<String> {
    kfbox_json(&["volumes", "list", "--json"])["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every byte kfbox keeps about the run (its directory, the store and its journal) and the
/// logs `kfbox logs` prints: what the API serves comes from these.
fn kept_text(run: &RunResult) -> String {
    let mut text = String::new();
    fn walk(dir: &Path, text: &mut String) {
        for entry in fs_err::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, text);
            } else if let Ok(bytes) = fs_err::read(&path) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    walk(
        Path::new(run.summary["run_dir"].as_str().unwrap()),
        &mut text,
    );
    for file in ["kfbox.sqlite", "kfbox.sqlite-wal"] {
        if let Ok(bytes) = fs_err::read(shared_home().join(file)) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    let run_id = run.summary["run_id"].as_str().unwrap();
    let logs = kfbox(&["logs", run_id]).output().unwrap();
    text.push_str(&String::from_utf8_lossy(&logs.stdout));
    text
}

/// Run tests/pipelines/volumes.py with `extra` arguments and check what a cluster would do.
/// Returns the run, for checks that depend on the executor.
pub fn volumes_and_objects_behave_as_on_a_cluster(extra: &[&str]) -> RunResult {
    let objects = Objects::create();
    let params = objects.params();
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let run = run_json(&compile("volumes"), &params, extra);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    // Written to the claim by one step, read by the next; the secret as env and as a file;
    // the config map as both; each task's scratch space its own and empty at its start.
    assert_eq!(
        run.summary["outputs"]["Output"],
        "hello from write|True|fast|fast|[]"
    );
    let claim = run.task("createpvc")["outputs"]["parameters"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(claim.ends_with("-notes"), "{claim}");
    assert!(!volume_names().contains(&claim), "DeletePVC left {claim}");
    assert!(!shared_home().join("volumes").join(&claim).exists());
    // The value reached the step and was masked where it printed it.
    assert!(
        run.log_of("read").contains("the password is ***"),
        "{}",
        run.log_of("read")
    );
    let kept = kept_text(&run);
    assert!(
        !kept.contains(&objects.password),
        "the secret's value was kept by kfbox"
    );
    // Its files lasted as long as the task.
    let task_dir = Path::new(run.summary["run_dir"].as_str().unwrap()).join("tasks/read");
    assert!(!task_dir.join("pod-volumes").exists());
    // No "not applied" warnings: every setting of this pipeline is emulated.
    assert!(!run.stderr.contains("not applied"), "{}", run.stderr);
    run
}

#[test]
fn volumes_secrets_and_config_maps_reach_host_processes() {
    volumes_and_objects_behave_as_on_a_cluster(&[]);
}

/// A pod whose required Secret is missing never starts: the task fails before it runs,
/// naming the secret and how to make it; DeletePVC does not run, so the claim stays for
/// inspection as on a cluster (and is removed here).
#[test]
fn a_missing_required_secret_fails_the_task_before_it_starts() {
    let objects = Objects::create();
    let missing = format!("missing-{}", objects.secret);
    let run = run_json(
        &compile("volumes"),
        &[
            &format!("secret={missing}"),
            &format!("settings={}", objects.settings),
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.task("write")["state"], "SUCCEEDED");
    let read = run.task("read");
    assert_eq!(read["state"], "FAILED");
    assert_eq!(read["attempts"], 0, "{read:#}");
    let error = read["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("secret `{missing}` does not exist"))
            && error.contains("kfbox secrets set"),
        "{error}"
    );
    let claim = run.task("createpvc")["outputs"]["parameters"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(volume_names().contains(&claim));
    let deleted = kfbox(&["volumes", "delete", &claim]).output().unwrap();
    assert!(deleted.status.success());
    assert!(!volume_names().contains(&claim));
}

/// The volumes pipeline run beside `kfbox up`: what its API serves of the run (the run, its
/// graph, its artifacts, every task's whole log) holds the secret's value nowhere, and the
/// log of the step that printed it says `***`.
#[test]
fn a_secrets_value_is_in_no_api_response() {
    let served = Served::start("127.0.0.1", &[]);
    let objects = Objects::create_in(served.home());
    let [secret, settings] = objects.params();
    let pipeline = compile("volumes");
    let output = kfbox_in(
        served.home(),
        &[
            "run",
            pipeline.to_str().unwrap(),
            "--param",
            &secret,
            "--param",
            &settings,
            "--json",
        ],
    )
    .output()
    .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    let run_id = run.summary["run_id"].as_str().unwrap();
    let mut paths = vec![
        format!("/apis/v2beta1/runs/{run_id}"),
        format!("/apis/v1alpha1/runs/{run_id}/graph"),
        format!("/apis/v1alpha1/runs/{run_id}/artifacts"),
    ];
    // CreatePVC and DeletePVC run no step, so they have no log.
    for task in run.summary["tasks"].as_array().unwrap() {
        if task["log"].as_str().is_some_and(|log| !log.is_empty()) {
            let task = task["path"].as_str().unwrap();
            paths.push(format!("/apis/v1alpha1/runs/{run_id}/nodes/{task}/log"));
        }
    }
    let mut read_log = String::new();
    for path in &paths {
        let (code, body) = get(&served.url, path, None).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
        assert!(
            !body.contains(&objects.password),
            "{path} serves the secret's value"
        );
        if path.ends_with("/read/log") {
            read_log = body;
        }
    }
    assert!(read_log.contains("the password is ***"), "{read_log}");
}

#[test]
fn secrets_are_listed_by_key_and_bad_input_is_refused_naming_it() {
    let objects = Objects::create();
    let listed = kfbox_json(&["secrets", "list", "--json"]);
    let entry = listed["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == objects.secret.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(entry["keys"], serde_json::json!(["password"]));
    let text = listed.to_string();
    assert!(!text.contains(&objects.password));
    let file = shared_home()
        .join("secrets")
        .join(format!("{}.json", objects.secret));
    use std::os::unix::fs::PermissionsExt;
    let mode = fs_err::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for (args, expected) in [
        (
            vec!["secrets", "set", "Bad_Name", "k=v"],
            "`Bad_Name` is not a Kubernetes name",
        ),
        (
            vec!["secrets", "set", "ok-name", "../k=v"],
            "key `../k` is not a valid key",
        ),
        (
            vec!["secrets", "set", "ok-name", "hunter2"],
            "not KEY=VALUE",
        ),
        (
            vec!["volumes", "delete", "no-such-volume"],
            "no volume `no-such-volume`",
        ),
    ] {
        let output = kfbox(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        // A value given in the wrong place is never echoed.
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

/// `PipelineConfig(workspace=...)`: what one task writes in the workspace the next reads, in a
/// directory of the run's own.
pub fn the_workspace_is_shared_by_the_runs_tasks(extra: &[&str]) {
    let run = run_json(&compile("workspace"), &[], extra);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.summary["outputs"]["Output"], "cloned in workspace");
    let run_dir = Path::new(run.summary["run_dir"].as_str().unwrap());
    assert!(run_dir.join("workspace/repo/README").is_file());
    assert!(!run.stderr.contains("not applied"), "{}", run.stderr);
}

#[test]
fn the_workspace_is_shared_by_host_processes() {
    the_workspace_is_shared_by_the_runs_tasks(&[]);
}
