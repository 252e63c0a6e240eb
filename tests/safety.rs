//! Boundaries: nothing a pipeline file, a request or a web page sends reaches outside
//! KFBOX_HOME, takes the server down or runs uninvited. Each test pins one defect found by
//! probing kfbox as an attacker and as a careless user would, and is named after it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::common::served::{get, healthy, kfbox_in, new_home, request, Served};
use crate::common::wait_for;

/// Enough `..` to reach `/` from anywhere under the home.
const UP: &str = "../../../../../../../../../../../../../../../../../../../../../../../../";

/// A pipeline of one step `task` that runs `command` (placeholders expanded) with `sh`.
fn shell_pipeline(name: &str, task: &str, outputs: Value, command: &[&str]) -> Value {
    json!({
        "pipelineInfo": {"name": name},
        "schemaVersion": "2.1.0",
        "sdkVersion": "kfp-2.17.0",
        "root": {"dag": {"tasks": {task: {
            "taskInfo": {"name": task},
            "componentRef": {"name": "comp-step"},
        }}}},
        "components": {"comp-step": {"executorLabel": "exec-step", "outputDefinitions": outputs}},
        "deploymentSpec": {"executors": {"exec-step": {"container": {
            "image": "alpine",
            "command": command,
        }}}},
    })
}

fn write_spec(dir: &Path, file: &str, spec: &Value) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_vec(spec).unwrap()).unwrap();
    path
}

/// A directory outside every home, holding `notes.txt` ("mine"), that nothing may touch.
struct Victim {
    dir: tempfile::TempDir,
}

impl Victim {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The victim's path reached from inside the home by walking up.
    fn walked(&self, rest: &str) -> String {
        format!(
            "{UP}{}/{rest}",
            self.path().display().to_string().trim_start_matches('/')
        )
    }

    fn assert_untouched(&self, what: &str) {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["notes.txt"], "{what} wrote beside the victim");
        assert_eq!(
            std::fs::read_to_string(self.path().join("notes.txt")).unwrap(),
            "mine",
            "{what} changed the victim"
        );
    }
}

fn run_in(home: &Path, args: &[&str]) -> Output {
    kfbox_in(home, args).output().expect("kfbox starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The run ids recorded in `home`.
fn recorded_runs(home: &Path) -> Vec<String> {
    let out = run_in(home, &["runs", "list", "--json"]);
    assert!(out.status.success(), "runs list: {}", text(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect()
}

/// POST a run of `spec` named `name` as a program would (JSON, no Origin): status and body.
fn create_run(served: &Served, name: &str, spec: &Value) -> (u16, String) {
    let body = json!({"display_name": name, "pipeline_spec": spec});
    request(
        &served.url,
        "POST",
        "/apis/v2beta1/runs",
        &["Content-Type: application/json"],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

fn artifact_type() -> Value {
    json!({"artifactType": {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}})
}

/// Specs whose output parameter, task or output artifact names are paths out of the home.
fn path_name_specs(victim: &Victim) -> Vec<(&'static str, Value)> {
    let absolute = victim.path().join("notes.txt").display().to_string();
    let walked_artifact = victim.walked("art");
    vec![
        (
            "an output parameter named by an absolute path",
            shell_pipeline(
                "path-names",
                "step",
                json!({"parameters": {&absolute: {"parameterType": "STRING"}}}),
                &[
                    "sh",
                    "-c",
                    "echo owned > \"$0\"",
                    &format!("{{{{$.outputs.parameters['{absolute}'].output_file}}}}"),
                ],
            ),
        ),
        (
            "a task named by a walk out of the home",
            shell_pipeline(
                "path-names",
                &victim.walked("task"),
                json!({}),
                &["sh", "-c", "true"],
            ),
        ),
        (
            "an output artifact named by a walk out of the home",
            shell_pipeline(
                "path-names",
                "step",
                json!({"artifacts": {&walked_artifact: artifact_type()}}),
                &[
                    "sh",
                    "-c",
                    "mkdir -p \"$0\" && echo owned > \"$0/f\"",
                    &format!("{{{{$.outputs.artifacts['{walked_artifact}'].path}}}}"),
                ],
            ),
        ),
    ]
}

#[test]
fn spec_names_that_are_paths_write_nothing_outside_the_home() {
    let home = new_home();
    let victim = Victim::new();
    for (what, spec) in path_name_specs(&victim) {
        let file = write_spec(home.path(), "names.json", &spec);
        let out = run_in(home.path(), &["run", file.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            stderr.contains("cannot name a file"),
            "{what}: the error says why: {stderr}"
        );
        victim.assert_untouched(what);
    }
    assert!(recorded_runs(home.path()).is_empty());
}

#[test]
fn api_refuses_spec_names_that_are_paths() {
    let served = Served::start("127.0.0.1", &[]);
    let victim = Victim::new();
    for (what, spec) in path_name_specs(&victim) {
        let (code, body) = create_run(&served, "names", &spec);
        assert_eq!(code, 400, "{what}: {body}");
        assert!(body.contains("cannot name a file"), "{what}: {body}");
        victim.assert_untouched(what);
    }
    assert!(recorded_runs(served.home()).is_empty());
}

#[test]
fn deleting_a_run_never_deletes_outside_the_home() {
    let home = new_home();
    let victim = Victim::new();
    // The step points its output artifact's URI, through the executor output, at a walk out
    // of the run directory.
    let script = format!(
        "mkdir -p \"$0\" && printf '{{\"artifacts\":{{\"out\":{{\"artifacts\":[{{\"uri\":\"%s\"}}]}}}}}}' \"$0/{}\" > \"$1\"",
        victim.walked("")
    );
    let spec = shell_pipeline(
        "walked-uri",
        "step",
        json!({"artifacts": {"out": artifact_type()}}),
        &[
            "sh",
            "-c",
            &script,
            "{{$.outputs.artifacts['out'].path}}",
            "{{$.outputs.output_file}}",
        ],
    );
    let file = write_spec(home.path(), "walked.json", &spec);
    let out = run_in(home.path(), &["run", file.to_str().unwrap(), "--json"]);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    let run_id = summary["run_id"].as_str().unwrap();
    let deleted = run_in(home.path(), &["runs", "delete", run_id]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    victim.assert_untouched("deleting the run");
    assert!(recorded_runs(home.path()).is_empty());
}

/// A run that would leave `marker` behind if it ran.
fn marker_run(marker: &Path) -> Value {
    let spec = shell_pipeline(
        "uninvited",
        "step",
        json!({}),
        &["sh", "-c", &format!("touch {}", marker.display())],
    );
    json!({"display_name": "uninvited", "pipeline_spec": spec})
}

#[test]
fn cross_site_requests_cannot_start_runs() {
    let served = Served::start("127.0.0.1", &[]);
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("ran");
    let run = marker_run(&marker).to_string();
    let port = served.url.rsplit(':').next().unwrap().to_owned();
    let evil = "Origin: http://evil.example";
    let refused = [
        // A "simple" request: a page's form or fetch without a CORS preflight.
        (
            "text/plain from a foreign page",
            vec![evil, "Content-Type: text/plain"],
        ),
        (
            "JSON from a foreign page",
            vec![evil, "Content-Type: application/json"],
        ),
        (
            "text/plain without an origin",
            vec!["Content-Type: text/plain"],
        ),
        (
            "a form post",
            vec!["Content-Type: application/x-www-form-urlencoded"],
        ),
        (
            "an opaque origin",
            vec!["Origin: null", "Content-Type: application/json"],
        ),
        (
            "a cross-site fetch without an origin",
            vec![
                "Sec-Fetch-Site: cross-site",
                "Content-Type: application/json",
            ],
        ),
    ];
    for (what, headers) in refused {
        let (code, body) = request(
            &served.url,
            "POST",
            "/apis/v2beta1/runs",
            &headers,
            run.as_bytes(),
        )
        .unwrap();
        assert!(code == 403 || code == 415, "{what}: {code} {body}");
        assert!(
            body.contains("\"code\""),
            "{what}: the API's error body: {body}"
        );
    }
    // What a DNS-rebinding page needs: the API answering under a foreign name.
    let rebound = format!("Host: evil.example:{port}");
    let (code, body) = request(&served.url, "GET", "/apis/v2beta1/runs", &[&rebound], b"").unwrap();
    assert_eq!(code, 403, "{body}");
    // A multipart upload from a foreign page.
    let boundary = "kfboxboundary";
    let spec = marker_run(&marker)["pipeline_spec"].to_string();
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; filename=\"p.json\"\r\nContent-Type: application/json\r\n\r\n{spec}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("Content-Type: multipart/form-data; boundary={boundary}");
    let (code, body) = request(
        &served.url,
        "POST",
        "/apis/v2beta1/pipelines/upload?name=evil",
        &[evil, &content_type],
        multipart.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 403, "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(!marker.exists(), "a refused request ran its step");
    assert!(recorded_runs(served.home()).is_empty());
    let (_, pipelines) = get(&served.url, "/apis/v2beta1/pipelines", None).unwrap();
    assert!(!pipelines.contains("evil"), "{pipelines}");

    // The same requests from kfbox's own page, or from a client that is no browser, work.
    let own = format!("Origin: http://127.0.0.1:{port}");
    let (code, body) = request(
        &served.url,
        "POST",
        "/apis/v2beta1/pipelines/upload?name=own",
        &[&own, &content_type],
        multipart.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let local = format!("Host: localhost:{port}");
    let local_origin = format!("Origin: http://localhost:{port}");
    let (code, body) = request(
        &served.url,
        "POST",
        "/apis/v2beta1/runs",
        &[&local_origin, &local, "Content-Type: application/json"],
        run.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    wait_for("the invited run's step", Duration::from_secs(60), || {
        marker.exists()
    });
}

/// A chain of `n` `sh` steps, each after the one before.
fn chain(n: usize) -> Value {
    let mut tasks = serde_json::Map::new();
    for i in 0..n {
        let mut task =
            json!({"taskInfo": {"name": format!("t{i}")}, "componentRef": {"name": "comp-step"}});
        if i > 0 {
            task["dependentTasks"] = json!([format!("t{}", i - 1)]);
        }
        tasks.insert(format!("t{i}"), task);
    }
    let mut spec = shell_pipeline("chain", "t0", json!({}), &["sh", "-c", "true"]);
    spec["root"]["dag"]["tasks"] = Value::Object(tasks);
    spec
}

fn upload(served: &Served, name: &str, spec: &Value) -> (u16, String) {
    let boundary = "kfboxboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; filename=\"p.json\"\r\nContent-Type: application/json\r\n\r\n"
    )
    .into_bytes();
    body.extend(serde_json::to_vec(spec).unwrap());
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    request(
        &served.url,
        "POST",
        &format!("/apis/v2beta1/pipelines/upload?name={name}"),
        &[&format!(
            "Content-Type: multipart/form-data; boundary={boundary}"
        )],
        &body,
    )
    .unwrap()
}

#[test]
fn a_ten_thousand_task_chain_is_checked_without_overflowing_the_stack() {
    let mut served = Served::start("127.0.0.1", &[]);
    let (code, body) = upload(&served, "chain", &chain(10_000));
    assert_eq!(code, 200, "{}", &body[..body.len().min(2000)]);
    assert!(
        healthy(&served.url, None),
        "the server died validating a chain"
    );
    assert!(served.stop().success());

    // Beyond the documented limit the file is refused whole, naming the limit.
    let home = new_home();
    let file = write_spec(home.path(), "chain.json", &chain(50_000));
    let out = run_in(home.path(), &["run", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("tasks"), "{stderr}");
}

#[test]
fn a_deeply_nested_condition_is_refused_without_killing_the_server() {
    let mut served = Served::start("127.0.0.1", &[]);
    let mut spec = shell_pipeline("deep-condition", "step", json!({}), &["sh", "-c", "true"]);
    for condition in [
        format!("{}true{}", "(".repeat(50_000), ")".repeat(50_000)),
        format!("{}true", "!".repeat(50_000)),
    ] {
        spec["root"]["dag"]["tasks"]["step"]["triggerPolicy"] = json!({"condition": condition});
        let (code, body) = upload(&served, "deep", &spec);
        assert_eq!(code, 400, "{}", &body[..body.len().min(500)]);
        assert!(body.contains("triggerPolicy.condition"), "{}", &body[..500]);
        assert!(
            healthy(&served.url, None),
            "the server died checking a condition"
        );
    }
    assert!(served.stop().success());
}

/// The resident memory of a process, in MiB.
fn resident_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[test]
fn a_terminated_runaway_gives_its_memory_back() {
    let served = Served::start("127.0.0.1", &[]);
    let pid = served.child.as_ref().unwrap().id();
    std::thread::sleep(Duration::from_secs(2));
    let idle = resident_mib(pid);
    // A loop of 4,000 iterations whose steps would sleep for a minute each.
    let mut spec = shell_pipeline("runaway", "loop", json!({}), &["sh", "-c", "sleep 60"]);
    spec["root"]["dag"]["tasks"]["loop"] = json!({
        "taskInfo": {"name": "loop"},
        "componentRef": {"name": "comp-body"},
        "parameterIterator": {"itemInput": "item", "items": {"raw": serde_json::to_string(&(0..4000).collect::<Vec<_>>()).unwrap()}},
    });
    spec["components"]["comp-body"] = json!({
        "inputDefinitions": {"parameters": {"item": {"parameterType": "NUMBER_INTEGER"}}},
        "dag": {"tasks": {"step": {"taskInfo": {"name": "step"}, "componentRef": {"name": "comp-step"}}}},
    });
    let (code, body) = create_run(&served, "runaway", &spec);
    assert_eq!(code, 200, "{body}");
    let run_id = serde_json::from_str::<Value>(&body).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut peak = idle;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_secs(1));
        peak = peak.max(resident_mib(pid));
    }
    assert!(
        peak > 3 * idle,
        "the runaway grew the server: idle {idle} MiB, peak {peak} MiB"
    );
    let (code, body) = request(
        &served.url,
        "POST",
        &format!("/apis/v2beta1/runs/{run_id}:terminate"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    // The list, not the run with its 8,000 task details: a cheap read while the server is busy.
    wait_for("the runaway to end", Duration::from_secs(120), || {
        get(&served.url, "/apis/v2beta1/runs", None).is_ok_and(|(_, body)| {
            body.contains(&run_id) && body.contains("\"state\":\"CANCELED\"")
        })
    });
    let started = std::time::Instant::now();
    let mut now = resident_mib(pid);
    while now > 2 * idle && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
        now = resident_mib(pid);
    }
    assert!(
        now <= 2 * idle,
        "a minute after the runaway ended: idle {idle} MiB, peak {peak} MiB, now {now} MiB"
    );
}

/// A pipeline whose root runs `comp-a`, where `components` holds the DAGs given.
fn nested_pipeline(components: Value) -> Value {
    let mut spec = shell_pipeline("nested", "start", json!({}), &["sh", "-c", "true"]);
    spec["root"]["dag"]["tasks"]["start"]["componentRef"]["name"] = json!("comp-a");
    for (name, component) in components.as_object().unwrap() {
        spec["components"][name] = component.clone();
    }
    spec
}

fn dag_of(tasks: &[(&str, &str)]) -> Value {
    let tasks: serde_json::Map<String, Value> = tasks
        .iter()
        .map(|(task, component)| {
            (
                (*task).to_owned(),
                json!({"taskInfo": {"name": task}, "componentRef": {"name": component}}),
            )
        })
        .collect();
    json!({"dag": {"tasks": tasks}})
}

#[test]
fn a_component_that_contains_itself_is_refused() {
    let home = new_home();
    let served = Served::start("127.0.0.1", &[]);
    let cases = [
        ("itself", json!({"comp-a": dag_of(&[("again", "comp-a")])})),
        (
            "each other",
            json!({
                "comp-a": dag_of(&[("b", "comp-b")]),
                "comp-b": dag_of(&[("step", "comp-step"), ("a", "comp-a")]),
            }),
        ),
    ];
    for (what, components) in cases {
        let spec = nested_pipeline(components);
        let file = write_spec(home.path(), "recursive.json", &spec);
        let started = std::time::Instant::now();
        let out = run_in(home.path(), &["run", file.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("contains itself"), "{what}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let (code, body) = create_run(&served, "r", &spec);
        assert_eq!(code, 400, "{what}: {body}");
    }
    assert!(recorded_runs(home.path()).is_empty());
    assert!(recorded_runs(served.home()).is_empty());
}

/// Start a run through the API and wait until it ended; its id and state.
fn api_run(served: &Served, spec: &Value) -> (String, String) {
    let (code, body) = create_run(served, "api", spec);
    assert_eq!(code, 200, "{body}");
    let run: Value = serde_json::from_str(&body).unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let mut state = String::new();
    wait_for("the run to end", Duration::from_secs(60), || {
        let (_, body) = get(&served.url, &format!("/apis/v2beta1/runs/{run_id}"), None).unwrap();
        let run: Value = serde_json::from_str(&body).unwrap_or_default();
        state = run["state"].as_str().unwrap_or_default().to_owned();
        !matches!(state.as_str(), "RUNNING" | "PENDING" | "")
    });
    (run_id, state)
}

#[test]
fn directory_artifacts_are_served_without_following_symlinks() {
    let served = Served::start("127.0.0.1", &[]);
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("id_ed25519");
    let marker = format!("PRIVATE-KEY-{}", std::process::id());
    std::fs::write(&secret, &marker).unwrap();
    let script = format!(
        "mkdir -p \"$0\" && echo visible > \"$0/real\" && ln -s {secret} \"$0/inner\" && ln -s {secret} \"$1\"",
        secret = secret.display()
    );
    let spec = shell_pipeline(
        "planted-links",
        "step",
        json!({"artifacts": {"out": artifact_type(), "single": artifact_type()}}),
        &[
            "sh",
            "-c",
            &script,
            "{{$.outputs.artifacts['out'].path}}",
            "{{$.outputs.artifacts['single'].path}}",
        ],
    );
    let (run_id, state) = api_run(&served, &spec);
    assert_eq!(state, "SUCCEEDED");
    let (code, body) = get(
        &served.url,
        &format!("/apis/v2beta1/runs/{run_id}/nodes/step/artifacts/out:read"),
        None,
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let read: Value = serde_json::from_str(&body).unwrap();
    let tar = base64::engine::general_purpose::STANDARD
        .decode(read["data"].as_str().unwrap())
        .unwrap();
    let tar = text(&tar);
    assert!(
        tar.contains("visible"),
        "the directory's own file is archived"
    );
    assert!(
        !tar.contains(&marker),
        "a planted link's target was archived"
    );
    let (code, body) = get(
        &served.url,
        &format!("/apis/v2beta1/runs/{run_id}/nodes/step/artifacts/single:read"),
        None,
    )
    .unwrap();
    assert!(!body.contains(&marker), "{code}: a planted link was read");
    assert!(code == 400 || code == 404, "{code}: {body}");
    // The UI's content route reads through the same function.
    let (_, body) = get(
        &served.url,
        &format!("/apis/v1alpha1/runs/{run_id}/artifacts"),
        None,
    )
    .unwrap();
    let listed: Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<String> = listed["artifacts"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|a| a["artifact_id"].to_string().trim_matches('"').to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    for id in ids {
        let (_, body) = get(
            &served.url,
            &format!("/apis/v1alpha1/artifacts/{id}/content"),
            None,
        )
        .unwrap();
        assert!(
            !body.contains(&marker),
            "artifact {id}: a planted link was read"
        );
    }
}

#[test]
fn terminal_escapes_in_names_are_shown_escaped() {
    let home = new_home();
    let hostile = "x\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m";
    let mut spec = shell_pipeline(
        &format!("esc{hostile}"),
        "step",
        json!({}),
        &["sh", "-c", "exit 3"],
    );
    spec["root"]["dag"]["tasks"]["step"]["taskInfo"]["name"] = json!(format!("shown{hostile}"));
    let file = write_spec(home.path(), "escapes.json", &spec);
    let run_name = format!("run{hostile}");
    let out = run_in(
        home.path(),
        &["run", file.to_str().unwrap(), "--run-name", &run_name],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let clean = |what: &str, bytes: &[u8]| {
        let shown = text(bytes);
        assert!(
            !shown.contains(['\u{1b}', '\u{7}', '\u{9b}']),
            "{what} printed a control character: {shown:?}"
        );
    };
    clean("kfbox run (stdout)", &out.stdout);
    clean("kfbox run (stderr)", &out.stderr);
    let runs = recorded_runs(home.path());
    assert_eq!(runs.len(), 1);
    for args in [
        vec!["runs", "list"],
        vec!["runs", "get", &runs[0]],
        vec!["artifacts", "list", "--run", &runs[0]],
    ] {
        let out = run_in(home.path(), &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        clean(&format!("{args:?}"), &out.stdout);
        clean(&format!("{args:?}"), &out.stderr);
    }
}

/// A pipeline taking integer `n`, its default (if any) as given, that echoes it.
fn integer_pipeline(default: Option<Value>) -> Value {
    let mut spec = shell_pipeline(
        "integers",
        "step",
        json!({}),
        &["sh", "-c", "echo \"$0\"", "{{$.inputs.parameters['n']}}"],
    );
    let mut definition = json!({"parameterType": "NUMBER_INTEGER"});
    if let Some(default) = default {
        definition["defaultValue"] = default;
        definition["isOptional"] = json!(true);
    }
    spec["root"]["inputDefinitions"] = json!({"parameters": {"n": definition}});
    spec["components"]["comp-step"]["inputDefinitions"] =
        json!({"parameters": {"n": {"parameterType": "NUMBER_INTEGER"}}});
    spec["root"]["dag"]["tasks"]["step"]["inputs"] =
        json!({"parameters": {"n": {"componentInputParameter": "n"}}});
    spec
}

#[test]
fn integers_beyond_64_bits_are_refused_not_clamped() {
    let home = new_home();
    let too_big: Value = serde_json::from_str("1e40").unwrap();
    let file = write_spec(
        home.path(),
        "default.json",
        &integer_pipeline(Some(too_big)),
    );
    let out = run_in(home.path(), &["run", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("64-bit"), "{stderr}");
    let file = write_spec(home.path(), "given.json", &integer_pipeline(None));
    for given in [
        "n=10000000000000000000000000000000000000000",
        "n=1e40",
        "n=9223372036854775808",
    ] {
        let out = run_in(
            home.path(),
            &["run", file.to_str().unwrap(), "--param", given],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{given}: {stderr}");
    }
    // The largest integer still passes, exactly.
    let out = run_in(
        home.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--param",
            "n=9223372036854775807",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(recorded_runs(home.path()).len() == 1);
}

/// `depth` DAG components each holding the next; the innermost runs the step.
fn deeply_nested(depth: usize) -> Value {
    let mut components = serde_json::Map::new();
    for level in 0..depth {
        let inner = if level + 1 == depth {
            "comp-step".to_owned()
        } else {
            format!("comp-d{}", level + 1)
        };
        components.insert(format!("comp-d{level}"), dag_of(&[("inner", &inner)]));
    }
    let mut spec = nested_pipeline(Value::Object(components));
    spec["root"]["dag"]["tasks"]["start"]["componentRef"]["name"] = json!("comp-d0");
    spec
}

#[test]
fn unrunnable_files_are_refused_before_anything_runs() {
    let home = new_home();
    let mut nul_task = shell_pipeline("nul", "st\0ep", json!({}), &["sh", "-c", "true"]);
    nul_task["root"]["dag"]["tasks"]["st\0ep"]["taskInfo"]["name"] = json!("step");
    let huge_word = shell_pipeline(
        "huge-word",
        "step",
        json!({}),
        &["sh", "-c", &format!("true {}", "x".repeat(10 << 20))],
    );
    let mut future = shell_pipeline("future", "step", json!({}), &["sh", "-c", "true"]);
    future["schemaVersion"] = json!("99.0.0");
    let duplicate_keys = "pipelineInfo:\n  name: dup\nschemaVersion: 2.1.0\nroot:\n  dag:\n    tasks:\n      step:\n        taskInfo: {name: step}\n        componentRef: {name: comp-step}\n      step:\n        taskInfo: {name: step}\n        componentRef: {name: comp-other}\ncomponents:\n  comp-step: {executorLabel: exec-step}\n  comp-other: {executorLabel: exec-step}\ndeploymentSpec:\n  executors:\n    exec-step:\n      container: {image: alpine, command: [sh, -c, 'true']}\n";
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "a NUL byte in a task name",
            "nul.json".into(),
            serde_json::to_vec(&nul_task).unwrap(),
            "control character",
        ),
        (
            "a 10 MB command word",
            "huge.json".into(),
            serde_json::to_vec(&huge_word).unwrap(),
            "command[2]",
        ),
        (
            "DAGs nested 5,000 deep",
            "deep.json".into(),
            serde_json::to_vec(&deeply_nested(5_000)).unwrap(),
            "nest",
        ),
        (
            "schemaVersion 99.0.0",
            "future.json".into(),
            serde_json::to_vec(&future).unwrap(),
            "schemaVersion",
        ),
        (
            "duplicate YAML keys",
            "dup.yaml".into(),
            duplicate_keys.as_bytes().to_vec(),
            "step",
        ),
    ];
    for (what, file, bytes, names) in cases {
        let path = home.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let out = run_in(home.path(), &["run", path.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: {}",
            &stderr[..stderr.len().min(3000)]
        );
        assert!(
            stderr.contains(names),
            "{what}: the error names `{names}`: {}",
            &stderr[..stderr.len().min(3000)]
        );
        assert!(
            stderr.len() < 4000,
            "{what}: the error is readable, not the whole input"
        );
    }
    // A file without end is read only up to the limit, in bounded memory.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000 && exec \"$0\" run /dev/zero")
        .arg(crate::common::kfbox_bin())
        .env("KFBOX_HOME", home.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "/dev/zero: {stderr}");
    assert!(stderr.contains("MiB"), "/dev/zero: {stderr}");
    assert!(recorded_runs(home.path()).is_empty());
}

#[test]
fn empty_query_values_are_ignored() {
    let served = Served::start("127.0.0.1", &[]);
    for path in [
        "/apis/v2beta1/runs?page_size=&page_token=&sort_by=&filter=",
        "/apis/v2beta1/experiments?page_size=",
        "/apis/v2beta1/pipelines?page_size=&namespace=",
    ] {
        let (code, body) = get(&served.url, path, None).unwrap();
        assert_eq!(code, 200, "{path}: {body}");
    }
}

/// The mode bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn run_data_is_private_to_its_owner() {
    let parent = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = parent.path().join("home");
    let spec = shell_pipeline(
        "private",
        "step",
        json!({"artifacts": {"out": artifact_type()}}),
        &[
            "sh",
            "-c",
            "echo data > \"$0\"",
            "{{$.outputs.artifacts['out'].path}}",
        ],
    );
    let file = write_spec(parent.path(), "private.json", &spec);
    let out = Command::new(crate::common::kfbox_bin())
        .args(["run", file.to_str().unwrap(), "--json"])
        .env("KFBOX_HOME", &home)
        .env("NO_COLOR", "1")
        .env("KFBOX_EXECUTOR", "process")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_dir = PathBuf::from(summary["run_dir"].as_str().unwrap());
    assert_eq!(mode(&home), 0o700, "KFBOX_HOME");
    assert_eq!(mode(&home.join("runs")), 0o700);
    assert_eq!(mode(&run_dir), 0o700);
    assert_eq!(mode(&home.join("kfbox.sqlite")), 0o600);
    assert_eq!(mode(&run_dir.join("summary.json")), 0o600);
    assert_eq!(mode(&run_dir.join("logs/step.log")), 0o600);
    assert_eq!(mode(&run_dir.join("artifacts/step/out")), 0o600);
}

/// A shell in a mount namespace of its own (as root, or as root of a user namespace), where
/// `setup` runs first; kfbox commands run in it through `nsenter`.
struct PrivateMounts {
    holder: std::process::Child,
    as_root: bool,
}

impl PrivateMounts {
    fn new(setup: &str) -> Self {
        let as_root = nix::unistd::geteuid().is_root();
        let mut unshare = Command::new("unshare");
        if !as_root {
            unshare.arg("--user").arg("--map-root-user");
        }
        let mut holder = unshare
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!("{setup} && echo ready && exec sleep 600"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) starts");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the mount namespace was not set up");
        Self { holder, as_root }
    }

    fn kfbox(&self, home: &Path, args: &[&str]) -> Output {
        let mut command = Command::new("nsenter");
        command
            .arg("-t")
            .arg(self.holder.id().to_string())
            .arg("-m");
        if !self.as_root {
            command.arg("-U").arg("--preserve-credentials");
        }
        command
            .arg("--")
            .arg(crate::common::kfbox_bin())
            .args(args)
            .env("KFBOX_HOME", home)
            .env("NO_COLOR", "1")
            .env("KFBOX_EXECUTOR", "process")
            .env_remove("KFBOX_CONFIG")
            .env_remove("KFBOX_CACHE");
        command.output().expect("nsenter starts")
    }
}

impl Drop for PrivateMounts {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn a_full_disk_fails_the_run_and_kfbox_still_frees_space() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mounts = PrivateMounts::new(&format!(
        "mount -t tmpfs -o size=24m tmpfs {}",
        home.display()
    ));
    let quick = write_spec(
        dir.path(),
        "quick.json",
        &shell_pipeline("quick", "step", json!({}), &["sh", "-c", "true"]),
    );
    let out = mounts.kfbox(&home, &["run", quick.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A step that fills the disk and succeeds: recording its end cannot be written.
    let fill = write_spec(
        dir.path(),
        "fill.json",
        &shell_pipeline(
            "fill",
            "fill",
            json!({"artifacts": {"junk": artifact_type()}}),
            &[
                "sh",
                "-c",
                "dd if=/dev/zero of=\"$0\" bs=64k 2>/dev/null; true",
                "{{$.outputs.artifacts['junk'].path}}",
            ],
        ),
    );
    let out = mounts.kfbox(&home, &["run", fill.to_str().unwrap(), "--json"]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run failed, it did not go unrun: {stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: the summary is printed: {stderr}"));
    assert_eq!(summary["state"], "FAILED", "{summary:#}");
    let run_id = summary["run_id"].as_str().unwrap().to_owned();
    // Reading works on the full disk...
    for args in [
        vec!["runs", "list", "--json"],
        vec!["runs", "get", run_id.as_str(), "--json"],
        vec!["logs", run_id.as_str(), "fill"],
    ] {
        let out = mounts.kfbox(&home, &args);
        assert!(
            out.status.success(),
            "{args:?} on a full disk: {}",
            text(&out.stderr)
        );
    }
    // ...and deleting the run frees its space.
    let out = mounts.kfbox(&home, &["runs", "delete", &run_id]);
    assert!(
        out.status.success(),
        "runs delete on a full disk: {}",
        text(&out.stderr)
    );
    let out = mounts.kfbox(&home, &["runs", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&run_id.as_str()), "{listed}");
    assert_eq!(ids.len(), 1, "{listed}");
    // With space again, the next run succeeds.
    let out = mounts.kfbox(&home, &["run", quick.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_read_only_home_can_be_listed() {
    let home = new_home();
    let quick = write_spec(
        home.path(),
        "quick.json",
        &shell_pipeline("quick", "step", json!({}), &["sh", "-c", "true"]),
    );
    let out = run_in(home.path(), &["run", quick.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let path = home.path().display().to_string();
    let mounts = PrivateMounts::new(&format!(
        "mount --bind {path} {path} && mount -o remount,bind,ro {path}"
    ));
    let out = mounts.kfbox(home.path(), &["runs", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");
}
