//! Store benchmarks: execution insert rate, and listing runs with 100,000 runs recorded.
//!
//! `cargo bench -p kfbox-store` (release build). Environment:
//! - `KFBOX_BENCH_RUNS`: runs to seed (default 100000);
//! - `KFBOX_BIN`: a kfbox binary, to time `kfbox runs list` as a user runs it;
//! - `KFBOX_BENCH_MLMD_PYTHON`: a Python with `ml-metadata`, to time MLMD's own calls on the
//!   same file as the baseline (`tests/bench/mlmd_baseline.py`).
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kfbox_store::value::Prop;
use kfbox_store::{
    props, ExecutionType, FinishedExecution, NewArtifact, NewExecution, NewRun, OutputArtifact,
    RunFilter, RunOutcome, RunSelector, Store,
};
use serde_json::{json, Map};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn new_run(store: &Store, i: usize) -> kfbox_store::RunHandle {
    let run_id = format!(
        "{i:08x}-bench-run-{:016x}",
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    store
        .begin_run(&NewRun {
            run_id,
            display_name: format!("bench-{i}"),
            pipeline_name: format!("bench-pipeline-{}", i % 10),
            resource_name: format!("bench-{i}"),
            run_dir: format!("/tmp/bench/{i}"),
            parameters: Map::from_iter([("n".to_owned(), json!(i))]),
            pipeline_spec: String::new(),
            experiment_id: None,
        })
        .expect("begin run")
}

fn finish(store: &Store, run: &kfbox_store::RunHandle) {
    store
        .finish_run(
            run,
            &RunOutcome {
                state: "SUCCEEDED".into(),
                error: None,
                outputs: Map::new(),
                output_artifacts: Map::new(),
            },
        )
        .expect("finish run");
}

/// One step's records as the engine writes them: open RUNNING, close COMPLETE with an
/// artifact.
fn record_step(store: &Store, run: &kfbox_store::RunHandle, i: usize) {
    let execution = NewExecution {
        props: vec![
            (props::DISPLAY_NAME, Prop::Text(format!("step-{i}"))),
            (props::TASK_NAME, Prop::Text(format!("step-{i}"))),
            (props::PARENT_DAG_ID, Prop::Int(run.root_execution_id)),
            (
                props::INPUTS,
                Prop::Struct(Map::from_iter([("x".to_owned(), json!(i))])),
            ),
            (props::PATH, Prop::Text(format!("step-{i}"))),
            (props::KIND, Prop::Text("container".into())),
            (props::CACHE_FINGERPRINT, Prop::Text(format!("{i:064x}"))),
        ],
        ..NewExecution::running(ExecutionType::Container)
    };
    let (id, _) = store.start_execution(run, &execution).expect("start");
    store
        .finish_execution(
            run,
            id,
            &FinishedExecution {
                state: FinishedExecution::COMPLETE,
                props: vec![
                    (props::STATE, Prop::Text("SUCCEEDED".into())),
                    (props::ATTEMPTS, Prop::Int(1)),
                ],
                outputs: vec![(
                    "data".into(),
                    OutputArtifact::New(NewArtifact {
                        schema_title: "system.Dataset".into(),
                        uri: format!("/tmp/bench/{i}/data"),
                        metadata: Map::from_iter([("rows".to_owned(), json!(i))]),
                    }),
                )],
            },
        )
        .expect("finish");
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let runs: usize = std::env::var("KFBOX_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kfbox.sqlite");
    let store = Store::open(&path).expect("open store");

    // Insert rate: batches of steps, each step two short write transactions.
    let batch = 1_000;
    let mut samples = Vec::new();
    for b in 0..5 {
        let run = new_run(&store, runs + b);
        let start = Instant::now();
        for i in 0..batch {
            record_step(&store, &run, i);
        }
        samples.push(start.elapsed());
        finish(&store, &run);
    }
    let per_batch = median(samples);
    println!(
        "insert: {batch} executions (open + close + 1 artifact) per batch, median {} => {:.0} executions/s",
        ms(per_batch),
        batch as f64 / per_batch.as_secs_f64()
    );

    // Seed runs, each begun and finished as `kfbox run` does.
    let start = Instant::now();
    for i in 0..runs {
        let run = new_run(&store, i);
        finish(&store, &run);
    }
    let seeded = start.elapsed();
    println!(
        "seed: {runs} runs in {:.1} s ({:.0} runs/s)",
        seeded.as_secs_f64(),
        runs as f64 / seeded.as_secs_f64()
    );

    let time = |reps: usize, work: &mut dyn FnMut()| -> Duration {
        let samples = (0..reps)
            .map(|_| {
                let start = Instant::now();
                work();
                start.elapsed()
            })
            .collect();
        median(samples)
    };
    let filter = RunFilter::default();
    let first = time(101, &mut || {
        let page = store.list_runs(&filter, None, 20).expect("list");
        assert_eq!(page.runs.len(), 20);
    });
    println!("list first page (20 of {runs}): median {}", ms(first));

    // Walk to the middle with page tokens once, then time that deep page.
    let mut token = None;
    for _ in 0..(runs / 2 / 1000) {
        token = store
            .list_runs(&filter, token.as_deref(), 1000)
            .expect("list")
            .next_page_token;
    }
    let deep = time(101, &mut || {
        let page = store
            .list_runs(&filter, token.as_deref(), 20)
            .expect("list");
        assert_eq!(page.runs.len(), 20);
    });
    // Baseline in the same run: the same page by OFFSET, which reads every row before it.
    let conn = rusqlite::Connection::open(&path).expect("second connection");
    let offset = time(21, &mut || {
        let mut statement = conn
            .prepare_cached(
                "SELECT run_id FROM kfbox_run ORDER BY created_at DESC, run_id DESC LIMIT 20 OFFSET ?1",
            )
            .expect("prepare");
        let n = statement
            .query_map([(runs / 2) as i64], |r| r.get::<_, String>(0))
            .expect("query")
            .count();
        assert_eq!(n, 20);
    });
    println!(
        "list page at {}: keyset median {}; OFFSET baseline median {} ({:.0}x)",
        runs / 2,
        ms(deep),
        ms(offset),
        offset.as_secs_f64() / deep.as_secs_f64()
    );
    let pipeline = RunFilter {
        pipeline: Some("bench-pipeline-3".into()),
        state: None,
    };
    let filtered = time(101, &mut || {
        store.list_runs(&pipeline, None, 20).expect("list");
    });
    println!("list first page of one pipeline: median {}", ms(filtered));
    let prefix = time(101, &mut || {
        store
            .find_run(&RunSelector(format!("{:08x}", runs / 3)))
            .expect("find by prefix");
    });
    println!("find a run by id prefix: median {}", ms(prefix));
    drop(store);

    if let Ok(bin) = std::env::var("KFBOX_BIN") {
        cli_latency(Path::new(&bin), dir.path());
    }
    if let Ok(python) = std::env::var("KFBOX_BENCH_MLMD_PYTHON") {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bench/mlmd_baseline.py");
        let status = Command::new(python).arg(script).arg(&path).status();
        if !status.is_ok_and(|s| s.success()) {
            println!("mlmd baseline: failed to run");
        }
    }
}

/// `kfbox runs list` as a user types it: process start, store open, first page, table.
fn cli_latency(bin: &Path, home: &Path) {
    let mut samples = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        let output = Command::new(bin)
            .args(["runs", "list"])
            .env("KFBOX_HOME", home)
            .output()
            .expect("kfbox starts");
        samples.push(start.elapsed());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut version = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        Command::new(bin)
            .arg("--version")
            .output()
            .expect("kfbox starts");
        version.push(start.elapsed());
    }
    println!(
        "`kfbox runs list` (whole process, first page): median {}; `kfbox --version` baseline median {}",
        ms(median(samples)),
        ms(median(version))
    );
}
