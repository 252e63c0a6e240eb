//! `kfbox check`: a pipeline file checked without running it, and what a KFP cluster does
//! differently (`--for cluster`), on a pipeline made to have each difference and on the
//! conformance corpus.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use kfbox_app::json::{CheckReport, FindingKind};
use serde_json::Value;

use crate::common::{compile, conformance_dir, kfbox, sdk_python};

fn check(file: &Path, target: &str) -> CheckReport {
    let output = kfbox(&["check", file.to_str().unwrap(), "--for", target, "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// (kind, executor, subject) of each finding.
fn found(report: &CheckReport) -> BTreeSet<(FindingKind, String, String)> {
    report
        .findings
        .iter()
        .map(|f| {
            (
                f.kind,
                f.executor.clone().unwrap_or_default(),
                f.subject.clone(),
            )
        })
        .collect()
}

#[test]
fn check_for_cluster_names_each_difference_of_a_pipeline() {
    let pipeline = compile("cluster_differences");
    let report = check(&pipeline, "cluster");
    let found = found(&report);
    let sdk = format!("kfp=={}", sdk_version());
    let expected: BTreeSet<(FindingKind, String, String)> = [
        (
            FindingKind::PipPrelude,
            "exec-with-packages",
            format!("{sdk} six==1.16.0"),
        ),
        (
            FindingKind::MutableImage,
            "exec-latest-image",
            "alpine:latest".to_owned(),
        ),
        (
            FindingKind::WasmImage,
            "exec-wasm-step",
            "wasm:steps/hello.wasm".to_owned(),
        ),
        (
            FindingKind::LocalPath,
            "exec-importer",
            "/data/local.csv".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(kind, executor, subject)| (kind, executor.to_owned(), subject))
    .collect();
    assert_eq!(found, expected, "{report:#?}");
    assert_eq!(report.pipeline, "cluster-differences");
    let prelude = &report.findings[report
        .findings
        .iter()
        .position(|f| f.kind == FindingKind::PipPrelude)
        .unwrap()];
    assert_eq!(prelude.tasks, ["with-packages"]);
    // None of these changes what kfbox itself does.
    assert!(check(&pipeline, "local").findings.is_empty());
    // The table says the same in words, shared findings once.
    let output = kfbox(&["check", pipeline.to_str().unwrap(), "--for", "cluster"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("4 things behave differently on a cluster"),
        "{text}"
    );
    for words in [
        "pip at start",
        "exec-with-packages (with-packages)",
        "alpine:latest",
        "/data/local.csv",
    ] {
        assert!(text.contains(words), "{words}: {text}");
    }
}

#[test]
fn check_for_cluster_names_the_pip_prelude_and_every_kubernetes_setting_of_the_corpus() {
    let expected = corpus_expectations();
    assert!(expected.len() > 50, "{} files", expected.len());
    let mut settings_seen = 0;
    for (file, wants) in &expected {
        let path = conformance_dir().join(file);
        let report = check(&path, "cluster");
        let executors_of = |kind: FindingKind| -> BTreeSet<String> {
            report
                .findings
                .iter()
                .filter(|f| f.kind == kind)
                .filter_map(|f| f.executor.clone())
                .collect()
        };
        let pip: BTreeSet<String> = wants["pip"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(executors_of(FindingKind::PipPrelude), pip, "{file}");
        let settings: BTreeSet<(String, String)> = wants["settings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_owned(),
                    pair[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        settings_seen += settings.len();
        let reported: BTreeSet<(String, String)> = report
            .findings
            .iter()
            .filter(|f| {
                matches!(
                    f.kind,
                    FindingKind::PlatformSetting | FindingKind::EmulatedSetting
                ) && f.executor.is_some()
            })
            .map(|f| (f.executor.clone().unwrap(), f.subject.clone()))
            .collect();
        assert_eq!(reported, settings, "{file}");
        let emulated = report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::EmulatedSetting && f.executor.is_some())
            .count();
        // Locally, only what kfbox's own run does not do.
        let local = check(&path, "local");
        assert!(
            local.findings.iter().all(|f| f.kind.affects_local_runs()),
            "{file}: {local:#?}"
        );
        assert!(
            local
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::PlatformSetting && f.executor.is_some())
                .count()
                == settings.len() - emulated,
            "{file}"
        );
    }
    assert!(
        settings_seen >= 10,
        "the corpus has Kubernetes settings: {settings_seen}"
    );
}

#[test]
fn check_refuses_a_file_that_is_not_a_pipeline_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    fs_err::write(
        &file,
        "pipelineInfo: {name: x}\nroot: [not, a, component]\n",
    )
    .unwrap();
    let output = kfbox(&["check", file.to_str().unwrap(), "--for", "cluster"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.yaml"), "{stderr}");
}

fn sdk_version() -> String {
    let output = Command::new(sdk_python())
        .args(["-c", "import kfp; print(kfp.__version__)"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Per corpus file, read by Python's YAML rather than kfbox: the executors whose command
/// installs packages with pip before the SDK's executor, and each (executor, Kubernetes
/// setting) pair.
fn corpus_expectations() -> BTreeMap<String, Value> {
    let script = r#"
import json, pathlib, sys, yaml
root = pathlib.Path(sys.argv[1])
out = {}
for path in sorted(root.rglob("*.yaml")):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    spec = next(d for d in docs if "root" in d or "pipelineSpec" in d)
    spec = spec.get("pipelineSpec", spec)
    pip = []
    for label, executor in spec.get("deploymentSpec", {}).get("executors", {}).items():
        words = (executor.get("container") or {}).get("command", []) + (executor.get("container") or {}).get("args", [])
        text = " ".join(words)
        if "pip install" in text and "kfp.dsl.executor_main" in text:
            pip.append(label)
    settings = []
    for doc in docs:
        platform = doc.get("platforms", {}).get("kubernetes", {})
        for label, config in platform.get("deploymentSpec", {}).get("executors", {}).items():
            settings.extend([label, key] for key in config)
    out[str(path.relative_to(root))] = {"pip": pip, "settings": settings}
print(json.dumps(out))
"#;
    let output = Command::new(sdk_python())
        .args(["-c", script])
        .arg(conformance_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A setting kfbox's local run emulates (`set_timeout`) is listed for the cluster as the same
/// in both places, and is no local difference.
#[test]
fn an_emulated_setting_is_listed_for_the_cluster_but_is_no_local_difference() {
    let pipeline = compile("timeout");
    let report = check(&pipeline, "cluster");
    let timeouts: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.subject == "activeDeadlineSeconds")
        .collect();
    assert_eq!(timeouts.len(), 2, "{report:#?}");
    assert!(timeouts
        .iter()
        .all(|f| f.kind == FindingKind::EmulatedSetting));
    let local = check(&pipeline, "local");
    assert!(
        local
            .findings
            .iter()
            .all(|f| f.subject != "activeDeadlineSeconds"),
        "{local:#?}"
    );
}
