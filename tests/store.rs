//! The run store: ML Metadata reads it, caching reuses executions, history commands read it,
//! and it survives killed and concurrent writers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{
    compile_unique, kfbox, kfbox_json, mlmd_python, parse_run, repo_root, run_json, running_run,
    sdk_python, shared_home, store_path, wait_for, RunResult,
};

/// `kfbox run --json` with the cache as users get it (tests otherwise turn it off).
fn cached_run(pipeline: &Path, extra: &[&str]) -> RunResult {
    let mut args = vec!["run", pipeline.to_str().expect("utf-8 path"), "--json"];
    args.extend(extra);
    let output = kfbox(&args)
        .env_remove("KFBOX_CACHE")
        .output()
        .expect("kfbox starts");
    parse_run(output)
}

fn states(run: &RunResult) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = run.summary["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["path"].as_str().unwrap_or_default().to_owned(),
                t["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn state_of(run: &RunResult, path: &str) -> String {
    run.task(path)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn ml_metadata_reads_the_run_its_executions_artifacts_and_events() {
    let (pipeline, name) = compile_unique("cache_chain", "cache-chain");
    let run = run_json(&pipeline, &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run_id = run.summary["run_id"].as_str().expect("run id");
    let output = Command::new(mlmd_python())
        .arg(repo_root().join("tests/store/mlmd_check.py"))
        .arg(store_path())
        .arg(run_id)
        .output()
        .expect("python starts");
    assert!(
        output.status.success(),
        "ml-metadata could not read the store:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).expect("json from mlmd_check.py");

    assert_eq!(read["context"]["type"], "system.PipelineRun");
    assert_eq!(read["context"]["name"], run_id);
    assert_eq!(
        read["parents"],
        serde_json::json!([{"type": "system.Pipeline", "name": name}])
    );
    let executions = read["executions"].as_array().expect("executions");
    let by_task = |task: &str| -> &Value {
        executions
            .iter()
            .find(|e| e["properties"]["task_name"] == task)
            .unwrap_or_else(|| panic!("no execution for task {task} in {executions:#?}"))
    };
    let root = executions
        .iter()
        .find(|e| e["name"] == format!("run/{run_id}"))
        .expect("root DAG execution named run/<id>");
    assert_eq!(root["type"], "system.DAGExecution");
    assert_eq!(root["state"], "COMPLETE");
    assert_eq!(root["properties"]["inputs"]["n"], 4.0);
    for task in ["source", "double", "report", "consume", "side"] {
        let e = by_task(task);
        assert_eq!(e["type"], "system.ContainerExecution", "{task}");
        assert_eq!(e["state"], "COMPLETE", "{task}");
        assert_eq!(e["properties"]["parent_dag_id"], root["id"], "{task}");
        assert_eq!(
            e["properties"]["cache_fingerprint"].as_str().map(str::len),
            Some(64),
            "{task}: a sha256 fingerprint"
        );
    }
    assert_eq!(by_task("double")["properties"]["inputs"]["x"], 5.0);
    assert_eq!(by_task("double")["properties"]["outputs"]["Output"], 10.0);

    let artifacts = read["artifacts"].as_array().expect("artifacts");
    assert_eq!(artifacts.len(), 1, "{artifacts:#?}");
    let dataset = &artifacts[0];
    let uri = run.task("report")["outputs"]["artifacts"]["data"][0]["uri"]
        .as_str()
        .expect("report's data uri");
    assert_eq!(dataset["type"], "system.Dataset");
    assert_eq!(dataset["uri"], uri);
    assert_eq!(dataset["state"], "LIVE");
    assert_eq!(dataset["properties"]["display_name"], "data");
    assert_eq!(dataset["properties"]["value"], 10.0);

    let events = read["events"].as_array().expect("events");
    let event = |execution: &Value, kind: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|ev| ev["execution_id"] == execution["id"] && ev["type"] == kind)
            .cloned()
            .collect()
    };
    let produced = event(by_task("report"), "OUTPUT");
    assert_eq!(produced.len(), 1, "{events:#?}");
    assert_eq!(produced[0]["artifact_id"], dataset["id"]);
    assert_eq!(produced[0]["path"], serde_json::json!(["data"]));
    let consumed = event(by_task("consume"), "INPUT");
    assert_eq!(consumed.len(), 1, "{events:#?}");
    assert_eq!(consumed[0]["artifact_id"], dataset["id"]);
}

#[test]
fn cache_hits_chain_and_an_edit_reruns_only_that_step_and_downstream() {
    let (pipeline, _) = compile_unique("cache_chain", "cache-chain");
    let first = cached_run(&pipeline, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        states(&first).iter().all(|(_, s)| s == "SUCCEEDED"),
        "{:?}",
        states(&first)
    );

    // Unchanged: no step executes at all, and the outputs are the same.
    let second = cached_run(&pipeline, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        states(&second).iter().all(|(_, s)| s == "CACHED"),
        "{:?}",
        states(&second)
    );
    assert_eq!(second.summary["outputs"], first.summary["outputs"]);
    let logs = Path::new(second.summary["run_dir"].as_str().unwrap()).join("logs");
    assert!(
        !logs.exists(),
        "a cached run executed something: {}",
        logs.display()
    );
    let reused = &second.task("report")["outputs"]["artifacts"]["data"][0]["uri"];
    assert_eq!(
        reused,
        &first.task("report")["outputs"]["artifacts"]["data"][0]["uri"]
    );
    assert!(second.task("consume")["reason"]
        .as_str()
        .unwrap_or_default()
        .contains(&first.summary["run_id"].as_str().unwrap()[..8]));

    // --no-cache and KFBOX_CACHE=off run everything again.
    let forced = cached_run(&pipeline, &["--no-cache"]);
    assert!(
        states(&forced).iter().all(|(_, s)| s == "SUCCEEDED"),
        "{:?}",
        states(&forced)
    );
    let off = run_json(&pipeline, &[], &[]);
    assert!(
        states(&off).iter().all(|(_, s)| s == "SUCCEEDED"),
        "{:?}",
        states(&off)
    );

    // Edit one step's code: it and what is downstream of it rerun; the rest is reused.
    let text = fs_err::read_to_string(&pipeline).unwrap();
    assert!(text.contains("x * 2"));
    fs_err::write(&pipeline, text.replace("x * 2", "x * 3")).unwrap();
    let edited = cached_run(&pipeline, &[]);
    assert_eq!(edited.code, 0, "{}", edited.stderr);
    for (task, expected) in [
        ("source", "CACHED"),
        ("side", "CACHED"),
        ("double", "SUCCEEDED"),
        ("report", "SUCCEEDED"),
        ("consume", "SUCCEEDED"),
    ] {
        assert_eq!(
            state_of(&edited, task),
            expected,
            "{task}: {:?}",
            states(&edited)
        );
    }
    assert_eq!(edited.summary["outputs"]["Output"], "value=15");

    // A changed parameter reruns the steps that see it.
    let param = cached_run(&pipeline, &["--param", "n=5"]);
    assert_eq!(state_of(&param, "source"), "SUCCEEDED");
    assert_eq!(state_of(&param, "side"), "SUCCEEDED");
    assert_eq!(param.summary["outputs"]["Output"], "value=18");
}

#[test]
fn history_commands_show_runs_logs_artifacts_and_lineage_and_delete_keeps_shared_files() {
    let (pipeline, name) = compile_unique("cache_chain", "cache-chain");
    let first = cached_run(&pipeline, &[]);
    let second = cached_run(&pipeline, &[]);
    assert_eq!((first.code, second.code), (0, 0), "{}", second.stderr);
    let first_id = first.summary["run_id"].as_str().unwrap().to_owned();
    let second_id = second.summary["run_id"].as_str().unwrap().to_owned();

    // `runs get --json` is the `run --json` summary again, rebuilt from the store.
    let got = kfbox_json(&["runs", "get", &first_id[..13], "--json"]);
    assert_eq!(got["run_id"], first_id.as_str());
    assert_eq!(got["outputs"], first.summary["outputs"]);
    assert_eq!(got["tasks"].as_array().map(Vec::len), Some(5));
    for task in first.summary["tasks"].as_array().unwrap() {
        let stored = got["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["path"] == task["path"])
            .expect("same tasks");
        assert_eq!(stored, task, "task as stored vs as reported");
    }

    let listed = kfbox_json(&["runs", "list", "--pipeline", &name, "--json"]);
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    assert_eq!(ids, [second_id.as_str(), first_id.as_str()], "newest first");
    let lineage_of_first = format!("{}", first_dataset_id(&first_id));
    for args in [
        vec!["runs", "list", "--pipeline", name.as_str()],
        vec!["runs", "get", second_id.as_str()],
        vec!["artifacts", "list", "--run", first_id.as_str()],
        vec!["lineage", lineage_of_first.as_str()],
    ] {
        let table = kfbox(&args).output().unwrap();
        let table = String::from_utf8_lossy(&table.stdout).into_owned();
        // Rows fit; the run's header and paths are left whole.
        let rows = table.lines().filter(|l| {
            !l.starts_with("Run ")
                && !l.starts_with("Logs and artifacts:")
                && !l.trim_start().starts_with('/')
        });
        assert!(
            rows.into_iter().all(|l| l.chars().count() <= 80),
            "wider than 80 columns: {args:?}\n{table}"
        );
    }
    let table = kfbox(&["runs", "list", "--pipeline", &name])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains(&first_id[..8]));

    let log = kfbox(&["logs", &first_id, "double"]).output().unwrap();
    assert!(log.status.success());
    assert!(String::from_utf8_lossy(&log.stdout).contains("double ran"));
    let missing = kfbox(&["logs", &first_id, "no-such-task"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-task"));

    let artifacts = kfbox_json(&["artifacts", "list", "--run", &first_id, "--json"]);
    let data = &artifacts["artifacts"][0];
    assert_eq!(data["type"], "system.Dataset");
    let id = data["id"].as_i64().expect("artifact id");
    let lineage = kfbox_json(&["lineage", &id.to_string(), "--json"]);
    assert_eq!(lineage["produced_by"]["run_id"], first_id.as_str());
    assert_eq!(lineage["produced_by"]["task"], "report");
    assert_eq!(lineage["reused_by"][0]["run_id"], second_id.as_str());
    assert_eq!(lineage["reused_by"][0]["state"], "CACHED");
    let consumers: Vec<&Value> = lineage["consumed_by"].as_array().unwrap().iter().collect();
    assert_eq!(consumers.len(), 2, "{lineage:#}");
    assert!(consumers.iter().all(|c| c["task"] == "consume"));
    let got = kfbox_json(&["artifacts", "get", &id.to_string(), "--json"]);
    assert_eq!(got["metadata"]["value"], 10);

    // The second run reuses the first run's dataset: deleting the first keeps that file.
    let uri = data["uri"].as_str().unwrap().to_owned();
    let deleted = kfbox_json(&["runs", "delete", &first_id, "--json"]);
    assert_eq!(deleted["artifacts_kept"], serde_json::json!([uri]));
    assert!(
        Path::new(&uri).exists(),
        "a file another run uses was removed"
    );
    assert!(!Path::new(first.summary["run_dir"].as_str().unwrap())
        .join("logs")
        .exists());
    let gone = kfbox(&["runs", "get", &first_id]).output().unwrap();
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no run matches"));
    // Deleting the last user removes it.
    kfbox_json(&["runs", "delete", &second_id, "--json"]);
    assert!(
        !Path::new(&uri).exists(),
        "{uri} outlived every run using it"
    );
}

/// The id of the dataset a run's `report` produced.
fn first_dataset_id(run_id: &str) -> i64 {
    let listed = kfbox_json(&["artifacts", "list", "--run", run_id, "--json"]);
    listed["artifacts"][0]["id"]
        .as_i64()
        .expect("an artifact id")
}

#[test]
fn a_killed_run_is_marked_failed_and_the_store_stays_consistent() {
    let (pipeline, name) = compile_unique("sleeper", "sleeper");
    // A finished run of the same pipeline, which must survive intact.
    let before = run_json(&pipeline, &["seconds=0"], &[]);
    assert_eq!(before.code, 0, "{}", before.stderr);
    let marker = format!("kill-{}", crate::common::uuid_like());
    let mut running = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--param",
        &format!("marker={marker}"),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("kfbox starts");
    let run_id = running_run(&name);
    // `logs --follow` streams the step's output while it runs.
    let mut follow = kfbox(&["logs", &run_id, "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kfbox logs starts");
    let mut stdout = follow.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = lines.send(text.clone());
        }
    });
    let want = format!("napping {marker}");
    let start = Instant::now();
    loop {
        let text = received
            .recv_timeout(Duration::from_secs(90))
            .expect("kfbox logs --follow printed the step's output");
        if text.contains(&want) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(90));
    }

    // The step's process, as kfbox noted it (`<pid> <start time>`).
    let noted = shared_home()
        .join("runs")
        .join(&run_id)
        .join("tasks/nap/process");
    let pid: u32 = fs_err::read_to_string(&noted)
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no process noted in {}", noted.display()));
    let step_alive = || crate::common::process_runs(pid);
    // The step sleeps for a minute, so only recovery can stop it within the
    // limit below. (After the kill, the follower's own recovery may stop it
    // at any moment: checking that it outlived kfbox would race.)
    assert!(step_alive(), "the step runs before kfbox is killed");
    running.kill().expect("kill -9 kfbox");
    running.wait().unwrap();

    // The follower notices the dead run and ends.
    let started = Instant::now();
    while follow.try_wait().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "logs --follow kept following a dead run"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let got = kfbox_json(&["runs", "get", &run_id, "--json"]);
    // Recovery also stopped the step the dead kfbox left running.
    wait_for(
        "the orphaned step to be stopped",
        Duration::from_secs(10),
        || !step_alive(),
    );
    assert_eq!(got["state"], "FAILED", "{got:#}");
    assert!(
        got["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ended without finishing"),
        "{got:#}"
    );
    assert_eq!(got["tasks"][0]["state"], "FAILED", "{got:#}");
    let earlier = kfbox_json(&[
        "runs",
        "get",
        before.summary["run_id"].as_str().unwrap(),
        "--json",
    ]);
    assert_eq!(earlier["state"], "SUCCEEDED");
    assert_eq!(earlier["tasks"], before.summary["tasks"]);

    let check = Command::new(sdk_python())
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(store_path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
}

#[test]
fn eight_runs_started_at_once_are_all_recorded_and_list_in_pages() {
    let (pipeline, name) = compile_unique("cache_chain", "cache-chain");
    let children: Vec<_> = (0..8)
        .map(|i| {
            kfbox(&[
                "run",
                pipeline.to_str().unwrap(),
                "--json",
                "--param",
                &format!("n={i}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kfbox starts")
        })
        .collect();
    for child in children {
        let run = parse_run(child.wait_with_output().unwrap());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stderr.contains("locked"), "{}", run.stderr);
        assert!(!run.stderr.contains("recording the run"), "{}", run.stderr);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec![
            "runs",
            "list",
            "--pipeline",
            &name,
            "--limit",
            "3",
            "--json",
        ];
        if let Some(t) = &token {
            args.push("--page-token");
            args.push(t);
        }
        let page = kfbox_json(&args);
        for run in page["runs"].as_array().unwrap() {
            assert_eq!(run["state"], "SUCCEEDED");
            seen.push(run["run_id"].as_str().unwrap().to_owned());
        }
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (8, 8), "{seen:?}");
}

#[test]
fn a_store_from_a_newer_kfbox_is_refused_and_left_alone() {
    let home = tempfile::tempdir().unwrap();
    let list = |home: &Path| {
        kfbox(&["runs", "list"])
            .env("KFBOX_HOME", home)
            .output()
            .unwrap()
    };
    assert!(list(home.path()).status.success());
    let store = home.path().join("kfbox.sqlite");
    let set = |sql: &str| {
        let status = Command::new(sdk_python())
            .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit(); print(c.execute('PRAGMA user_version').fetchone()[0])"])
            .arg(&store)
            .arg(sql)
            .output()
            .unwrap();
        String::from_utf8_lossy(&status.stdout).trim().to_owned()
    };
    assert_eq!(set("PRAGMA user_version = 99"), "99");
    let refused = list(home.path());
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("newer kfbox"), "{stderr}");
    assert!(stderr.contains("kfbox.sqlite"), "{stderr}");
    assert_eq!(set("SELECT 1"), "99", "the refused store was modified");
}

#[test]
fn a_custom_cache_key_ignores_inputs_and_disabled_caching_always_runs() {
    let (pipeline, _) = compile_unique("cache_key", "cache-key");
    let output = |run: &RunResult, task: &str| -> String {
        run.task(task)["outputs"]["parameters"]["Output"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let first = cached_run(&pipeline, &["--param", "n=1"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // A different input: the keyed task is still a hit, as on a cluster (the key replaces
    // inputs, image and command in the fingerprint).
    let second = cached_run(&pipeline, &["--param", "n=2"]);
    assert_eq!(
        state_of(&second, "stamp"),
        "CACHED",
        "{:?}",
        states(&second)
    );
    assert_eq!(output(&second, "stamp"), output(&first, "stamp"));
    assert_eq!(state_of(&second, "stamp-2"), "SUCCEEDED");
    assert_ne!(output(&second, "stamp-2"), output(&first, "stamp-2"));
    assert!(output(&second, "stamp-2").starts_with("2-"));
}

#[test]
fn writes_by_ml_metadata_itself_leave_the_store_usable() {
    // A copy of the shared store, taken with SQLite's backup API while other tests write.
    let home = tempfile::tempdir().unwrap();
    let copy = home.path().join("kfbox.sqlite");
    let backup = Command::new(sdk_python())
        .args([
            "-c",
            "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))",
        ])
        .arg(store_path())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(backup.success());
    let written = Command::new(mlmd_python())
        .arg(repo_root().join("tests/store/mlmd_write.py"))
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        written.status.success(),
        "ml-metadata could not write:\n{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let id = String::from_utf8_lossy(&written.stdout).trim().to_owned();
    let in_copy = |args: &[&str]| -> Value {
        let output = kfbox(args).env("KFBOX_HOME", home.path()).output().unwrap();
        assert!(
            output.status.success(),
            "kfbox {args:?} after MLMD wrote:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let artifact = in_copy(&["artifacts", "get", &id, "--json"]);
    assert_eq!(artifact["type"], "external.Table");
    assert_eq!(artifact["name"], "table");
    let lineage = in_copy(&["lineage", &id, "--json"]);
    assert_eq!(lineage["consumed_by"][0]["type"], "external.Notebook");
    assert_eq!(lineage["produced_by"], Value::Null);
    // kfbox goes on writing after MLMD did (a shell-only pipeline: no Python environment).
    let (pipeline, name) = compile_unique("containers", "containers");
    for expected in ["SUCCEEDED", "CACHED"] {
        let output = kfbox(&["run", pipeline.to_str().unwrap(), "--json"])
            .env("KFBOX_HOME", home.path())
            .env_remove("KFBOX_CACHE")
            .output()
            .unwrap();
        let run = parse_run(output);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(state_of(&run, "greet"), expected, "{:?}", states(&run));
    }
    let runs = in_copy(&["runs", "list", "--pipeline", &name, "--json"]);
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(2));
}
