//! GPU discovery and slots. This machine has no GPU: a stand-in `nvidia-smi` (printing what the
//! real one prints for two GPUs) drives the detection and slot logic; the one test that needs
//! real hardware is ignored, with the reason, unless asked for.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{compile_unique, kfbox, parse_run, run_json};

/// A directory holding an `nvidia-smi` that reports two 16 GiB GPUs.
pub(crate) fn two_gpus() -> tempfile::TempDir {
    gpus_named(&["NVIDIA Stand-in A", "NVIDIA Stand-in B"])
}

/// A directory holding an `nvidia-smi` that reports a 16 GiB GPU of each name, in order.
fn gpus_named(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nvidia-smi");
    let lines: String = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!("    echo \"{i}, GPU-{i}1111111-2222-3333-4444-555555555555, {name}, 16384, 550.54.15\"\n")
        })
        .collect();
    fs_err::write(
        &script,
        format!(
            r#"#!/bin/sh
case "$1" in
  --query-gpu=*)
{lines}    ;;
  *) echo "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4 |" ;;
esac
"#
        ),
    )
    .unwrap();
    fs_err::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub(crate) fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = vec![dir.to_owned()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn doctor_reports_the_gpus_nvidia_smi_lists() {
    let fake = two_gpus();
    let output = kfbox(&["doctor", "--json"])
        .env("PATH", path_with(fake.path()))
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["gpus"]["count"], 2, "{report:#}");
    assert_eq!(report["gpus"]["cuda_version"], "12.4");
    assert_eq!(report["gpus"]["devices"][1]["name"], "NVIDIA Stand-in B");
    assert_eq!(report["gpus"]["devices"][0]["memory_mib"], 16384);
    assert!(report["docker"]["ok"].is_boolean());
    assert!(report["free_disk_bytes"].as_u64().unwrap() > 0);
}

/// `(gpus, start, end)` of a `hold` task's output.
fn held(run: &crate::common::RunResult, path: &str) -> (Vec<String>, f64, f64) {
    let text = run.task(path)["outputs"]["parameters"]["Output"]
        .as_str()
        .unwrap_or_else(|| panic!("no output for {path}: {:#}", run.summary))
        .to_owned();
    let fields: Vec<&str> = text.split('|').collect();
    let gpus = fields[0]
        .split(',')
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    (gpus, fields[1].parse().unwrap(), fields[2].parse().unwrap())
}

#[test]
fn steps_get_exactly_the_gpus_they_ask_for_and_never_share_them() {
    let fake = two_gpus();
    let (pipeline, _) = compile_unique("gpu", "gpu-slots");
    let output = kfbox(&["run", pipeline.to_str().unwrap(), "--json"])
        .env("PATH", path_with(fake.path()))
        .output()
        .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    let asked = ["hold", "hold-2", "hold-3", "hold-4"];
    let holds: Vec<_> = asked.iter().map(|p| (p, held(&run, p))).collect();
    for (path, (gpus, _, _)) in &holds {
        let want = if **path == "hold-4" { 2 } else { 1 };
        assert_eq!(gpus.len(), want, "{path} got {gpus:?}");
        assert!(
            gpus.iter().all(|g| g == "0" || g == "1"),
            "{path} got {gpus:?}"
        );
    }
    // Steps that overlapped in time held different GPUs.
    for (a, (gpus_a, start_a, end_a)) in &holds {
        for (b, (gpus_b, start_b, end_b)) in &holds {
            if a < b && start_a < end_b && start_b < end_a {
                assert!(
                    gpus_a.iter().all(|g| !gpus_b.contains(g)),
                    "{a} {gpus_a:?} and {b} {gpus_b:?} overlapped on a GPU"
                );
            }
        }
    }
    // A step that asked for none sees none.
    let (none, _, _) = held(&run, "hold-5");
    assert!(none.is_empty(), "hold-5 saw {none:?}");
}

#[test]
fn a_request_that_can_never_be_met_fails_at_once() {
    let fake = two_gpus();
    let (pipeline, _) = compile_unique("gpu_many", "gpu-many");
    let output = kfbox(&["run", pipeline.to_str().unwrap(), "--json"])
        .env("PATH", path_with(fake.path()))
        .output()
        .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 1);
    let error = run.error_of("train");
    assert!(
        error.contains("asks for 3 GPUs") && error.contains("has 2"),
        "{error}"
    );
    assert_eq!(run.task("train")["attempts"], 1);
}

/// On a machine with a T4 and an A100, a node selector on `nvidia.com/gpu.product` or
/// `cloud.google.com/gke-accelerator` gives the step the GPU of that kind; a kind the machine
/// lacks runs on what there is with a warning (`--gpu prefer`) or fails (`--gpu require`);
/// other scheduling settings are said and recorded on the execution.
#[test]
fn a_gpu_product_node_selector_chooses_the_gpu() {
    let fake = gpus_named(&["Tesla T4", "NVIDIA A100-SXM4-40GB"]);
    let (pipeline, _) = compile_unique("gpu_product", "gpu-product");
    let run_with = |extra: &[&str]| {
        let mut args = vec!["run", pipeline.to_str().unwrap(), "--json"];
        args.extend(extra);
        parse_run(
            kfbox(&args)
                .env("PATH", path_with(fake.path()))
                .output()
                .unwrap(),
        )
    };
    let run = run_with(&[]);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(held(&run, "hold").0, ["1"], "the A100 is GPU 1");
    assert_eq!(held(&run, "hold-2").0, ["0"], "the T4 is GPU 0");
    assert_eq!(held(&run, "hold-3").0.len(), 1);
    assert!(held(&run, "hold-4").0.is_empty());
    let said = &run.stderr;
    assert!(
        said.contains("task `hold-3` asks for 1 GPU on a node labelled cloud.google.com/gke-accelerator=nvidia-l4; this machine's GPUs are Tesla T4, NVIDIA A100-SXM4-40GB"),
        "{said}"
    );
    assert!(
        said.contains("node selector `disktype=ssd` chooses a cluster node"),
        "{said}"
    );
    assert!(
        said.contains("`tolerations` chooses a cluster node"),
        "{said}"
    );
    assert!(!said.contains("gpu.product="), "{said}");
    assert!(
        crate::common::executions_with_property(
            "kfbox.scheduling",
            r#"{"nodeSelector":{"labels":{"disktype":"ssd"}}}"#
        ) >= 1
    );

    let strict = run_with(&["--gpu", "require"]);
    assert_eq!(strict.code, 1);
    let error = strict.error_of("hold-3");
    assert!(
        error.contains("nvidia-l4") && error.contains("--gpu prefer"),
        "{error}"
    );
}

#[test]
fn without_gpus_the_policy_decides() {
    // This machine's own PATH: no nvidia-smi, no GPUs.
    let (pipeline, _) = compile_unique("gpu_many", "gpu-many");
    let required = run_json(&pipeline, &[], &["--gpu", "require"]);
    assert_eq!(required.code, 1);
    let error = required.error_of("train");
    assert!(
        error.contains("has none") && error.contains("--gpu prefer"),
        "{error}"
    );

    let preferred = run_json(&pipeline, &[], &[]);
    assert_eq!(preferred.code, 0, "{}", preferred.stderr);
    assert!(
        preferred.stderr.contains("runs without"),
        "{}",
        preferred.stderr
    );
    assert_eq!(
        preferred.summary["tasks"][0]["outputs"]["parameters"]["Output"],
        "unset"
    );

    let ignored = run_json(&pipeline, &[], &["--gpu", "ignore"]);
    assert_eq!(ignored.code, 0);
    assert!(
        !ignored.stderr.contains("runs without"),
        "{}",
        ignored.stderr
    );
}

#[test]
fn containers_ask_docker_for_their_gpus() {
    // Docker here has no NVIDIA runtime: the device request reaches the daemon, which refuses
    // it, and the task fails at once saying what is missing.
    let fake = two_gpus();
    let (pipeline, _) = compile_unique("gpu_container", "gpu-container");
    let output = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--executor",
        "docker",
    ])
    .env("PATH", path_with(fake.path()))
    .output()
    .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = run.error_of("probe");
    assert!(
        error.contains("could not select device driver \"nvidia\""),
        "{error}"
    );
    assert!(error.contains("NVIDIA Container Toolkit"), "{error}");
    assert_eq!(run.task("probe")["attempts"], 1);
}

#[test]
#[ignore = "needs an NVIDIA GPU and driver (nvidia-smi); run with `cargo nextest run --run-ignored only -E 'test(real_gpu)'`"]
fn real_gpu_is_handed_to_a_step() {
    let (pipeline, _) = compile_unique("gpu_many", "gpu-many");
    let text = fs_err::read_to_string(&pipeline)
        .unwrap()
        .replace("'3'", "'1'");
    fs_err::write(&pipeline, text).unwrap();
    let run = run_json(&pipeline, &[], &["--gpu", "require"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.task("train")["outputs"]["parameters"]["Output"], "0");
}

/// A GPU count given by a pipeline parameter (`set_accelerator_limit(count)`) is resolved when
/// the step starts, as the driver does: the step gets that many GPUs, not none.
#[test]
fn a_gpu_count_from_a_parameter_is_resolved_when_the_step_starts() {
    let fake = two_gpus();
    let (pipeline, _) = compile_unique("gpu_param", "gpu-param");
    for (count, expected) in [("2", "0,1"), ("1", "0")] {
        let output = kfbox(&[
            "run",
            pipeline.to_str().unwrap(),
            "--json",
            "--gpu",
            "require",
            "--param",
            &format!("count={count}"),
        ])
        .env("PATH", path_with(fake.path()))
        .output()
        .unwrap();
        let run = parse_run(output);
        assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
        let (gpus, _, _) = held(&run, "hold");
        assert_eq!(gpus.join(","), expected, "count={count}");
    }
}
