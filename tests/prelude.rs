//! The SDK's `pip install` prelude in containers: where it fails, and how kfbox's wheelhouse
//! serves it offline, in a container here and as the index of an offline cluster.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{build_runtime_image, compile_unique, kfbox, run_json, wait_for};

#[test]
fn a_step_that_fails_in_the_sdks_pip_prelude_says_so() {
    let (pipeline, _) = compile_unique("prelude_offline", "prelude-offline");
    let run = run_json(&pipeline, &[], &["--executor", "docker"]);
    assert_eq!(run.code, 1, "{}\n{:#}", run.stderr, run.summary);
    let error = run.error_of("hello");
    assert!(error.contains("in the SDK's pip prelude"), "{error}");
    assert!(error.contains("pip install kfp=="), "{error}");
    assert!(error.contains("install_kfp_package=False"), "{error}");
    // The same component on the host never runs the prelude: kfbox installs the SDK itself.
    let here = run_json(&pipeline, &[], &["--executor", "auto"]);
    assert_eq!(here.code, 0, "{}\n{:#}", here.stderr, here.summary);
}

/// A wheel of a package no index has, written into `dir` by the SDK's Python.
fn probe_wheel(dir: &Path) {
    let script = r#"
import base64, hashlib, sys, zipfile
name, version = "kfbox_offline_probe", "1.0"
files = {
    f"{name}/__init__.py": "VALUE = 'from the wheelhouse'\n",
    f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: kfbox-offline-probe\nVersion: {version}\n",
    f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: kfbox-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = f"{name}-{version}.dist-info/RECORD"
lines = []
for path, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    lines.append(f"{path},sha256={digest},{len(text.encode())}")
lines.append(f"{record},,")
with zipfile.ZipFile(f"{sys.argv[1]}/{name}-{version}-py3-none-any.whl", "w") as wheel:
    for path, text in files.items():
        wheel.writestr(path, text)
    wheel.writestr(record, "\n".join(lines) + "\n")
"#;
    let out = Command::new(crate::common::sdk_python())
        .args(["-c", script])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn offline_the_prelude_in_a_container_installs_from_kfboxs_wheelhouse() {
    build_runtime_image();
    let wheelhouse = tempfile::tempdir().unwrap();
    probe_wheel(wheelhouse.path());
    let (pipeline, _) = compile_unique("prelude_wheelhouse", "prelude-wheelhouse");
    // Online, the prelude asks the index it was given, which does not answer: the error says
    // where it failed.
    let online = run_json(&pipeline, &[], &["--executor", "docker"]);
    assert_eq!(online.code, 1, "{}\n{:#}", online.stderr, online.summary);
    let error = online.error_of("probe");
    assert!(error.contains("in the SDK's pip prelude"), "{error}");
    assert!(error.contains("kfbox-offline-probe==1.0"), "{error}");
    // Offline, pip in the container is pointed at kfbox's wheelhouse and asks no index.
    let offline = run_json(
        &pipeline,
        &[],
        &[
            "--executor",
            "docker",
            "--offline",
            "--wheels",
            wheelhouse.path().to_str().unwrap(),
        ],
    );
    assert_eq!(
        offline.code,
        0,
        "{}\n{:#}\n{}",
        offline.stderr,
        offline.summary,
        offline.log_of("probe")
    );
    assert_eq!(offline.summary["outputs"]["Output"], "from the wheelhouse");
}

/// The offline cluster's package index, run as the install defines it (image, command, port
/// and the pip settings Argo gives every step, all read from `kfbox cluster up --dry-run`):
/// the SDK's prelude (`pip install kfp==X --no-deps`) installs from it and from nothing else.
/// Here the index runs in Docker with its port published on 127.0.0.1 instead of behind a
/// cluster Service.
#[test]
fn the_runtime_images_wheels_serve_the_sdks_prelude_as_the_offline_cluster_index() {
    build_runtime_image();
    // A bundle that carries kfbox's runtime image (only its manifest is read by a dry run).
    let bundle = crate::common::bundle_with_runtime_image();
    let plan = kfbox(&[
        "cluster",
        "up",
        "--dry-run",
        "--json",
        "--bundle",
        bundle.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let objects = plan["objects"].as_array().unwrap();
    let index = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "kfbox-package-index")
        .expect("offline with the runtime image, the install serves a package index");
    let container = &index["spec"]["template"]["spec"]["containers"][0];
    let port = container["ports"][0]["containerPort"].as_i64().unwrap();
    let defaults: serde_json::Value = {
        let config = objects
            .iter()
            .find(|o| o["metadata"]["name"] == "workflow-controller-configmap")
            .unwrap();
        crate::common::yaml_value(config["data"]["workflowDefaults"].as_str().unwrap())
    };
    let pip_env: Vec<(String, String)> = defaults["spec"]["templateDefaults"]["container"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    let name = format!("kfbox-test-index-{}", std::process::id());
    let mut run = Command::new("docker");
    run.args([
        "run", "-d", "--rm", "--name", &name, "--user", "1000:0", "-p",
    ])
    .arg(format!("127.0.0.1::{port}"))
    .arg(container["image"].as_str().unwrap());
    for word in container["command"].as_array().unwrap() {
        run.arg(word.as_str().unwrap());
    }
    let started = run.output().unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let published = || {
        let out = Command::new("docker")
            .args(["port", &name, &format!("{port}/tcp")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    wait_for(
        "the index to publish its port",
        Duration::from_secs(20),
        || !published().is_empty(),
    );
    let address = published();
    // What a step's pip is told, with the Service's address swapped for the published port.
    let prelude = |target: &Path| {
        let mut pip = Command::new(crate::common::sdk_python());
        pip.args(["-m", "pip", "install", "--no-deps", "--target"])
            .arg(target)
            .arg("kfp==2.17.0")
            .env_remove("PIP_INDEX_URL")
            .env_remove("PIP_EXTRA_INDEX_URL");
        for (key, value) in &pip_env {
            let value = value.replace(
                &format!("kfbox-package-index.kubeflow.svc.cluster.local:{port}"),
                &address,
            );
            pip.env(key, value);
        }
        pip.output().unwrap()
    };
    let target = tempfile::tempdir().unwrap();
    let mut installed = prelude(target.path());
    for _ in 0..20 {
        if installed.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        installed = prelude(target.path());
    }
    let said = String::from_utf8_lossy(&installed.stdout).into_owned()
        + &String::from_utf8_lossy(&installed.stderr);
    assert!(installed.status.success(), "{said}");
    assert!(target.path().join("kfp").is_dir(), "{said}");
    assert!(said.contains("Looking in links"), "{said}");
    // Only the index: with it gone, the same install finds nothing (PyPI is not asked).
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    let again = tempfile::tempdir().unwrap();
    let refused = prelude(again.path());
    assert!(!refused.status.success());
}
