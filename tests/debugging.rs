//! The local debugging loop: a pipeline's Python file run as it is, failures told as the
//! exception and the user's file and line, logs that show the component's own lines.

use std::path::{Path, PathBuf};

use crate::common::served::{get, kfbox_in, Served};
use crate::common::{compile_file, kfbox, parse_run, repo_root, RunResult};

/// A copy of tests/debugging in a directory of its own (tests edit it).
fn flow_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["flow.py", "helpers.py"] {
        fs_err::copy(
            repo_root().join("tests/debugging").join(name),
            dir.path().join(name),
        )
        .unwrap();
    }
    dir
}

fn run_file(file: &Path, args: &[&str]) -> RunResult {
    let mut all = vec!["run", file.to_str().unwrap(), "--json"];
    all.extend(args);
    parse_run(kfbox(&all).output().unwrap())
}

/// The line of `file` that holds `marker`, counted from 1.
fn line_of(file: &Path, marker: &str) -> usize {
    fs_err::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(marker))
        .expect("the marker")
        + 1
}

#[test]
fn a_python_file_runs_as_its_compiled_yaml_does() {
    let dir = flow_dir();
    let file = dir.path().join("flow.py");
    let from_file = run_file(&file, &["--pipeline", "train_flow"]);
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    let yaml: PathBuf = compile_file(&file, "train_flow");
    let from_yaml = crate::common::run_json(&yaml, &[], &[]);
    assert_eq!(from_yaml.code, 0, "{}", from_yaml.stderr);
    assert_eq!(from_file.summary["outputs"], from_yaml.summary["outputs"]);
    assert_eq!(from_file.summary["outputs"]["Output"], 0.5);
    assert_eq!(from_file.summary["pipeline"], "train-flow");
    let states = |run: &RunResult| -> Vec<(String, String)> {
        let tasks = run.summary["tasks"].as_array().unwrap();
        tasks
            .iter()
            .map(|t| (t["path"].to_string(), t["state"].to_string()))
            .collect()
    };
    assert_eq!(states(&from_file), states(&from_yaml));
    // The pipeline name chooses too, and parameters apply as to YAML.
    let by_name = run_file(&file, &["--pipeline", "train-flow", "--param", "rate=0.6"]);
    assert_eq!(
        by_name.summary["outputs"]["Output"], 1.0,
        "{}",
        by_name.stderr
    );
}

#[test]
fn a_python_file_names_its_choices_and_its_errors() {
    let dir = flow_dir();
    let file = dir.path().join("flow.py");
    let several = run_file(&file, &[]);
    assert_eq!(several.code, 2);
    assert!(
        several
            .stderr
            .contains("defines 3 pipelines (rows_flow, shell_flow, train_flow)")
            && several.stderr.contains("--pipeline NAME"),
        "{}",
        several.stderr
    );
    let unknown = run_file(&file, &["--pipeline", "nope"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("no pipeline named `nope`"),
        "{}",
        unknown.stderr
    );
    // One component alone, its inputs as parameters.
    let alone = run_file(&file, &["--component", "prepare", "--param", "n=21"]);
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert_eq!(alone.summary["outputs"]["Output"], 42);
    // The user's own error while the file is compiled: their traceback, exit 2, nothing ran.
    fs_err::write(dir.path().join("helpers.py"), "RATE = 1 / 0\n").unwrap();
    let broken = run_file(&file, &["--pipeline", "train_flow"]);
    assert_eq!(broken.code, 2);
    assert!(
        broken
            .stderr
            .contains("flow.py raised while it was compiled")
            && broken.stderr.contains("helpers.py\", line 1, in <module>")
            && broken
                .stderr
                .contains("ZeroDivisionError: division by zero"),
        "{}",
        broken.stderr
    );
    assert!(
        !broken.stderr.contains("compile_pipeline.py"),
        "{}",
        broken.stderr
    );
}

/// A Python step that raises: its task's error is the exception with the user's file and line
/// in the table, in `--json`, in the recorded run and in the API; the log's traceback names the
/// user's file; `kfbox logs` shows the component's lines and `--all` the executor's too.
#[test]
fn a_failing_step_reads_as_its_exception_with_the_users_file_and_line() {
    let dir = flow_dir();
    let file = dir.path().join("flow.py");
    let want = format!(
        "ZeroDivisionError: division by zero (flow.py:{})",
        line_of(&file, "FAILS-HERE")
    );
    let mut served = Served::start("127.0.0.1", &[]);
    let output = kfbox_in(
        served.home(),
        &[
            "run",
            file.to_str().unwrap(),
            "--pipeline",
            "train_flow",
            "--param",
            "rate=0.5",
            "--json",
        ],
    )
    .output()
    .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 1);
    assert_eq!(run.error_of("train"), want, "{}", run.stderr);
    let run_id = run.summary["run_id"].as_str().unwrap().to_owned();
    let (status, body) = get(&served.url, &format!("/apis/v2beta1/runs/{run_id}"), None).unwrap();
    assert_eq!(status, 200, "{body}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let task = api["run_details"]["task_details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["display_name"] == "train")
        .cloned()
        .unwrap_or_else(|| panic!("{api:#}"));
    assert_eq!(task["error"]["message"], want.as_str(), "{task:#}");

    let table = kfbox_in(served.home(), &["runs", "get", &run_id])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains(&want));

    let log = |extra: &[&str]| {
        let mut args = vec!["logs", run_id.as_str(), "train"];
        args.extend(extra);
        let out = kfbox_in(served.home(), &args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mine = log(&[]);
    assert!(mine.contains("training at 0.5"), "{mine}");
    assert!(
        mine.contains(&format!(
            "File \"{}\", line {}, in train",
            fs_err::canonicalize(&file).unwrap().display(),
            line_of(&file, "FAILS-HERE")
        )),
        "{mine}"
    );
    assert!(
        !mine.contains("[KFP Executor") && !mine.contains("executor_input"),
        "{mine}"
    );
    let all = log(&["--all"]);
    assert!(
        all.contains("Got executor_input") && all.contains("training at 0.5"),
        "{all}"
    );
    served.stop();
}

/// A shell step that fails, on the host and in Docker: its error is the last lines it wrote
/// to stderr, not what it wrote to stdout. `kfbox debug` runs it again through the same
/// executor, its log shown as it comes and its output file read back.
#[test]
fn a_failing_shell_step_reads_as_its_last_stderr_lines() {
    let dir = flow_dir();
    let file = dir.path().join("flow.py");
    let said = "the step exited with code 3: cat: /nope: No such file or directory";
    for executor in ["process", "docker"] {
        let run = run_file(&file, &["--pipeline", "shell_flow", "--executor", executor]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(run.error_of("shell"), said, "under {executor}");

        let run_id = run.summary["run_id"].as_str().unwrap();
        let again = kfbox(&["debug", run_id, "shell", "--executor", executor])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&again.stdout);
        assert_eq!(again.status.code(), Some(1), "under {executor}: {shown}");
        assert!(shown.contains("to stdout\n"), "under {executor}: {shown}");
        assert!(shown.contains("✗ FAILED shell"), "{shown}");
        assert!(shown.contains(said), "under {executor}: {shown}");
        let recorded = kfbox(&["runs", "get", run_id, "--json"]).output().unwrap();
        let recorded: serde_json::Value = serde_json::from_slice(&recorded.stdout).unwrap();
        let debugged = &recorded["debug_executions"][0];
        assert_eq!(debugged["error"], said, "{recorded:#}");
        assert_eq!(debugged["outputs"]["said"], "code 3", "{recorded:#}");

        let refused = kfbox(&["debug", run_id, "shell", "--pdb"])
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&refused.stderr)
            .contains("--pdb, --notebook and --code are for Python components"));
    }
}

/// `--watch` on real file events: an edit of one component reruns that step and reuses the
/// other from the cache; an edit of a local module the file imports is seen too.
#[test]
fn watch_reruns_what_an_edit_changed() {
    let dir = flow_dir();
    let file = dir.path().join("flow.py");
    let mut child = kfbox(&[
        "run",
        file.to_str().unwrap(),
        "--pipeline",
        "train_flow",
        "--watch",
        "--json",
    ])
    .env_remove("KFBOX_CACHE")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let summaries = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let summaries = summaries.clone();
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buffer) {
                if n == 0 {
                    break;
                }
                summaries
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
    };
    let runs = || -> Vec<serde_json::Value> {
        let text = summaries.lock().unwrap().clone();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .map_while(Result::ok)
            .collect()
    };
    let wait_runs = |count: usize| {
        crate::common::wait_for(
            &format!("run {count} of the watch"),
            std::time::Duration::from_secs(60),
            || runs().len() >= count,
        );
        runs().pop().unwrap()
    };
    let state = |run: &serde_json::Value, path: &str| {
        run["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["path"] == path)
            .map(|t| t["state"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let first = wait_runs(1);
    assert_eq!(first["state"], "SUCCEEDED", "{first:#}");

    // A new line in `train` (unique, so no earlier run's result matches it).
    let marker = crate::common::uuid_like();
    let text = fs_err::read_to_string(&file).unwrap();
    fs_err::write(
        &file,
        text.replace(
            "    print(\"training at\", rate)",
            &format!("    print(\"training at\", rate, \"{marker}\")"),
        ),
    )
    .unwrap();
    let second = wait_runs(2);
    assert_eq!(state(&second, "prepare"), "CACHED", "{second:#}");
    assert_eq!(state(&second, "train"), "SUCCEEDED", "{second:#}");

    // The local module: the pipeline's default rate changes.
    fs_err::write(dir.path().join("helpers.py"), "RATE = 0.8\n").unwrap();
    let third = wait_runs(3);
    assert_eq!(state(&third, "prepare"), "CACHED", "{third:#}");
    assert_eq!(third["outputs"]["Output"], 1.0 / 3.0, "{third:#}");

    // A save that does not compile is reported and waited on; the next good one runs.
    fs_err::write(dir.path().join("helpers.py"), "RATE = (\n").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(runs().len(), 3);
    fs_err::write(dir.path().join("helpers.py"), "RATE = 0.9\n").unwrap();
    let fourth = wait_runs(4);
    assert_eq!(fourth["outputs"]["Output"], 0.25, "{fourth:#}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.code().is_some(), "{stderr}");
    assert!(
        stderr.contains("helpers.py changed: running it again")
            && stderr.contains("flow.py changed: running it again"),
        "{stderr}"
    );
    assert!(
        stderr.contains("flow.py raised while it was compiled") && stderr.contains("SyntaxError"),
        "{stderr}"
    );
}

/// `kfbox debug RUN TASK`: the failed task again on its recorded inputs, in a terminal; with
/// `--pdb` the debugger opens at the failing line (driven through a pseudo-terminal); with
/// `--code` a fixed file succeeds on the same inputs; the run itself is left as it was.
#[test]
fn debug_reruns_a_task_on_its_recorded_inputs() {
    let dir = flow_dir();
    let file = dir.path().join("flow.py");
    let run = run_file(&file, &["--pipeline", "train_flow", "--param", "rate=0.5"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run_id = run.summary["run_id"].as_str().unwrap().to_owned();

    let again = kfbox(&["debug", &run_id, "train"]).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("training at 0.5"), "{said}");
    assert!(
        said.contains("ZeroDivisionError: division by zero"),
        "{said}"
    );
    assert!(!said.contains("[KFP Executor"), "{said}");

    let driven = std::process::Command::new(crate::common::sdk_python())
        .arg(repo_root().join("tests/debugging/pty_driver.py"))
        .args(["(Pdb)", "p steps", "q", "--"])
        .arg(crate::common::kfbox_bin())
        .args(["debug", &run_id, "train", "--pdb"])
        .env("KFBOX_HOME", crate::common::shared_home())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let session = String::from_utf8_lossy(&driven.stdout);
    assert!(
        session.contains("-> return 1 / steps  # FAILS-HERE"),
        "the debugger did not stop at the failing line:\n{session}"
    );
    assert!(session.contains("(Pdb) p steps\r\n0"), "{session}");
    assert_eq!(driven.status.code(), Some(1), "{session}");

    let fixed = dir.path().join("fixed.py");
    fs_err::write(
        &fixed,
        fs_err::read_to_string(&file)
            .unwrap()
            .replace("int(rate * 10) - 5", "int(rate * 10) - 4"),
    )
    .unwrap();
    let tried = kfbox(&["debug", &run_id, "train", "--code", fixed.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&tried.stdout);
    assert_eq!(
        tried.status.code(),
        Some(0),
        "{said}{}",
        String::from_utf8_lossy(&tried.stderr)
    );
    assert!(said.contains("Output = 1.0"), "{said}");
    // The run is as it was; each debug execution is recorded beside it, not as its task.
    let recorded = kfbox(&["runs", "get", &run_id, "--json"]).output().unwrap();
    let recorded: serde_json::Value = serde_json::from_slice(&recorded.stdout).unwrap();
    assert_eq!(recorded["state"], "FAILED");
    let tasks = recorded["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 2, "{recorded:#}");
    let debugged = recorded["debug_executions"].as_array().unwrap();
    let states: Vec<&str> = debugged
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["FAILED", "FAILED", "SUCCEEDED"], "{recorded:#}");
    assert!(debugged.iter().all(|d| d["task"] == "train"));
    assert!(debugged[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("ZeroDivisionError: division by zero (flow.py:"));
    assert_eq!(debugged[2]["code"], fixed.to_str().unwrap());
    assert_eq!(debugged[2]["outputs"]["Output"], 1.0);
    let run_dir = recorded["run_dir"].as_str().unwrap();
    assert!(!debugged[2]["outputs_dir"]
        .as_str()
        .unwrap()
        .starts_with(run_dir));
    let shown = kfbox(&["runs", "get", &run_id]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("Debug executions (kfbox debug; not part of the run):"),
        "{shown}"
    );
}

/// `kfbox runs rerun RUN --param`: the run's recorded pipeline again, its parameter values kept
/// except the one changed.
#[test]
fn a_run_reruns_with_one_parameter_changed() {
    let dir = flow_dir();
    let file = dir.path().join("flow.py");
    let first = run_file(&file, &["--pipeline", "train_flow", "--param", "n=5"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let run_id = first.summary["run_id"].as_str().unwrap();
    let again = parse_run(
        kfbox(&[
            "runs",
            "rerun",
            &run_id[..8],
            "--param",
            "rate=0.6",
            "--json",
        ])
        .output()
        .unwrap(),
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_ne!(again.summary["run_id"], first.summary["run_id"]);
    assert_eq!(again.summary["outputs"]["Output"], 1.0);
    assert_eq!(again.task("prepare")["outputs"]["parameters"]["Output"], 10);
    let unknown = kfbox(&["runs", "rerun", run_id, "--param", "nope=1"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no such parameter"));
}
