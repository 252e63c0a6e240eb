//! Warm Python workers: lightweight steps forked from a worker that has the SDK imported, each
//! as isolated, visible and cancellable as a step started cold. Every test checks that its
//! steps were forked (their parent is the worker), so none passes by running cold.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{
    compile_file, kfbox, parent_of, parse_run, process_runs, python_steps_under, repo_root,
    wait_for, RunResult,
};

const WORKER: &str = "kfbox-warm-worker.py";

fn pipeline(name: &str) -> std::path::PathBuf {
    compile_file(&repo_root().join("tests/pipelines/warm.py"), name)
}

fn run(pipeline: &std::path::Path, warm: &str, path: Option<&std::ffi::OsStr>) -> RunResult {
    let mut command = kfbox(&["run", pipeline.to_str().unwrap(), "--json"]);
    command.env("KFBOX_WARM", warm);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let run = parse_run(command.output().unwrap());
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    run
}

/// `kfbox run --json` of `pipeline` with warm workers on and `param`, its output piped.
fn spawn_warm(pipeline: &std::path::Path, param: &str) -> std::process::Child {
    kfbox(&[
        "run",
        pipeline.to_str().unwrap(),
        "--json",
        "--param",
        param,
    ])
    .env("KFBOX_WARM", "on")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

fn output_of(run: &RunResult, task: &str) -> String {
    run.task(task)["outputs"]["parameters"]["Output"]
        .as_str()
        .unwrap_or_else(|| panic!("no output for {task}: {:#}", run.summary))
        .to_owned()
}

/// A step that sets a module attribute, an environment variable and a global, imports a module
/// and leaves a thread running is followed, in the same worker, by one that sees none of it.
#[test]
fn a_forked_step_sees_nothing_of_the_steps_before_it() {
    let pipeline = pipeline("isolation");
    let run = run(&pipeline, "on", None);
    assert!(
        output_of(&run, "dirty").contains(WORKER),
        "{:#}",
        run.summary
    );
    let (seen, parent) = output_of(&run, "check")
        .split_once('|')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    assert!(parent.contains(WORKER), "check was not forked: {parent}");
    assert_eq!(seen, "", "the second step saw what the first left behind");
    // KFBOX_WARM=off: every step is the SDK's command line, `sh` starting `python3`.
    let cold = self::run(&pipeline, "off", None);
    let parent = output_of(&cold, "check");
    assert!(parent.starts_with("|sh -ec"), "{parent}");
}

/// A forked step sees the GPUs it was given (`CUDA_VISIBLE_DEVICES`), and one that asked for
/// none sees none (an empty list, not the worker's), as with steps started cold.
#[test]
fn a_forked_step_sees_the_gpus_it_asked_for() {
    let fake = crate::gpu::two_gpus();
    let path = crate::gpu::path_with(fake.path());
    let run = run(&pipeline("gpus"), "on", Some(&path));
    let with_gpu = output_of(&run, "visible");
    let without = output_of(&run, "visible-2");
    assert!(
        with_gpu.starts_with("0|") || with_gpu.starts_with("1|"),
        "{with_gpu}"
    );
    assert!(without.starts_with("|"), "{without}");
    assert!(
        with_gpu.contains(WORKER) && without.contains(WORKER),
        "{run:?}",
        run = run.summary
    );
}

/// Interrupting a run stops a forked step's whole process group: the step and the process it
/// started are gone, the task CANCELED.
#[test]
fn canceling_a_forked_step_kills_its_process_group() {
    let mut child = spawn_warm(&pipeline("lingering"), "seconds=321.75");
    let lingering = || {
        std::process::Command::new("pgrep")
            .args(["-f", "sleep 321.75"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let started = Instant::now();
    while lingering().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the step never started its `sleep`"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let run = parse_run(child.wait_with_output().unwrap());
    assert_eq!(run.state(), "CANCELED", "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.task("linger")["state"], "CANCELED");
    assert!(
        run.log_of("linger").contains(WORKER),
        "the step was not forked: {}",
        run.log_of("linger")
    );
    assert_eq!(lingering(), "", "the step's process group outlived it");
}

/// Run `pipeline` warm with `param`, kill the worker of its forked step once that step runs
/// and `ready` holds, and let the run end: the run, the step and the worker.
fn run_killing_its_worker(
    pipeline: &std::path::Path,
    param: &str,
    ready: impl Fn() -> bool,
) -> (RunResult, u32, u32) {
    let child = spawn_warm(pipeline, param);
    let mut steps = Vec::new();
    wait_for("the step to be forked", Duration::from_secs(120), || {
        steps = python_steps_under(child.id());
        !steps.is_empty() && ready()
    });
    let worker = parent_of(steps[0]).expect("the step's parent");
    std::process::Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status()
        .unwrap();
    let run = parse_run(child.wait_with_output().unwrap());
    (run, steps[0], worker)
}

/// A worker that dies under a running step takes the step with it, and the task fails saying
/// so (a retry would start it afresh).
#[test]
fn a_worker_that_dies_fails_its_running_step_in_words() {
    let (run, step, _) = run_killing_its_worker(&pipeline("lingering"), "seconds=98.5", || true);
    assert_eq!(run.state(), "FAILED", "{}\n{:#}", run.stderr, run.summary);
    let error = run.error_of("linger");
    assert!(
        error.contains("warm Python worker stopped while the step ran"),
        "{error}"
    );
    assert!(!process_runs(step), "the step outlived its worker");
}

/// A worker that died is replaced: the step it took down is retried, forked from a new one.
#[test]
fn a_dead_worker_is_replaced_for_the_next_attempt() {
    let scratch = tempfile::tempdir().unwrap();
    let marker = scratch.path().join("first-attempt");
    let (run, _, worker) = run_killing_its_worker(
        &pipeline("replaced"),
        &format!("marker={}", marker.display()),
        || marker.exists(),
    );
    assert_eq!(
        run.state(),
        "SUCCEEDED",
        "{}\n{:#}",
        run.stderr,
        run.summary
    );
    assert_eq!(run.task("linger-once")["attempts"], 2, "{:#}", run.summary);
    let output = output_of(&run, "linger-once");
    let (parent, command) = output.split_once('|').unwrap();
    assert!(
        command.contains(WORKER),
        "the retry was not forked: {command}"
    );
    assert_ne!(
        parent,
        worker.to_string(),
        "forked by the worker that was killed"
    );
}
