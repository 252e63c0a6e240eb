//! Every pipeline of the shared conformance corpus (compiled by the kfp SDK upstream), run as it
//! is and checked against `tests/conformance/expectations.tsv`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::common::{conformance_dir, kfbox, parse_run, repo_root};

/// One row of the expectations table.
#[derive(Debug, Clone)]
struct Expectation {
    file: String,
    /// What the Kubeflow Pipelines backend on a cluster ends with.
    upstream: String,
    /// What kfbox must end with: SUCCEEDED, FAILED, INVALID (exit 2), CANCELED@SECONDS (the
    /// test interrupts the run after that many seconds); alternatives separated by `|` where
    /// the outcome depends on the host (e.g. whether a cloud CLI is installed).
    expected: String,
    params: Vec<String>,
    /// Text that must appear in the run's error, a failed task's log, or stderr.
    evidence: Option<String>,
    reason: String,
}

fn load_table() -> Vec<Expectation> {
    let path = repo_root().join("tests/conformance/expectations.tsv");
    let text = fs_err::read_to_string(&path).expect("expectations table");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 6, "{}: bad row: {line}", path.display());
            let dash = |s: &str| (s != "-").then(|| s.to_owned());
            Expectation {
                file: cols[0].to_owned(),
                upstream: cols[1].to_owned(),
                expected: cols[2].to_owned(),
                params: dash(cols[3])
                    .map(|p| p.split(' ').map(str::to_owned).collect())
                    .unwrap_or_default(),
                evidence: dash(cols[4]),
                reason: cols[5].to_owned(),
            }
        })
        .collect()
}

fn corpus_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in fs_err::read_dir(dir).expect("corpus dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            ) {
                let rel = path.strip_prefix(base).expect("inside").to_string_lossy();
                out.push(rel.into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Images a laptop can stand in for with its own Python or shell.
fn python_or_shell_images(pipeline: &Path) -> bool {
    let text = fs_err::read_to_string(pipeline).unwrap_or_default();
    let images: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches('"');
            l.strip_prefix("image: ")
                .or_else(|| l.strip_prefix("image\": "))
        })
        .map(|i| i.trim_matches(|c| c == '"' || c == ',' || c == '\''))
        .collect();
    let fits = |image: &str| {
        ["python", "alpine", "busybox", "ubuntu", "debian", "bash"]
            .iter()
            .any(|k| image.contains(k))
    };
    !images.is_empty() && images.iter().all(|i| fits(i))
}

/// The Secrets and the PVC the corpus' pipelines expect to find in their namespace, as
/// Kubeflow Pipelines' own test cluster has them (the values are what their steps assert).
fn namespace_fixtures() {
    let commands: [&[&str]; 4] = [
        &[
            "secrets",
            "set",
            "test-secret-1",
            "username=user1",
            "password=psw1",
        ],
        &["secrets", "set", "test-secret-2", "password=psw1"],
        &["secrets", "set", "test-secret-3", "password=psw2"],
        &["volumes", "create", "kfbox-pvc", "--size", "1Gi"],
    ];
    for args in commands {
        let output = kfbox(args).output().expect("kfbox starts");
        let stderr = String::from_utf8_lossy(&output.stderr);
        // A volume left by an earlier test run is as good as a new one.
        assert!(
            output.status.success() || stderr.contains("already exists"),
            "kfbox {args:?}: {stderr}"
        );
    }
}

struct Observed {
    outcome: String,
    text: String,
    summary: serde_json::Value,
}

/// Run a pipeline as the table says; `warm: false` starts every step cold (`KFBOX_WARM=off`).
fn run_one(exp: &Expectation, pipeline: &Path, warm: bool) -> Observed {
    let mut args = vec![
        "run".to_owned(),
        pipeline.display().to_string(),
        "--json".to_owned(),
    ];
    let inputs = tempfile::tempdir().expect("temp dir");
    for p in &exp.params {
        match p.strip_prefix("artifact:").and_then(|a| a.split_once('=')) {
            Some((name, text)) => {
                let file = inputs.path().join(name);
                fs_err::write(&file, text).expect("artifact file");
                args.push("--artifact".into());
                args.push(format!("{name}={}", file.display()));
            }
            None => {
                args.push("--param".into());
                args.push(p.clone());
            }
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = kfbox(&args);
    command
        .env("KFBOX_WARM", if warm { "on" } else { "off" })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("kfbox starts");
    let cancel_after = exp
        .expected
        .split('|')
        .find_map(|alt| alt.strip_prefix("CANCELED@"))
        .map(|s| Duration::from_secs(s.parse().expect("seconds")));
    if let Some(delay) = cancel_after {
        let pid = child.id().to_string();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            // The run may have ended already; then this signals nothing (pids are not reused
            // this fast on a test machine).
            let _ = Command::new("kill").args(["-INT", &pid]).status();
        });
    }
    let result = parse_run(child.wait_with_output().expect("kfbox ends"));
    let mut text = result.stderr.clone();
    text.push_str(&result.summary["error"].to_string());
    for task in result.summary["tasks"].as_array().into_iter().flatten() {
        text.push_str(&task["error"].to_string());
        if task["state"] == "FAILED" {
            if let Some(log) = task["log"].as_str() {
                text.push_str(&fs_err::read_to_string(log).unwrap_or_default());
            }
        }
    }
    let outcome = match result.code {
        2 => "INVALID".to_owned(),
        _ => result.state().to_owned(),
    };
    Observed {
        outcome,
        text,
        summary: result.summary,
    }
}

/// What must not depend on whether steps were forked from a warm worker: each task's state
/// and output parameters, and the component's own lines in its log (the SDK executor's and
/// kfbox's lines name temporary paths and times), by task path, the run's id left out. A
/// task's lines are compared sorted: its stdout and stderr are two pipes, read as they come.
fn behaviour(summary: &serde_json::Value) -> Vec<String> {
    let run_id = summary["run_id"].as_str().unwrap_or("-");
    let mut tasks: Vec<&serde_json::Value> =
        summary["tasks"].as_array().into_iter().flatten().collect();
    tasks.sort_by_key(|task| task["path"].as_str().unwrap_or_default());
    let mut lines = Vec::new();
    for task in tasks {
        let path = task["path"].as_str().unwrap_or_default();
        lines.push(format!(
            "{path} {} {}",
            task["state"], task["outputs"]["parameters"]
        ));
        let log =
            fs_err::read_to_string(task["log"].as_str().unwrap_or_default()).unwrap_or_default();
        let mut own: Vec<String> = log
            .lines()
            .filter(|l| !l.starts_with("[KFP Executor") && !l.starts_with("[kfbox]"))
            .map(|l| format!("{path}: {l}"))
            .collect();
        own.sort();
        lines.extend(own);
    }
    lines
        .iter()
        .map(|l| without_volatile_words(&l.replace(run_id, "RUN")))
        .collect()
}

/// Pipelines whose output differs between any two runs, warm or cold.
const VARYING: [(&str, &str); 4] = [
    (
        "local_execution/local_execution_pipeline_with_retry.yaml",
        "counts its attempts in a file that outlives the run",
    ),
    ("log_streaming_compiled.yaml", "prints the time"),
    (
        "critical/parameters_simple.yaml",
        "a shell pipeline's two traced commands write to stderr at once, mid-line",
    ),
    (
        "critical/pipeline_with_placeholders.yaml",
        "prints the run's job name and task id",
    ),
];

/// A line with the words that differ between any two runs replaced: temporary paths and
/// UUIDs (a created PVC's name, a task's id).
fn without_volatile_words(line: &str) -> String {
    fn volatile(word: &str) -> String {
        if word.starts_with("/tmp/") {
            return "/tmp/*".to_owned();
        }
        let is_uuid = |s: &str| {
            s.len() == 36
                && s.char_indices().all(|(i, c)| match i {
                    8 | 13 | 18 | 23 => c == '-',
                    _ => c.is_ascii_hexdigit(),
                })
        };
        match (0..word.len().saturating_sub(35)).find(|&i| word.get(i..i + 36).is_some_and(is_uuid))
        {
            Some(i) => format!("{}UUID{}", &word[..i], volatile(&word[i + 36..])),
            None => word.to_owned(),
        }
    }
    let mut out = String::new();
    let mut word = String::new();
    for c in line.chars() {
        if c.is_ascii_alphanumeric() || "-_./".contains(c) {
            word.push(c);
        } else {
            out.push_str(&volatile(&std::mem::take(&mut word)));
            out.push(c);
        }
    }
    out.push_str(&volatile(&word));
    out
}

/// Whether a pipeline has lightweight Python components (which warm workers run) and would
/// do the same twice (no coin flips).
fn deterministic_python(pipeline: &Path) -> bool {
    fs_err::read_to_string(pipeline)
        .is_ok_and(|text| text.contains("kfp.dsl.executor_main") && !text.contains("import random"))
}

/// Run `jobs` on three threads (as a laptop's cores would), results in the order given.
fn on_three_threads<T: Send, R: Send>(jobs: Vec<T>, run: impl Fn(&T) -> R + Sync) -> Vec<(T, R)> {
    let queue = Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let Some((at, job)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let result = run(&job);
                results.lock().unwrap().push((at, job, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(at, _, _)| *at);
    results
        .into_iter()
        .map(|(_, job, result)| (job, result))
        .collect()
}

#[test]
// The count is the test's report: it belongs in the test output.
#[allow(clippy::print_stdout)]
fn conformance_corpus_reaches_expected_states() {
    let dir = conformance_dir();
    assert!(
        dir.is_dir(),
        "conformance corpus not found at {} (set KFBOX_CONFORMANCE_DIR)",
        dir.display()
    );
    let table = load_table();
    let by_file: BTreeMap<&str, &Expectation> =
        table.iter().map(|e| (e.file.as_str(), e)).collect();
    let files = corpus_files(&dir);
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !by_file.contains_key(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "pipelines without a row in the expectations table: {missing:?}"
    );
    namespace_fixtures();
    let mut table = table;
    table.sort_by(|a, b| a.file.cmp(&b.file));
    let results = on_three_threads(table, |exp| run_one(exp, &dir.join(&exp.file), true));
    let mut failures = Vec::new();
    let (mut fitting, mut fitting_match) = (0, 0);
    for (exp, observed) in &results {
        let wanted: Vec<&str> = exp
            .expected
            .split('|')
            .map(|alt| alt.split('@').next().unwrap_or_default())
            .collect();
        let want = wanted[0];
        let mut ok = wanted.contains(&observed.outcome.as_str());
        if let Some(evidence) = &exp.evidence {
            ok &= observed.text.contains(evidence.as_str());
        }
        if !ok {
            failures.push(format!(
                "{}: expected {} ({}), got {}; evidence {:?} {}",
                exp.file,
                exp.expected,
                exp.reason,
                observed.outcome,
                exp.evidence,
                if observed
                    .text
                    .contains(exp.evidence.as_deref().unwrap_or(""))
                {
                    "found"
                } else {
                    "NOT found"
                }
            ));
        }
        if python_or_shell_images(&dir.join(&exp.file)) {
            fitting += 1;
            if ok && want == exp.upstream {
                fitting_match += 1;
            }
        }
    }
    let ratio = fitting_match as f64 / fitting.max(1) as f64;
    println!(
        "conformance: {} pipelines; {fitting_match} of {fitting} with Python or shell images end as on a cluster ({:.1}%)",
        results.len(),
        ratio * 100.0
    );
    // The same pipelines with every step started cold: the same tasks, outputs and logs.
    let forked: Vec<_> = results
        .iter()
        .filter(|(exp, observed)| {
            observed.outcome == "SUCCEEDED"
                && deterministic_python(&dir.join(&exp.file))
                && !VARYING.iter().any(|(file, _)| *file == exp.file)
        })
        .collect();
    let compared = forked.len();
    for ((exp, warm), cold) in
        on_three_threads(forked, |(exp, _)| run_one(exp, &dir.join(&exp.file), false))
    {
        let (warm, cold) = (behaviour(&warm.summary), behaviour(&cold.summary));
        if warm != cold {
            let differ: Vec<String> = warm
                .iter()
                .zip(&cold)
                .filter(|(w, c)| w != c)
                .take(3)
                .map(|(w, c)| format!("  warm: {w}\n  cold: {c}"))
                .collect();
            failures.push(format!(
                "{}: warm and cold runs differ ({} and {} lines):\n{}",
                exp.file,
                warm.len(),
                cold.len(),
                differ.join("\n")
            ));
        }
    }
    println!("conformance: {compared} pipelines with Python components compared warm and cold");
    assert!(
        compared >= 50,
        "only {compared} pipelines compared warm and cold"
    );
    assert!(
        failures.is_empty(),
        "conformance mismatches:\n{}",
        failures.join("\n")
    );
    assert!(
        ratio >= 0.85,
        "only {:.1}% of Python/shell pipelines end as on a cluster (need 85%)",
        ratio * 100.0
    );
}
