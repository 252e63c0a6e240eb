//! Files and requests too large, deep or recursive are refused before anything runs, and a
//! runaway run gives its memory back.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::served::{get, healthy, new_home, request, Served};
use crate::common::wait_for;

use super::*;

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
    let file = write_spec(home.path(), "chain.json", &chain(60_000));
    let out = run_in(home.path(), &["run", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("60000 tasks") && stderr.contains("50000"),
        "{stderr}"
    );
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
    fs_err::read_to_string(format!("/proc/{pid}/status"))
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
        fs_err::write(&path, bytes).unwrap();
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
