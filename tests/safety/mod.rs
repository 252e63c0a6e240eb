//! Boundaries: nothing a pipeline file, a request or a web page sends reaches outside
//! KFBOX_HOME, takes the server down or runs uninvited. Each test pins one defect found by
//! probing kfbox as an attacker and as a careless user would, and is named after it.

mod disk;
mod limits;
mod paths;
mod requests;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::common::served::{kfbox_in, request, Served};

/// Enough `..` to reach `/` from anywhere under the home.
pub(super) const UP: &str =
    "../../../../../../../../../../../../../../../../../../../../../../../../";

/// A pipeline of one step `task` that runs `command` (placeholders expanded) with `sh`.
pub(super) fn shell_pipeline(name: &str, task: &str, outputs: Value, command: &[&str]) -> Value {
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

pub(super) fn write_spec(dir: &Path, file: &str, spec: &Value) -> PathBuf {
    let path = dir.join(file);
    fs_err::write(&path, serde_json::to_vec(spec).unwrap()).unwrap();
    path
}

/// A directory outside every home, holding `notes.txt` ("mine"), that nothing may touch.
pub(super) struct Victim {
    pub(super) dir: tempfile::TempDir,
}

impl Victim {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("notes.txt"), "mine").unwrap();
        Self { dir }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The victim's path reached from inside the home by walking up.
    pub(super) fn walked(&self, rest: &str) -> String {
        format!(
            "{UP}{}/{rest}",
            self.path().display().to_string().trim_start_matches('/')
        )
    }

    pub(super) fn assert_untouched(&self, what: &str) {
        let mut names: Vec<String> = fs_err::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["notes.txt"], "{what} wrote beside the victim");
        assert_eq!(
            fs_err::read_to_string(self.path().join("notes.txt")).unwrap(),
            "mine",
            "{what} changed the victim"
        );
    }
}

pub(super) fn run_in(home: &Path, args: &[&str]) -> Output {
    kfbox_in(home, args).output().expect("kfbox starts")
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The run ids recorded in `home`.
pub(super) fn recorded_runs(home: &Path) -> Vec<String> {
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
pub(super) fn create_run(served: &Served, name: &str, spec: &Value) -> (u16, String) {
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

/// A shell in a mount namespace of its own (as root, or as root of a user namespace), where
/// `setup` runs first; kfbox commands run in it through `nsenter`.
pub(super) struct PrivateMounts {
    pub(super) holder: std::process::Child,
    pub(super) as_root: bool,
}

impl PrivateMounts {
    pub(super) fn new(setup: &str) -> Self {
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

    pub(super) fn kfbox(&self, home: &Path, args: &[&str]) -> Output {
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

pub(super) fn artifact_type() -> Value {
    json!({"artifactType": {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}})
}
