//! `kfbox up` with the real `kfp` client and CLI (tests/api/client_tests.py), `kfbox status`,
//! `kfbox down`, `--detach`, tokens.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{kfbox_bin, repo_root, sdk_python, shared_home, wait_for};

/// A `kfbox up` in a home of its own (sharing the tests' Python environments), stopped when
/// dropped.
struct Served {
    url: String,
    home: tempfile::TempDir,
    child: Option<Child>,
    /// What the server printed on stdout.
    stdout: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn new_home() -> tempfile::TempDir {
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("home");
    let python = shared_home().join("python");
    std::fs::create_dir_all(&python).expect("shared python dir");
    std::os::unix::fs::symlink(&python, home.path().join("python")).expect("symlink");
    home
}

fn kfbox_in(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(kfbox_bin());
    command
        .args(args)
        .env("KFBOX_HOME", home)
        .env("NO_COLOR", "1")
        .env("KFBOX_EXECUTOR", "process")
        .env_remove("KFBOX_CONFIG")
        .env_remove("KFBOX_PYTHON")
        .env_remove("KFBOX_TOKEN")
        .env_remove("KFBOX_CACHE");
    command
}

/// GET `path`: status code and body.
fn get(url: &str, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Ok((code, body))
}

fn healthy(url: &str, token: Option<&str>) -> bool {
    get(url, "/apis/v2beta1/healthz", token).is_ok_and(|(code, _)| code == 200)
}

impl Served {
    fn start(listen_ip: &str, extra: &[&str]) -> Self {
        Self::start_in(new_home(), listen_ip, extra)
    }

    fn start_in(home: tempfile::TempDir, listen_ip: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let listen = format!("{listen_ip}:{port}");
        let mut args = vec!["up", "--listen", &listen];
        args.extend_from_slice(extra);
        let mut child = kfbox_in(home.path(), &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kfbox up starts");
        // The addresses (and a generated token) come first on stdout.
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut stdout = String::new();
        for _ in 0..4 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            stdout.push_str(&line);
            if line.contains("KF_PIPELINES_ENDPOINT") && !listen_ip.starts_with("0.") {
                break;
            }
            if line.contains("existing_token") {
                break;
            }
        }
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        // Any answer will do: with a token, healthz answers 401 to a request without it.
        while get(&url, "/apis/v2beta1/healthz", None).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("kfbox up exited ({status}); stdout:\n{stdout}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "kfbox up never answered"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            url,
            home,
            child: Some(child),
            stdout,
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// Run one test of tests/api/client_tests.py against this server; its stdout.
    fn client_test(&self, name: &str, token: Option<&str>) -> String {
        let mut command = Command::new(sdk_python());
        command
            .arg("-W")
            .arg("ignore")
            .arg(repo_root().join("tests/api/client_tests.py"))
            .arg(name)
            .env("KFP_HOST", &self.url)
            .env("KFBOX_HOME", self.home())
            .env("KFBOX_BIN", kfbox_bin());
        if let Some(token) = token {
            command.env("KFP_TOKEN", token);
        }
        let output = command.output().expect("python starts");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "client test `{name}` failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Start a run whose step sleeps; its id and the step's pid once the step runs.
    fn start_sleeper(&self) -> (String, i32) {
        let out = self.client_test("start_sleeper", None);
        let line = out
            .lines()
            .find(|l| l.starts_with('{'))
            .expect("the run id and step pid");
        let started: Value = serde_json::from_str(line).unwrap();
        (
            started["run_id"].as_str().unwrap().to_owned(),
            started["pid"].as_i64().unwrap() as i32,
        )
    }

    /// A run as `kfbox runs get --json` reads it from this server's store.
    fn recorded_run(&self, run_id: &str) -> Value {
        let out = kfbox_in(self.home(), &["runs", "get", run_id, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// Stop with SIGTERM, as `kfbox down` does; the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if started.elapsed() > Duration::from_secs(40) {
                let _ = child.kill();
                panic!("kfbox up did not stop within 40 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

/// Whether a process runs (a zombie waiting for its parent does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
    })
}

fn token_in(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find(|l| l.contains("token (shown once"))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

#[test]
fn kfp_client_runs_pipelines_versions_experiments() {
    let served = Served::start("127.0.0.1", &[]);
    assert!(
        served
            .stdout
            .contains(&format!("export KF_PIPELINES_ENDPOINT={}", served.url)),
        "{}",
        served.stdout
    );
    served.client_test("runs", None);
}

#[test]
fn kfp_client_lists_runs_sorted_filtered_and_paged() {
    Served::start("127.0.0.1", &[]).client_test("list_pages", None);
}

#[test]
fn terminate_cancels_the_run_and_stops_its_processes() {
    Served::start("127.0.0.1", &[]).client_test("terminate", None);
}

#[test]
fn retry_reruns_failed_tasks_and_reuses_succeeded_ones() {
    Served::start("127.0.0.1", &[]).client_test("retry", None);
}

#[test]
fn recurring_runs_fire_on_cron_and_period() {
    Served::start("127.0.0.1", &[]).client_test("recurring", None);
}

#[test]
fn kfp_cli_lists_runs_pipelines_and_experiments() {
    Served::start("127.0.0.1", &[]).client_test("cli", None);
}

#[test]
fn openapi_document_matches_routes_and_the_sdk_client() {
    Served::start("127.0.0.1", &[]).client_test("openapi", None);
}

#[test]
fn artifact_and_log_reads_stay_inside_run_directories() {
    Served::start("127.0.0.1", &[]).client_test("traversal", None);
}

#[test]
fn fifty_concurrent_runs_all_complete_and_are_recorded() {
    let served = Served::start("127.0.0.1", &[]);
    let out = served.client_test("load", None);
    let report = out
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("the load test reports");
    let report: Value = serde_json::from_str(report).expect("JSON report");
    assert_eq!(report["runs"], 50);
    // Timings are reported by tests/bench/server.py, not asserted here.
    assert!(
        report["list_runs_under_load_ms"]["samples"].as_u64() > Some(0),
        "{report}"
    );
}

#[test]
fn beyond_loopback_a_token_is_generated_and_required() {
    let served = Served::start("0.0.0.0", &[]);
    let token =
        token_in(&served.stdout).unwrap_or_else(|| panic!("no token printed:\n{}", served.stdout));
    assert!(token.len() >= 32, "{token}");
    served.client_test("token", Some(&token));
    // A given token is used as is and not printed.
    let mut given = Served::start("0.0.0.0", &["--token", "s3cret-token-given"]);
    assert!(token_in(&given.stdout).is_none(), "{}", given.stdout);
    assert_eq!(
        get(&given.url, "/apis/v2beta1/healthz", None).unwrap().0,
        401
    );
    assert!(healthy(&given.url, Some("s3cret-token-given")));
    assert!(given.stop().success());
}

#[test]
fn a_second_up_refuses_and_down_cancels_running_steps() {
    let mut served = Served::start("127.0.0.1", &[]);
    let (run_id, pid) = served.start_sleeper();

    let second = kfbox_in(served.home(), &["up", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("already serving") && stderr.contains(&served.url),
        "{stderr}"
    );

    let status = kfbox_in(served.home(), &["status", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success());
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["url"], served.url.as_str());
    assert_eq!(status["runs_running"], 1, "{status}");

    let down = kfbox_in(served.home(), &["down"]).output().unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let exit = served.stop();
    assert!(exit.success(), "kfbox up exited with {exit}");
    let run = served.recorded_run(&run_id);
    assert_eq!(run["state"], "CANCELED", "{run:#}");
    assert_eq!(run["tasks"][0]["state"], "CANCELED", "{run:#}");
    wait_for("the step to stop", Duration::from_secs(10), || !alive(pid));
    let after = kfbox_in(served.home(), &["status"]).output().unwrap();
    assert_eq!(after.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&after.stdout).contains("not serving"));
}

#[test]
fn detach_runs_in_the_background_until_down() {
    let home = new_home();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let up = kfbox_in(
        home.path(),
        &["up", "--detach", "--no-lab", "--listen", &listen],
    )
    .output()
    .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let url = format!("http://{listen}");
    assert!(
        healthy(&url, None),
        "not answering right after --detach returned"
    );
    assert!(String::from_utf8_lossy(&up.stdout).contains(&url));
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(home.path().join("server.json")).unwrap())
            .unwrap();
    let pid = info["pid"].as_i64().unwrap();
    assert!(home.path().join("server.log").exists());
    let status = kfbox_in(home.path(), &["status"]).output().unwrap();
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("healthy"));
    let down = kfbox_in(home.path(), &["down"]).output().unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(!alive(pid as i32));
    assert!(!healthy(&url, None));
    assert!(!home.path().join("server.json").exists());
    // Stopping what is not running is no error.
    let again = kfbox_in(home.path(), &["down"]).output().unwrap();
    assert!(again.status.success());
}

#[test]
fn bad_listen_addresses_and_taken_ports_are_refused() {
    let home = new_home();
    let out = kfbox_in(home.path(), &["up", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen `localhost`"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = kfbox_in(home.path(), &["up", "--listen", &listen])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {listen}")) && stderr.contains("--listen"),
        "{stderr}"
    );
}

#[test]
fn a_killed_server_leaves_a_consistent_store_and_a_free_home() {
    let mut served = Served::start("127.0.0.1", &[]);
    let (run_id, pid) = served.start_sleeper();
    let mut child = served.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let status = kfbox_in(served.home(), &["status"]).output().unwrap();
    assert_eq!(status.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&status.stdout).contains("not serving"));
    // The next command that opens the store finds the run abandoned and stops its step.
    let run = served.recorded_run(&run_id);
    assert_eq!(run["state"], "FAILED", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ended without finishing"),
        "{run:#}"
    );
    wait_for("the orphaned step to stop", Duration::from_secs(10), || {
        !alive(pid)
    });
    // The home is free for a new server.
    let home = std::mem::replace(&mut served.home, tempfile::tempdir().unwrap());
    let again = Served::start_in(home, "127.0.0.1", &[]);
    assert!(healthy(&again.url, None));
}
