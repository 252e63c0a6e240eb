//! JupyterLab through kfbox: the real JupyterLab from PyPI, started by `kfbox up` and
//! `kfbox lab`, checked over its REST API; and every codelab notebook executed top to bottom
//! by nbclient against a `kfbox up` that installed everything offline from a wheelhouse.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::served::{free_port, get, kfbox_in, new_home, status_and_body, Served};
use crate::common::{as_a_newcomer, kfbox_bin, repo_root, shared_home, OS_PYTHON};

/// The first start installs JupyterLab (and, offline, the SDK) into a fresh environment.
const LAB_START_LIMIT: Duration = Duration::from_secs(900);

const CODELABS: [&str; 7] = [
    "01-hello-pipeline",
    "02-data-and-artifacts",
    "03-control-flow",
    "04-debug-loop",
    "05-train-and-evaluate",
    "06-containers-and-gpus",
    "07-laptop-to-cluster",
];

/// A `kfbox up` with its lab, and the lab's address once it answered.
pub(crate) struct ServedLab {
    pub served: Served,
    pub lab_url: String,
    token: String,
}

pub(crate) fn start_with_lab(
    home: tempfile::TempDir,
    extra: &[&str],
    env: &[(&str, String)],
) -> ServedLab {
    let mut command = kfbox_in(home.path(), &[]);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    start_lab_with(command, home, extra)
}

/// `kfbox up` with its lab, run by `command` (the binary, its environment) in `home`.
fn start_lab_with(mut command: Command, home: tempfile::TempDir, extra: &[&str]) -> ServedLab {
    let port = free_port();
    let lab_port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["up", "--listen", &listen, "--lab-port", &lab_port];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let mut child = command
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kfbox up starts");
    // Both streams, so that a lab that failed to start fails the test at once.
    let (lines, received) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            // Drained to the end, so kfbox never writes into a closed pipe.
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    let mut printed = String::new();
    let lab_url = loop {
        let left = LAB_START_LIMIT.saturating_sub(started.elapsed());
        match received.recv_timeout(left) {
            Ok(line) => {
                printed.push_str(&line);
                printed.push('\n');
                // The first block says the lab is starting; its address comes once it answers.
                if let Some(url) = line.trim().strip_prefix("JupyterLab: http") {
                    break format!("http{url}");
                }
                if line.contains("JupyterLab did not start") {
                    let _ = child.kill();
                    let log =
                        fs_err::read_to_string(home.path().join("lab.log")).unwrap_or_default();
                    panic!("{printed}\nlab.log:\n{log}");
                }
            }
            Err(e) => {
                let _ = child.kill();
                panic!("no JupyterLab address from kfbox up ({e}); stdout:\n{printed}");
            }
        }
    };
    let token = lab_url
        .split_once("token=")
        .map(|(_, t)| t.to_owned())
        .expect("the lab URL carries its token");
    let served = Served {
        url: format!("http://127.0.0.1:{port}"),
        home,
        child: Some(child),
        stdout: printed,
    };
    ServedLab {
        served,
        lab_url,
        token,
    }
}

fn lab_base(lab_url: &str) -> &str {
    lab_url.split_once("/lab").map_or(lab_url, |(base, _)| base)
}

/// POST with an empty JSON body and the lab's token scheme: status and body.
fn lab_post(base: &str, path: &str, token: &str) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("lab answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: token {token}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    status_and_body(&response)
}

fn json_of(body: &str) -> Value {
    // Jupyter answers with chunked bodies: the JSON sits between the chunk sizes.
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |i| i + 1);
    serde_json::from_str(&body[start..end]).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn kfbox_up_starts_a_lab_that_holds_the_codelabs_behind_its_token() {
    let lab = start_with_lab(new_home(), &[], &[]);
    let base = lab_base(&lab.lab_url).to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    // The workspace: the welcome notebook and every codelab, each with its README and notebook.
    let (code, body) = get(&base, "/api/contents/", Some(&lab.token)).unwrap();
    assert_eq!(code, 200, "{body}");
    let root: Vec<String> = json_of(&body)["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(root.contains(&"welcome.ipynb".to_owned()), "{root:?}");
    assert!(root.contains(&"codelabs".to_owned()), "{root:?}");
    // A workshop's first hour: no pop-up asking to fetch Jupyter's news, no update checks.
    let (code, body) = get(
        &base,
        "/lab/api/settings/@jupyterlab/apputils-extension:notification",
        Some(&lab.token),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let notification = json_of(&body);
    assert_eq!(
        notification["settings"]["fetchNews"], "false",
        "{notification:#}"
    );
    assert_eq!(
        notification["settings"]["checkForUpdates"], false,
        "{notification:#}"
    );
    let (code, body) = get(&base, "/api/contents/codelabs", Some(&lab.token)).unwrap();
    assert_eq!(code, 200, "{body}");
    let listed = json_of(&body);
    for codelab in CODELABS {
        assert!(
            listed["content"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == codelab && c["type"] == "directory"),
            "{codelab} missing from {listed:#}"
        );
        let (code, body) = get(
            &base,
            &format!("/api/contents/codelabs/{codelab}"),
            Some(&lab.token),
        )
        .unwrap();
        assert_eq!(code, 200, "{body}");
        let files = json_of(&body);
        let names: Vec<&str> = files["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"README.md"), "{codelab}: {names:?}");
        assert!(
            names.iter().any(|n| n.ends_with(".ipynb")),
            "{codelab}: {names:?}"
        );
    }

    // Without the token, or with another one, the lab refuses.
    for token in [None, Some("not-the-token")] {
        let (code, _) = get(&base, "/api/contents/codelabs", token).unwrap();
        assert_eq!(code, 403, "token {token:?}");
    }
    let (code, _) = lab_post(&base, "/api/kernels", "not-the-token");
    assert_eq!(code, 403);

    // A kernel starts, runs code, and reaches kfbox through `KF_PIPELINES_ENDPOINT`.
    let (code, body) = lab_post(&base, "/api/kernels", &lab.token);
    assert_eq!(code, 201, "{body}");
    let kernel = json_of(&body)["id"].as_str().unwrap().to_owned();
    let out = Command::new(lab_python(lab.served.home()))
        .arg(repo_root().join("tests/lab/kernel_says.py"))
        .args([&base, &lab.token, &kernel])
        .arg("import os, kfp; print(os.environ['KF_PIPELINES_ENDPOINT'], len(kfp.Client().list_experiments().experiments), os.getcwd())")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let workspace = fs_err::canonicalize(lab.served.home().join("workspace")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} 1 {}", lab.served.url, workspace.display())
    );

    a_failed_task_opens_in_the_lab_as_a_notebook(&lab, &base);

    // `kfbox status` knows the lab's address.
    let out = kfbox_in(lab.served.home(), &["status", "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["lab_url"], lab.lab_url.as_str());

    // Stopping the server stops the lab and its kernel.
    let ServedLab { mut served, .. } = lab;
    assert!(served.stop().success());
    assert!(
        TcpStream::connect(base.trim_start_matches("http://")).is_err(),
        "the lab still answers after kfbox stopped"
    );
}

/// `kfbox debug RUN TASK --notebook` on a task that raised: a notebook in the lab's `debug/`
/// whose first cell loads the task's inputs (a parameter, a dataset) as Python objects, and
/// which, run by nbclient in the lab's kernel, raises what the task raised.
fn a_failed_task_opens_in_the_lab_as_a_notebook(lab: &ServedLab, base: &str) {
    let home = lab.served.home();
    let flow = repo_root().join("tests/debugging/flow.py");
    let run = crate::common::parse_run(
        kfbox_in(
            home,
            &[
                "run",
                flow.to_str().unwrap(),
                "--pipeline",
                "rows_flow",
                "--json",
            ],
        )
        .output()
        .unwrap(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run_id = run.summary["run_id"].as_str().unwrap();
    let out = kfbox_in(home, &["debug", run_id, "mean-of", "--notebook"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = format!("{}-mean-of.ipynb", &run_id[..8]);
    let page = format!("{base}/lab/tree/debug/{name}?token={}", lab.token);
    assert!(said.contains(&page), "no {page} in: {said}");
    let (code, body) = get(
        base,
        &format!("/api/contents/debug/{name}"),
        Some(&lab.token),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");

    let notebook = home.join("workspace/debug").join(&name);
    let out = Command::new(lab_python(home))
        .arg(repo_root().join("tests/lab/run_debug_notebook.py"))
        .arg(&notebook)
        .arg("print(skip, open(rows.path).read().split(), rows.metadata['count'])")
        .output()
        .unwrap();
    let executed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{executed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        executed.contains("probe: 3 ['0', '1', '2'] 3"),
        "{executed}"
    );
    // The probe is cell 1: the component's code is cell 2, the call that raises cell 3.
    assert!(
        executed.contains("raised: ZeroDivisionError: division by zero in cell [3]"),
        "{executed}"
    );
    // A second debug of the same task keeps the first notebook (the user may have edited it).
    let again = kfbox_in(home, &["debug", run_id, "mean-of", "--notebook"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains(&name.replace(".ipynb", "-2.ipynb")));
}

#[test]
fn kfbox_lab_starts_against_a_running_server_and_keeps_the_users_edits() {
    // No server: a clear error.
    let lonely = new_home();
    let out = kfbox_in(lonely.path(), &["lab"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no kfbox server is running"), "{stderr}");

    let served = Served::start("127.0.0.1", &[]);
    let workspace = served.home().join("workspace");
    let start_lab = || {
        let port = free_port().to_string();
        let mut child = kfbox_in(served.home(), &["lab", "--port", &port])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("JupyterLab: ") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "kfbox lab ended without an address"
            );
        }
        assert!(
            line.contains(&format!(
                "http://127.0.0.1:{port}/lab/tree/welcome.ipynb?token="
            )),
            "{line}"
        );
        // Ctrl-C stops it, and its lab with it.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    start_lab();
    assert!(workspace
        .join("codelabs/05-train-and-evaluate/README.md")
        .is_file());

    // The user edits the welcome notebook; a codelab is missing as if this kfbox were newer.
    let welcome = workspace.join("welcome.ipynb");
    let edited = fs_err::read_to_string(&welcome)
        .unwrap()
        .replace("Welcome to kfbox", "My own notes");
    fs_err::write(&welcome, &edited).unwrap();
    let manifest_path = workspace.join(".kfbox/shipped.json");
    let mut manifest: BTreeMap<String, String> =
        serde_json::from_str(&fs_err::read_to_string(&manifest_path).unwrap()).unwrap();
    let newer = "codelabs/07-laptop-to-cluster/README.md";
    manifest.remove(newer);
    fs_err::write(&manifest_path, serde_json::to_string(&manifest).unwrap()).unwrap();
    fs_err::remove_file(workspace.join(newer)).unwrap();

    let stderr = start_lab();
    assert_eq!(fs_err::read_to_string(&welcome).unwrap(), edited);
    assert!(
        stderr.contains("kept your edits of welcome.ipynb"),
        "{stderr}"
    );
    assert_eq!(
        fs_err::read(workspace.join(newer)).unwrap(),
        fs_err::read(repo_root().join(newer)).unwrap()
    );
}

/// Wheels for everything kfbox installs, written once per target directory.
fn wheelhouse() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wheelhouse");
    let out = Command::new(kfbox_bin())
        .args(["env", "bundle"])
        .arg(&dir)
        .env("KFBOX_HOME", shared_home())
        .env("NO_COLOR", "1")
        .env_remove("KFBOX_PYTHON")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kfbox env bundle failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The Python of the lab's environment in this home.
fn lab_python(home: &Path) -> PathBuf {
    let out = kfbox_in(home, &["env", "--json"]).output().unwrap();
    let envs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lab_env = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["requirements"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().starts_with("jupyterlab=="))
        })
        .unwrap_or_else(|| panic!("no lab environment in {envs:#}"));
    PathBuf::from(lab_env["dir"].as_str().unwrap()).join("bin/python")
}

/// The runs in a home's store: pipeline name → states, oldest first.
fn runs_by_pipeline(home: &Path) -> BTreeMap<String, Vec<String>> {
    let out = kfbox_in(home, &["runs", "list", "--json", "--limit", "500"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let mut by_pipeline: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for run in listed["runs"].as_array().unwrap().iter().rev() {
        by_pipeline
            .entry(run["pipeline"].as_str().unwrap().to_owned())
            .or_default()
            .push(run["state"].as_str().unwrap().to_owned());
    }
    by_pipeline
}

#[test]
fn every_codelab_runs_top_to_bottom_on_a_lab_installed_offline() {
    let wheels = wheelhouse();
    // A home with Python environments of its own, built only from the wheelhouse: no index is
    // reachable (pip's and every HTTP client's proxy is a closed port).
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dead = "http://127.0.0.1:9".to_owned();
    let offline_env = vec![
        ("PIP_INDEX_URL", format!("{dead}/simple")),
        ("http_proxy", dead.clone()),
        ("https_proxy", dead.clone()),
        ("HTTP_PROXY", dead.clone()),
        ("HTTPS_PROXY", dead),
        ("no_proxy", "127.0.0.1,localhost".to_owned()),
        ("NO_PROXY", "127.0.0.1,localhost".to_owned()),
    ];
    let wheels_arg = wheels.display().to_string();
    let lab = start_with_lab(home, &["--offline", "--wheels", &wheels_arg], &offline_env);
    let home = lab.served.home().to_owned();

    // The lab's own Python runs the notebooks, with the kernel environment the lab gives.
    let python = lab_python(&home);
    let workspace = home.join("workspace");
    let mut notebooks = vec![workspace.join("welcome.ipynb")];
    for codelab in CODELABS {
        let dir = workspace.join("codelabs").join(codelab);
        let notebook = fs_err::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "ipynb"))
            .unwrap_or_else(|| panic!("no notebook in {}", dir.display()));
        notebooks.push(notebook);
    }
    let output_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../codelab-notebooks");
    let kfbox_dir = kfbox_bin().parent().unwrap().to_owned();
    let path = std::env::join_paths(std::iter::once(kfbox_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let out = Command::new(&python)
        .arg(repo_root().join("tests/lab/run_notebooks.py"))
        .arg(&output_dir)
        .args(&notebooks)
        .envs(offline_env.iter().map(|(k, v)| (k, v)))
        .env("KF_PIPELINES_ENDPOINT", &lab.served.url)
        .env("KFBOX_HOME", &home)
        .env("KFBOX_OFFLINE", "1")
        .env("NO_COLOR", "1")
        .env("PATH", path)
        // The debootstrap base image tests/run.sh builds: this machine has no registry.
        .env("CODELAB_IMAGE", "kfbox/base:bookworm")
        .env_remove("KFBOX_EXECUTOR")
        .env_remove("KFP_CLUSTER_HOST")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a notebook failed (executed copies in {}):\n{stdout}\n{}",
        output_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // The first hour of a workshop shows no warning boxes.
    assert!(
        !stdout.contains("FutureWarning"),
        "a codelab printed a FutureWarning:\n{stdout}"
    );
    let printed: BTreeMap<String, String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let name = Path::new(v["notebook"].as_str().unwrap())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, v["printed"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(printed.len(), notebooks.len(), "{stdout}");

    // What this machine lacks is said, not failed.
    let gpus_missing = Command::new("nvidia-smi").output().is_err();
    if gpus_missing {
        assert!(
            printed["containers-and-gpus"].contains("No GPU on this machine"),
            "{}",
            printed["containers-and-gpus"]
        );
    }
    assert!(
        printed["containers-and-gpus"]
            .contains("--executor process: exit 0; the step said: on the host"),
        "{}",
        printed["containers-and-gpus"]
    );
    assert!(
        printed["containers-and-gpus"]
            .contains("--executor docker: exit 0; the step said: inside a container"),
        "{}",
        printed["containers-and-gpus"]
    );
    assert!(
        printed["laptop-to-cluster"].contains("No cluster endpoint set"),
        "{}",
        printed["laptop-to-cluster"]
    );

    // The runs the codelabs made are in the store, with the states they should have.
    let runs = runs_by_pipeline(&home);
    let succeeded = |n: usize| vec!["SUCCEEDED".to_owned(); n];
    let expected: BTreeMap<&str, Vec<String>> = BTreeMap::from([
        ("hello-codelab", succeeded(2)),
        ("artifacts-codelab", succeeded(1)),
        ("conditions-codelab", succeeded(1)),
        ("loops-codelab", succeeded(1)),
        ("exit-and-retry-codelab", succeeded(1)),
        // Three through the client, two by the watcher.
        ("debug-loop-codelab", succeeded(5)),
        ("train-codelab", succeeded(3)),
        ("containers-codelab", succeeded(2)),
        (
            "gpu-codelab",
            if gpus_missing {
                vec!["SUCCEEDED".to_owned(), "FAILED".to_owned()]
            } else {
                succeeded(2)
            },
        ),
        ("portable-codelab", succeeded(1)),
    ]);
    for (pipeline, states) in &expected {
        assert_eq!(
            runs.get(*pipeline),
            Some(states),
            "runs of {pipeline} (all: {runs:#?})"
        );
    }
    assert_eq!(runs.len(), expected.len(), "{runs:#?}");
}

#[test]
fn readmes_example_and_lab_work_with_the_os_python_on_a_fresh_home() {
    assert!(
        Path::new(OS_PYTHON).is_file(),
        "{OS_PYTHON} is missing: README's command installs Debian's python3"
    );
    let version = Command::new(OS_PYTHON).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let version = version.trim().trim_start_matches("Python ");
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let user = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();

    // README: `kfbox run codelabs/01-hello-pipeline/pipeline.yaml`.
    let out = as_a_newcomer(&kfbox_bin(), home.path(), user.path())
        .args(["run", "codelabs/01-hello-pipeline/pipeline.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the README example failed:\n{stderr}");
    assert!(stderr.contains("SUCCEEDED"), "{stderr}");
    let listed = as_a_newcomer(&kfbox_bin(), home.path(), user.path())
        .args(["env", "--json"])
        .output()
        .unwrap();
    let envs: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let envs = envs.as_array().unwrap();
    assert!(!envs.is_empty());
    for env in envs {
        assert_eq!(
            env["python_version"], version,
            "made with {OS_PYTHON}: {env:#}"
        );
        assert_eq!(env["ready"], true, "{env:#}");
    }

    // README: `kfbox up`, to its JupyterLab line and a lab that answers.
    let command = as_a_newcomer(&kfbox_bin(), home.path(), user.path());
    let lab = start_lab_with(command, home, &[]);
    let base = lab_base(&lab.lab_url).to_owned();
    let (status, body) = get(&base, &format!("/api/status?token={}", lab.token), None).unwrap();
    assert_eq!(status, 200, "{body}");
    // The addresses once the API answers, and all of them again with the lab's.
    assert_eq!(
        lab.served
            .stdout
            .matches("export KF_PIPELINES_ENDPOINT=")
            .count(),
        2,
        "{}",
        lab.served.stdout
    );
    assert!(
        lab.lab_url.contains("/lab/tree/welcome.ipynb?token="),
        "the lab opens the welcome notebook: {}",
        lab.lab_url
    );
}
