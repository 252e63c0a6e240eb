//! WebAssembly steps, with modules built from tests/wasi/*.c by zig (the `ziglang` package
//! from PyPI, in the test Python).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::common::{compile_unique, compiled_dir, kfbox, parse_run, run_json, sdk_python};

/// Build every module once, beside the compiled pipelines (whose `wasm:` images are relative).
fn build_modules() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = compiled_dir();
        fs_err::create_dir_all(&out).unwrap();
        for name in ["count", "escape", "spin", "hog"] {
            let source = crate::common::repo_root().join(format!("tests/wasi/{name}.c"));
            let partial = out.join(format!("{name}.wasm.{}", std::process::id()));
            let built = Command::new(sdk_python())
                .args(["-m", "ziglang", "cc", "--target=wasm32-wasi", "-O2", "-s"])
                .arg(&source)
                .arg("-o")
                .arg(&partial)
                .output()
                .expect("python starts");
            assert!(
                built.status.success(),
                "zig could not build {}: {}\n(tests/run.sh installs the `ziglang` package)",
                source.display(),
                String::from_utf8_lossy(&built.stderr)
            );
            fs_err::rename(&partial, out.join(format!("{name}.wasm"))).unwrap();
        }
    });
}

#[test]
fn a_wasm_step_reads_an_artifact_and_writes_outputs_for_process_steps() {
    build_modules();
    let (pipeline, _) = compile_unique("wasi", "wasi");
    let run = run_json(&pipeline, &["n=9"], &[]);
    assert_eq!(run.code, 0, "{}\n{:#}", run.stderr, run.summary);
    assert_eq!(run.task("count")["outputs"]["parameters"]["total"], 9);
    assert_eq!(run.summary["outputs"]["Output"], 18);
    let report = run.task("count")["outputs"]["artifacts"]["report"][0]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fs_err::read_to_string(report).unwrap(), "lines=9\n");
    // The container's env reaches the module; its stdout reaches the task log.
    assert!(run
        .log_of("count")
        .contains("hello from wasm: counted 9 lines"));
}

#[test]
fn wasm_steps_cannot_escape_and_are_held_to_their_limits() {
    build_modules();
    let (pipeline, _) = compile_unique("wasi_limits", "wasi-limits");
    let config = tempfile::NamedTempFile::new().unwrap();
    fs_err::write(config.path(), "[wasi]\ntime_limit = \"2s\"\n").unwrap();
    let started = std::time::Instant::now();
    let output = kfbox(&["run", pipeline.to_str().unwrap(), "--json"])
        .env("KFBOX_CONFIG", config.path())
        .output()
        .unwrap();
    let run = parse_run(output);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        started.elapsed().as_secs() < 60,
        "the time limit did not stop `spin`"
    );

    let escape = run.log_of("escape");
    assert!(
        !escape.contains("opened "),
        "a file outside the preopens was read:\n{escape}"
    );
    assert!(
        escape.contains("/etc/passwd: No such file or directory"),
        "{escape}"
    );
    assert!(
        escape.contains("kfbox.sqlite: Operation not permitted"),
        "{escape}"
    );
    assert!(escape.contains("can open only:"), "{escape}");
    assert!(run.error_of("escape").contains("code 3"));

    let spin = run.log_of("spin");
    assert!(spin.contains("ran past its time limit of 2.0s"), "{spin}");
    let hog = run.log_of("hog");
    assert!(
        hog.contains("more than its memory limit of 32 MiB"),
        "{hog}"
    );
}

#[test]
fn a_missing_module_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _) = compile_unique("wasi", "wasi");
    // The same pipeline beside no module at all.
    let moved: PathBuf = dir.path().join("wasi.yaml");
    fs_err::copy(&pipeline, &moved).unwrap();
    let run = run_json(&moved, &[], &[]);
    assert_eq!(run.code, 1);
    let error = run.error_of("count");
    assert!(
        error.contains(&dir.path().join("count.wasm").display().to_string()),
        "{error}"
    );
}
