//! Steps in a real Docker daemon (tests/run.sh starts one and builds `kfbox/base:bookworm`
//! from Debian's packages; no public registry is reachable here, `registry.rs` serves one on
//! loopback).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{
    build_runtime_image, compile, compile_unique, kfbox, parse_run, run_json, running_run, wait_for,
};

/// Container ids (running or not) of a run.
fn containers_of(run_id: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter"])
        .arg(format!("label=io.kfbox.run={run_id}"))
        .output()
        .expect("the docker CLI runs");
    assert!(output.status.success(), "docker ps: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn container_steps_run_in_docker_and_pass_artifacts_to_process_steps() {
    let (pipeline, _) = compile_unique("docker_mix", "docker-mix");
    let run = run_json(&pipeline, &[], &["--executor", "auto"]);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    // Concat with IfPresent's else branch, then its then branch.
    assert_eq!(
        run.task("shout")["outputs"]["parameters"]["out"],
        "<kfbox.>"
    );
    assert_eq!(
        run.task("shout-2")["outputs"]["parameters"]["out"],
        "<kfbox!>"
    );
    // Container -> process -> container, by artifact path.
    assert_eq!(run.summary["outputs"]["Output"], "sum=6\n");
    let shout = run.log_of("shout");
    assert!(shout.contains("in a container as uid"), "{shout}");
    assert!(
        shout.contains("memory limit 268435456"),
        "256Mi is enforced:\n{shout}"
    );
    assert!(run.log_of("echo-back").contains("read it in a container"));
    // `auto` keeps the lightweight Python step on the host.
    assert!(run.log_of("total").contains("in a container: False"));
    let run_id = run.summary["run_id"].as_str().unwrap();
    assert!(
        containers_of(run_id).is_empty(),
        "containers outlived the run"
    );
}

#[test]
fn lightweight_components_run_in_the_runtime_image_built_from_images() {
    build_runtime_image();
    let (pipeline, _) = compile_unique("runtime_image", "runtime-image");
    let run = run_json(&pipeline, &["n=6"], &["--executor", "docker"]);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.summary["outputs"]["Output"], 6);
    let make = run.log_of("make");
    assert!(make.contains("in a container: True"), "{make}");
    // The SDK was in the image: nothing was installed.
    assert!(!make.contains("Successfully installed"), "{make}");
}

#[test]
fn canceling_a_run_stops_and_removes_its_containers() {
    let (pipeline, name) = compile_unique("container_sleeper", "container-sleeper");
    let child = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--executor",
        "docker",
        "--json",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("kfbox starts");
    let run_id = running_run(&name);
    wait_for("the container to start", Duration::from_secs(60), || {
        !containers_of(&run_id).is_empty()
    });
    // Its output reaches the task log while it runs.
    wait_for("the container's log line", Duration::from_secs(30), || {
        let logs = kfbox(&["logs", &run_id, "nap"]).output().unwrap();
        String::from_utf8_lossy(&logs.stdout).contains("napping")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let run = parse_run(child.wait_with_output().unwrap());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.state(), "CANCELED", "{:#}", run.summary);
    assert_eq!(run.task("nap")["state"], "CANCELED");
    assert!(
        containers_of(&run_id).is_empty(),
        "a canceled run left containers"
    );
}

#[test]
fn containers_of_a_killed_kfbox_are_removed_by_the_next_docker_run() {
    let (pipeline, name) = compile_unique("container_sleeper", "container-sleeper");
    let mut child = kfbox(&["run", pipeline.to_str().unwrap(), "--executor", "docker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kfbox starts");
    let run_id = running_run(&name);
    wait_for("the container to start", Duration::from_secs(60), || {
        !containers_of(&run_id).is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !containers_of(&run_id).is_empty(),
        "the container outlives kill -9"
    );
    // Any later run that uses Docker in this home cleans up.
    let (next, _) = compile_unique("missing_image", "missing-image");
    let later = run_json(&next, &[], &["--executor", "docker"]);
    assert_eq!(later.code, 1, "{}", later.stderr);
    assert!(
        containers_of(&run_id).is_empty(),
        "the dead run's container was not reaped"
    );
}

#[test]
fn a_missing_image_fails_naming_it_and_how_to_load_it() {
    let (pipeline, _) = compile_unique("missing_image", "missing-image");
    let run = run_json(&pipeline, &[], &["--executor", "auto"]);
    assert_eq!(run.code, 1);
    let error = run.error_of("absent");
    assert!(error.contains("kfbox-test/absent-image:1"), "{error}");
    assert!(error.contains("kfbox images load"), "{error}");
    // Not retried: the image will not appear by itself.
    assert_eq!(run.task("absent")["attempts"], 1);
}

#[test]
fn images_travel_through_save_and_load() {
    let tag = format!("kfbox-test/tiny:{}", crate::common::uuid_like());
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("hello.txt"), "hello").unwrap();
    let imported = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | docker import - {tag}",
            dir.path().display()
        ))
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    let archive = dir.path().join("images.tar");
    let saved = kfbox(&["images", "save", archive.to_str().unwrap(), &tag])
        .output()
        .unwrap();
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    assert!(Command::new("docker")
        .args(["rmi", &tag])
        .output()
        .unwrap()
        .status
        .success());
    let loaded = kfbox(&["images", "load", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert!(String::from_utf8_lossy(&loaded.stdout).contains(&tag));
    assert!(Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .unwrap()
        .status
        .success());
    let _ = Command::new("docker").args(["rmi", &tag]).output();

    // Unknown images and unreadable archives are errors that say what is wrong.
    let unknown = kfbox(&[
        "images",
        "save",
        archive.to_str().unwrap(),
        "kfbox-test/nothing:0",
    ])
    .output()
    .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("kfbox-test/nothing:0"));
    let bogus = dir.path().join("bogus.tar");
    fs_err::write(&bogus, "not an archive").unwrap();
    let refused = kfbox(&["images", "load", bogus.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn without_docker_auto_runs_on_the_host_and_docker_says_why_it_cannot() {
    let (pipeline, _) = compile_unique("containers", "containers");
    let nowhere = format!("unix://{}", Path::new("/nonexistent/docker.sock").display());
    let output = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--executor",
        "auto",
    ])
    .env("DOCKER_HOST", &nowhere)
    .output()
    .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("Docker is not available"),
        "{}",
        run.stderr
    );

    let output = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--executor",
        "docker",
    ])
    .env("DOCKER_HOST", &nowhere)
    .output()
    .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 1);
    let error = run.error_of("greet");
    assert!(
        error.contains("no Docker daemon answers at") && error.contains("/nonexistent/docker.sock"),
        "{error}"
    );
}

#[test]
fn files_written_in_containers_belong_to_the_invoking_user() {
    // As root (CI), run kfbox as an unprivileged member of the docker group; otherwise as
    // ourselves. Either way the step's files must be that user's, not root's.
    let (pipeline, _) = compile_unique("container_writer", "container-writer");
    let dir = tempfile::Builder::new()
        .prefix("kfbox-user-")
        .tempdir()
        .unwrap();
    let (uid, gid, wrap): (u32, u32, Vec<String>) = if nix::unistd::getuid().is_root() {
        let user = "kfbox-test-user";
        let exists = Command::new("id")
            .arg(user)
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            let added = Command::new("useradd")
                .args([
                    "--no-create-home",
                    "--no-user-group",
                    "--gid",
                    "docker",
                    user,
                ])
                .output()
                .unwrap();
            assert!(added.status.success(), "useradd: {added:?}");
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, user]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let wrap = [
            "setpriv",
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--init-groups",
        ]
        .map(str::to_owned)
        .to_vec();
        (uid, gid, wrap)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
            Vec::new(),
        )
    };
    // Everything that user touches lives in a directory it owns: the binary (root's target
    // directory is not theirs to enter), the pipeline and the kfbox home.
    let binary = dir.path().join("kfbox");
    fs_err::copy(crate::common::kfbox_bin(), &binary).unwrap();
    let yaml = dir.path().join("writer.yaml");
    fs_err::copy(&pipeline, &yaml).unwrap();
    let home = dir.path().join("home");
    fs_err::create_dir(&home).unwrap();
    for path in [dir.path(), &binary, &yaml, &home] {
        nix::unistd::chown(path, Some(uid.into()), Some(gid.into())).unwrap();
    }
    let mut argv = wrap;
    argv.extend([
        binary.display().to_string(),
        "run".into(),
        yaml.display().to_string(),
        "--json".into(),
        "--executor".into(),
        "docker".into(),
    ]);
    let output = Command::new(&argv[0])
        .args(&argv[1..])
        .env("KFBOX_HOME", &home)
        .env("NO_COLOR", "1")
        .env_remove("KFBOX_EXECUTOR")
        .output()
        .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["outputs"]["Output"], format!("{uid}\n"));
    let data = run.task("write")["outputs"]["artifacts"]["data"][0]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    use std::os::unix::fs::MetadataExt;
    let meta = fs_err::metadata(&data).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (uid, gid),
        "{data} is not the invoking user's"
    );
}

/// `set_image_pull_policy("Never")` under Docker: the image that is here runs; the missing one
/// fails before any pull, naming the policy.
#[test]
fn a_never_pull_policy_runs_what_is_here_and_pulls_nothing() {
    let (pipeline, _) = compile_unique("pull_policy", "pull-policy");
    let run = run_json(&pipeline, &[], &["--executor", "docker"]);
    assert_eq!(run.code, 1, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.task("present")["state"], "SUCCEEDED");
    assert!(run.log_of("present").contains("present"));
    let error = run.error_of("absent");
    assert!(
        error.contains("kfbox-test/absent:1") && error.contains("pull policy is Never"),
        "{error}"
    );
    assert!(!run.stderr.contains("pulling image"), "{}", run.stderr);
    assert!(!run.stderr.contains("imagePullPolicy"), "{}", run.stderr);
    // The pod label is recorded on the step's execution.
    assert!(
        crate::common::executions_with_property(
            "kfbox.pod_labels",
            r#"{"rehearsal":"pull-policy"}"#
        ) >= 1
    );
}

/// The `kfp.kubernetes` volumes pipeline of `kubernetes.rs`, in containers: the claim and the
/// objects' files as bind mounts, memory-backed scratch space as a tmpfs.
#[test]
fn volumes_secrets_and_config_maps_reach_containers() {
    build_runtime_image();
    let run =
        crate::kubernetes::volumes_and_objects_behave_as_on_a_cluster(&["--executor", "docker"]);
    assert_eq!(
        run.task("write")["outputs"]["parameters"]["Output"],
        "tmpfs"
    );
}

#[test]
fn the_workspace_is_shared_by_containers() {
    build_runtime_image();
    crate::kubernetes::the_workspace_is_shared_by_the_runs_tasks(&["--executor", "docker"]);
}

/// The limits pipeline of `semantics.rs` with its shell step in a container: Docker's OOM kill
/// reads as the host process's does (OOMKilled, the limit named).
#[test]
fn a_container_over_its_memory_limit_is_oom_killed() {
    let run = crate::semantics::cpu_and_memory_limits_hold(&["--executor", "auto"]);
    assert!(
        run.log_of("hog")
            .contains("killed for going over its memory limit"),
        "{}",
        run.log_of("hog")
    );
}

/// `set_security_context`: a container runs as the uid and gid it names, a step running as a
/// second uid reads what the first wrote and writes its own output, and `run_as_non_root`
/// without a user is refused before the container starts where kfbox runs as root (where it
/// does not, the step runs as the invoking user). Images keep /root closed to other users: a
/// home there is refused, saying so (the shared home of CI, which runs as root, is there).
#[test]
fn containers_run_as_the_security_contexts_user() {
    let pipeline = compile("security_context");
    let home = tempfile::Builder::new()
        .prefix("kfbox-security-")
        .tempdir_in("/tmp")
        .unwrap();
    let output = kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--executor",
        "docker",
    ])
    .env("KFBOX_HOME", home.path())
    .output()
    .unwrap();
    let run = parse_run(output);
    assert_eq!(
        run.task("whoami")["outputs"]["parameters"]["who"],
        "1234:2345\n",
        "{}\n{:#}",
        run.stderr,
        run.summary
    );
    assert_eq!(
        run.task("read-back")["outputs"]["parameters"]["seen"],
        "4321 read 1 2 3\n"
    );
    let third = run.task("not-root");
    if nix::unistd::getuid().is_root() {
        assert_eq!(run.code, 1);
        assert_eq!(third["state"], "FAILED");
        let error = third["error"].as_str().unwrap_or_default();
        assert!(error.contains("run_as_non_root=True"), "{error}");
        assert!(containers_of(run.summary["run_id"].as_str().unwrap()).is_empty());
    } else {
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(third["state"], "SUCCEEDED");
    }
    assert!(!run.stderr.contains("securityContext"), "{}", run.stderr);
    if crate::common::shared_home().starts_with("/root") {
        let refused = run_json(&pipeline, &[], &["--executor", "docker"]);
        let error = refused.error_of("whoami");
        assert!(
            error.contains("under /root") && error.contains("KFBOX_HOME"),
            "{error}"
        );
    }
}
