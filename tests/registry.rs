//! Image pulls from a real registry: Debian's `docker-registry` (the CNCF distribution
//! registry) served on loopback, which Docker trusts over plain HTTP as it trusts every
//! 127.0.0.0/8 registry.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::served::{free_port, get};
use crate::common::{compile_unique, run_json, wait_for};

/// A registry on a free loopback port, stopped (its storage with it) when dropped.
struct Registry {
    address: String,
    process: Child,
    _storage: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        let storage = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("storage dir");
        let address = format!("127.0.0.1:{}", free_port());
        let config = storage.path().join("config.yml");
        fs_err::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                storage.path().join("data").display()
            ),
        )
        .expect("registry config");
        let process = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts (Debian package docker-registry)");
        let registry = Registry {
            address,
            process,
            _storage: storage,
        };
        let url = format!("http://{}", registry.address);
        wait_for("the registry to answer", Duration::from_secs(20), || {
            get(&url, "/v2/", None).is_ok_and(|(code, _)| code == 200)
        });
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn docker(args: &[&str]) -> String {
    let output = Command::new("docker").args(args).output().expect("docker");
    assert!(output.status.success(), "docker {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// An image of the test base image with `/version` holding `text`, tagged `reference`;
/// returns its id.
fn image_with_version(reference: &str, text: &str) -> String {
    let container = docker(&[
        "create",
        "kfbox/base:bookworm",
        "sh",
        "-c",
        &format!("echo {text} > /version"),
    ]);
    docker(&["start", "-a", &container]);
    let id = docker(&["commit", &container, reference]);
    docker(&["rm", &container]);
    id
}

/// `set_image_pull_policy` against a registry holding a newer image under the tag that is
/// here: `IfNotPresent` runs the copy that is here and pulls nothing, `Always` pulls the
/// registry's image and runs it.
#[test]
fn always_pulls_the_registrys_image_and_if_not_present_keeps_the_one_here() {
    let registry = Registry::start();
    let reference = format!("{}/kfbox-test/pulled:1", registry.address);
    let old = image_with_version(&reference, "old");
    let new = image_with_version(&reference, "new");
    docker(&["push", &reference]);
    // The registry has `new`; this machine has `old` under the same reference.
    docker(&["tag", &old, &reference]);

    let (pipeline, _) = compile_unique("pull_from_registry", "pull-from-registry");
    let text = fs_err::read_to_string(&pipeline).unwrap();
    fs_err::write(&pipeline, text.replace("localhost:5000", &registry.address)).unwrap();
    let run = run_json(&pipeline, &[], &["--executor", "docker"]);

    let here = docker(&["image", "inspect", "--format", "{{.Id}}", &reference]);
    for id in [&old, &new] {
        let _ = Command::new("docker").args(["rmi", "-f", id]).output();
    }
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    assert!(run.log_of("version").contains("old"), "{:#}", run.summary);
    assert!(run.log_of("version-2").contains("new"), "{:#}", run.summary);
    assert_eq!(here, new, "the pull replaced the image under {reference}");
}
