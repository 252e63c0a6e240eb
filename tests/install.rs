//! kfbox installed as its users install tools: a wheel built by maturin (`bindings = "bin"`, as
//! ruff and uv ship), installed with pip into a fresh virtual environment of the OS's Python;
//! and what installing Python packages looks like while a run waits for it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::served::Served;
use crate::common::{as_a_newcomer, repo_root, sdk_python, OS_PYTHON};

#[test]
fn the_wheel_installs_with_pip_and_runs_readmes_example() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wheels = work.path().join("wheels");
    // maturin comes with the tests' Python (tests/run.sh). It links the binary with flags of
    // its own (stripped), so it builds in a target directory of its own: in the tests' one it
    // would relink the `kfbox` the other tests are running. Kept between runs, like the rest.
    let maturin = PathBuf::from(sdk_python()).with_file_name("maturin");
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../wheel-build");
    let built = Command::new(&maturin)
        .args(["build", "--profile", "dev", "--quiet", "--out"])
        .arg(&wheels)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo_root().join("sandbox/kfbox"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", maturin.display()));
    assert!(
        built.status.success(),
        "maturin build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let wheel: PathBuf = fs_err::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("maturin wrote a wheel");
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("kfbox-0.1.0-py3-none-"), "{name}");

    // `python3 -m venv` and `pip install kfbox-*.whl`, as a user would.
    let venv = work.path().join("venv");
    let made = Command::new(OS_PYTHON)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--no-index",
            "--disable-pip-version-check",
        ])
        .arg(&wheel)
        .output()
        .unwrap();
    assert!(
        installed.status.success(),
        "pip install {name} failed:\n{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let kfbox = venv.join("bin/kfbox");
    assert!(
        kfbox.is_file(),
        "the wheel put no kfbox in {}",
        venv.display()
    );

    let home = work.path().join("home");
    let user = work.path().join("user");
    fs_err::create_dir_all(&user).unwrap();
    let version = as_a_newcomer(&kfbox, &home, &user)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "kfbox 0.1.0",
        "{version:?}"
    );
    let out = as_a_newcomer(&kfbox, &home, &user)
        .args(["run", "codelabs/01-hello-pipeline/pipeline.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the README example failed:\n{stderr}");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("Output = the sum of squares is 55: big"),
        "{summary}"
    );
}

#[test]
fn a_steps_package_install_is_its_phase_in_the_graph_and_its_log() {
    // A home of its own: no environment exists, so the step's are built as it runs.
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let served = Served::start_in(home, "127.0.0.1", &[]);
    let out = served.client_test("packages_phase", None);
    let line = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{out}"));
    let seen: Value = serde_json::from_str(line).unwrap();
    let phases: Vec<&str> = seen["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        phases
            .iter()
            .any(|p| p.starts_with("Python environment with ")),
        "the graph never showed the install as the step's phase: {phases:?}"
    );
    let log = seen["log"].as_str().unwrap();
    assert!(
        log.contains("[kfbox] Python environment with six==1.17.0: ready"),
        "{log}"
    );
    assert!(
        log.contains("[kfbox] Python environment with the kfp SDK: creating"),
        "{log}"
    );
}

#[test]
fn an_environment_built_once_is_rebuilt_offline_from_the_installers_cache() {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (home, user) = (work.path().join("home"), work.path().join("user"));
    fs_err::create_dir_all(&user).unwrap();
    let prepared = as_a_newcomer(&crate::common::kfbox_bin(), &home, &user)
        .args(["env", "--prepare"])
        .output()
        .unwrap();
    assert!(prepared.status.success(), "{prepared:?}");
    // The environments go (as after `kfbox env --repair`, or a new kfbox's SDK pin); the
    // network too: every proxy is a closed port. (The index stays the one used online: uv's
    // cache is keyed by it.)
    fs_err::remove_dir_all(home.join("python/envs")).unwrap();
    let dead = "http://127.0.0.1:9";
    let rebuilt = as_a_newcomer(&crate::common::kfbox_bin(), &home, &user)
        .args(["--offline", "env", "--prepare", "--json"])
        .env("https_proxy", dead)
        .env("http_proxy", dead)
        .env("HTTPS_PROXY", dead)
        .env("HTTP_PROXY", dead)
        .output()
        .unwrap();
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let envs: Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert!(
        envs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["ready"] == true && e["requirements"][0] == "kfp==2.17.0"),
        "{envs:#}"
    );
}

#[test]
fn a_package_that_cannot_be_installed_fails_its_step_naming_the_installers_log() {
    let run = crate::common::run_json(&crate::common::compile("missing_package"), &[], &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let task = &run.summary["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "needs-nothing-real")
        .unwrap_or_else(|| panic!("{:#}", run.summary))
        .clone();
    assert_eq!(task["state"], "FAILED");
    let error = task["error"].as_str().unwrap();
    assert!(
        error.contains("installing kfbox-test-no-such-package==1.0 failed"),
        "{error}"
    );
    // The installer's own last lines, then where all of them are.
    assert!(error.contains("kfbox-test-no-such-package"), "{error}");
    let log = error
        .split("the whole output is in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no log named: {error}"))
        .lines()
        .next()
        .unwrap();
    let logged = fs_err::read_to_string(log).unwrap();
    assert!(
        logged.contains("uv pip install") && logged.contains("kfbox-test-no-such-package"),
        "{logged}"
    );
}
