//! Run data is private, a full disk fails the run without losing the store, and a read-only
//! home can still be listed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::served::new_home;

use super::*;

/// The mode bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs_err::metadata(path).unwrap().permissions().mode() & 0o777
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

#[test]
fn a_full_disk_fails_the_run_and_kfbox_still_frees_space() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = dir.path().join("home");
    fs_err::create_dir(&home).unwrap();
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
