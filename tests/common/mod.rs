//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

pub mod served;

pub fn kfbox_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kfbox"))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One KFBOX_HOME for all tests, so the managed Python environment is built once.
pub fn shared_home() -> PathBuf {
    std::env::var_os("KFBOX_TEST_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kfbox-home"))
}

/// The corpus of pipelines compiled by the kfp SDK, beside the repository.
pub fn conformance_dir() -> PathBuf {
    std::env::var_os("KFBOX_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/conformance/kfp-ir"))
}

/// `kfbox` (the test build, or one installed from the wheel) as a newcomer runs it: Debian's
/// own Python (with only what README's command installs), a fresh user (no pip or uv cache) and
/// home, none of a developer's variables; the network as this machine has it.
pub fn as_a_newcomer(kfbox: &Path, home: &Path, user: &Path) -> Command {
    let mut command = Command::new(kfbox);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", user)
        .env("LANG", "C.UTF-8")
        .env("KFBOX_HOME", home)
        .env("KFBOX_PYTHON", OS_PYTHON)
        .env("NO_COLOR", "1")
        .current_dir(repo_root());
    for var in [
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
    ] {
        if let Some(value) = std::env::var_os(var) {
            command.env(var, value);
        }
    }
    command
}

/// The operating system's own Python (Debian's), as README's commands install it.
pub const OS_PYTHON: &str = "/usr/bin/python3";

pub fn kfbox(args: &[&str]) -> Command {
    let mut command = Command::new(kfbox_bin());
    command
        .args(args)
        .env("KFBOX_HOME", shared_home())
        .env("NO_COLOR", "1")
        // Tests reproduce what a fresh run does; the caching tests turn the cache back on.
        .env("KFBOX_CACHE", "off")
        // Container components run on the host unless a test asks for Docker: the corpus'
        // images (python:3.x, alpine...) cannot be pulled here.
        .env("KFBOX_EXECUTOR", "process")
        .env_remove("KFBOX_CONFIG")
        .env_remove("KFBOX_PYTHON")
        .env_remove("KFBOX_LOG");
    command
}

pub struct RunResult {
    pub code: i32,
    pub summary: Value,
    pub stderr: String,
}

impl RunResult {
    pub fn state(&self) -> &str {
        self.summary["state"].as_str().unwrap_or("")
    }

    /// The task with this path; panics with the whole summary when it is missing.
    pub fn task(&self, path: &str) -> &Value {
        self.summary["tasks"]
            .as_array()
            .and_then(|tasks| tasks.iter().find(|t| t["path"] == path))
            .unwrap_or_else(|| panic!("no task `{path}` in {:#}", self.summary))
    }

    /// The error a task ended with ("" when none).
    pub fn error_of(&self, path: &str) -> String {
        self.task(path)["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn log_of(&self, path: &str) -> String {
        let log = self.task(path)["log"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        fs_read(Path::new(&log))
    }
}

fn fs_read(path: &Path) -> String {
    fs_err::read_to_string(path).unwrap_or_default()
}

/// `kfbox run --json` with parameters; the summary is parsed when the run started.
pub fn run_json(pipeline: &Path, params: &[&str], extra: &[&str]) -> RunResult {
    let mut args = vec!["run", pipeline.to_str().expect("utf-8 path"), "--json"];
    for p in params {
        args.push("--param");
        args.push(p);
    }
    args.extend(extra);
    let output = kfbox(&args).output().expect("kfbox starts");
    parse_run(output)
}

pub fn parse_run(output: Output) -> RunResult {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    RunResult {
        code: output.status.code().unwrap_or(-1),
        summary,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The Python named by `variable` (tests/run.sh sets it), checked to import `module`.
fn python_importing(variable: &str, module: &str, requirement: &str) -> String {
    let python = std::env::var(variable).unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{python}` cannot import {module}; run the tests through tests/run.sh, or set {variable} to a Python with `pip install {requirement}`"
    );
    python
}

/// How many executions in the shared home's store have the custom property `name` set to
/// exactly `value`.
pub fn executions_with_property(name: &str, value: &str) -> u32 {
    let store = shared_home().join("kfbox.sqlite");
    let query = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); print(db.execute('select count(*) from ExecutionProperty where name = ? and string_value = ?', (sys.argv[2], sys.argv[3])).fetchone()[0])";
    let out = Command::new(sdk_python())
        .args(["-c", query])
        .arg(&store)
        .args([name, value])
        .output()
        .expect("python starts");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}

/// The Python that has the `kfp` SDK for compiling test pipelines.
pub fn sdk_python() -> String {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON
        .get_or_init(|| python_importing("KFBOX_TEST_PYTHON", "kfp", "kfp"))
        .clone()
}

/// Where test pipelines are compiled to (and WebAssembly test modules built, so that the
/// pipelines' relative `wasm:` images find them).
pub fn compiled_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compiled")
}

/// Compile `tests/pipelines/<module>.py` with the real SDK; returns the YAML path.
pub fn compile(module: &str) -> PathBuf {
    let source = repo_root()
        .join("tests/pipelines")
        .join(format!("{module}.py"));
    compile_file(&source, "pipeline")
}

/// Compile the pipeline named `attribute` in the Python file `source` with the real SDK;
/// returns the YAML path.
pub fn compile_file(source: &Path, attribute: &str) -> PathBuf {
    let out_dir = compiled_dir();
    fs_err::create_dir_all(&out_dir).expect("compiled dir");
    // Tests compile concurrently: each call writes its own file.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stem = source.file_stem().unwrap_or_default().to_string_lossy();
    let out = out_dir.join(format!("{stem}-{}-{call}.yaml", std::process::id()));
    let output = Command::new(sdk_python())
        .arg(repo_root().join("tests/pipelines/compile.py"))
        .arg(source)
        .arg(&out)
        .arg(attribute)
        .output()
        .expect("python starts");
    assert!(
        output.status.success(),
        "compiling {} failed:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// Compile a test pipeline under a name of its own, so that cache lookups and run listings
/// (scoped by pipeline name) see only this test's runs in the shared home.
pub fn compile_unique(module: &str, pipeline_name: &str) -> (PathBuf, String) {
    let path = compile(module);
    let unique = format!("{pipeline_name}-{}", uuid_like());
    let text = fs_err::read_to_string(&path).expect("compiled yaml");
    let from = format!("\n  name: {pipeline_name}\n");
    assert!(
        text.contains(&from),
        "no pipelineInfo name `{pipeline_name}` in {}",
        path.display()
    );
    let text = text.replace(&from, &format!("\n  name: {unique}\n"));
    fs_err::write(&path, text).expect("write yaml");
    (path, unique)
}

/// A short unique suffix (process id, time and a counter).
pub fn uuid_like() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{nanos:x}{n}", std::process::id())
}

/// Run kfbox with `args` and parse its stdout as JSON; panics with stderr when it fails.
pub fn kfbox_json(args: &[&str]) -> Value {
    let output = kfbox(args).output().expect("kfbox starts");
    assert!(
        output.status.success(),
        "kfbox {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "kfbox {args:?} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The store file in the shared home.
pub fn store_path() -> PathBuf {
    shared_home().join("kfbox.sqlite")
}

/// The Python with `ml-metadata` (its protobuf pin conflicts with the kfp SDK's, so it has a
/// virtual environment of its own; tests/run.sh creates it).
pub fn mlmd_python() -> String {
    python_importing(
        "KFBOX_TEST_MLMD_PYTHON",
        "ml_metadata",
        "ml-metadata==1.17.1",
    )
}

/// Wait for `condition`, polling; panics with `what` after `limit`.
pub fn wait_for(what: &str, limit: std::time::Duration, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The id of pipeline `name`'s RUNNING run, once one is recorded.
pub fn running_run(name: &str) -> String {
    let mut run_id = String::new();
    wait_for(
        "the run to be recorded",
        std::time::Duration::from_secs(60),
        || {
            let listed = kfbox_json(&[
                "runs",
                "list",
                "--pipeline",
                name,
                "--state",
                "RUNNING",
                "--json",
            ]);
            match listed["runs"][0]["run_id"].as_str() {
                Some(id) => {
                    run_id = id.to_owned();
                    true
                }
                None => false,
            }
        },
    );
    run_id
}

/// A bundle directory whose manifest lists kfbox's runtime image: enough for
/// `kfbox cluster up --dry-run --bundle` (which reads only the manifest) to plan the offline
/// install with its package index.
pub fn bundle_with_runtime_image() -> tempfile::TempDir {
    let bundle = tempfile::tempdir().unwrap();
    fs_err::write(
        bundle.path().join("manifest.json"),
        r#"{"version": 1, "images": [{"role": "cluster", "reference": "kfbox/runtime:kfp-2.17.0",
            "id": "sha256:0", "size": 0, "archive": "k3s/runtime.tar.zst", "compressed_size": 0}]}"#,
    )
    .unwrap();
    bundle
}

/// YAML as the SDK's Python reads it (the root test crate has no YAML parser).
pub fn yaml_value(text: &str) -> serde_json::Value {
    let out = Command::new(sdk_python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `kfbox images build` on the Debian base image: `kfbox/runtime:latest`, Python with the SDK.
/// One test process at a time: on a machine without the image, concurrent builds would each
/// tag their own.
pub fn build_runtime_image() {
    let lock = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("runtime-image.lock"))
        .unwrap();
    let _held = nix::fcntl::Flock::lock(lock.into_parts().0, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap();
    let built = kfbox(&[
        "images",
        "build",
        "--base",
        "kfbox/base:bookworm",
        "--tag",
        "kfbox/runtime:latest",
        "--quiet",
    ])
    .output()
    .expect("kfbox starts");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(String::from_utf8_lossy(&built.stdout).contains("built kfbox/runtime:latest"));
    // The same image under the pinned name a cluster bundle carries.
    let id = |name: &str| {
        let out = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name} is not there");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(id("kfbox/runtime:latest"), id("kfbox/runtime:kfp-2.17.0"));
}

/// The lightweight Python steps running under the process `kfbox` (a kfbox's pid): kfbox's
/// component runner started from the SDK's command line, or children forked by a warm worker
/// (whose command line is the worker's: a step's arguments are not in it).
pub fn python_steps_under(kfbox: u32) -> Vec<u32> {
    let processes: Vec<(u32, u32, String)> = fs_err::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let (state, parent) = state_and_parent(pid)?;
            if state == "Z" {
                return None;
            }
            let cmdline = fs_err::read(entry.path().join("cmdline")).ok()?;
            Some((
                pid,
                parent,
                String::from_utf8_lossy(&cmdline).replace('\0', " "),
            ))
        })
        .collect();
    let parent_of: std::collections::HashMap<u32, u32> = processes
        .iter()
        .map(|(pid, parent, _)| (*pid, *parent))
        .collect();
    let command_of: std::collections::HashMap<u32, &str> = processes
        .iter()
        .map(|(pid, _, command)| (*pid, command.as_str()))
        .collect();
    let under_kfbox = |mut pid: u32| {
        while let Some(&parent) = parent_of.get(&pid) {
            if parent == kfbox {
                return true;
            }
            pid = parent;
        }
        false
    };
    let worker = |pid: u32| {
        command_of
            .get(&pid)
            .is_some_and(|c| c.contains("kfbox-warm-worker"))
    };
    processes
        .iter()
        .filter(|(pid, parent, command)| {
            under_kfbox(*pid)
                && (command.contains("kfbox-run-component") || (worker(*pid) && worker(*parent)))
        })
        .map(|(pid, _, _)| *pid)
        .collect()
}

/// Whether a process runs (a zombie does not).
pub fn process_runs(pid: u32) -> bool {
    state_and_parent(pid).is_some_and(|(state, _)| state != "Z")
}

/// A process's parent.
pub fn parent_of(pid: u32) -> Option<u32> {
    state_and_parent(pid).map(|(_, parent)| parent)
}

/// A process's state letter and its parent's pid, from `/proc/<pid>/stat`.
fn state_and_parent(pid: u32) -> Option<(String, u32)> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name before ')' may hold spaces and parentheses of its own.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.to_owned();
    Some((state, fields.next()?.parse().ok()?))
}
