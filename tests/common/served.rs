//! A `kfbox up` per test, in a home of its own, and plain HTTP requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{kfbox_bin, repo_root, sdk_python, shared_home};

/// A `kfbox up` in a home of its own (sharing the tests' Python environments), stopped when
/// dropped.
pub struct Served {
    pub url: String,
    pub home: tempfile::TempDir,
    pub child: Option<Child>,
    /// What the server printed on stdout.
    pub stdout: String,
}

/// The token `kfbox up` generated and printed, if it did.
pub fn token_in(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find(|l| l.contains("token (shown once"))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_owned)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn new_home() -> tempfile::TempDir {
    let home = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("home");
    let python = shared_home().join("python");
    fs_err::create_dir_all(&python).expect("shared python dir");
    std::os::unix::fs::symlink(&python, home.path().join("python")).expect("symlink");
    home
}

pub fn kfbox_in(home: &Path, args: &[&str]) -> Command {
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
pub fn get(url: &str, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
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
    Ok(status_and_body(&response))
}

/// Any request, with extra header lines (`Name: value`) and a body: status code and body.
pub fn request(
    url: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        head.push_str(&format!("Host: {address}\r\n"));
    }
    for header in headers {
        head.push_str(&format!("{header}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(status_and_body(&String::from_utf8_lossy(&response)))
}

/// The status code and body of a raw HTTP response.
pub fn status_and_body(response: &str) -> (u16, String) {
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    (code, body)
}

pub fn healthy(url: &str, token: Option<&str>) -> bool {
    get(url, "/apis/v2beta1/healthz", token).is_ok_and(|(code, _)| code == 200)
}

impl Served {
    pub fn start(listen_ip: &str, extra: &[&str]) -> Self {
        Self::start_in(new_home(), listen_ip, extra)
    }

    pub fn start_in(home: tempfile::TempDir, listen_ip: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--no-lab"];
        args.extend_from_slice(extra);
        Self::start_up(home, listen_ip, &args)
    }

    /// `kfbox up` with exactly these options (a lab unless they say `--no-lab`), returned as
    /// soon as the API answers.
    pub fn start_up(home: tempfile::TempDir, listen_ip: &str, extra: &[&str]) -> Self {
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

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Run one test of tests/api/client_tests.py against this server; its stdout.
    pub fn client_test(&self, name: &str, token: Option<&str>) -> String {
        let mut env = Vec::new();
        if let Some(token) = token {
            env.push(("KFP_TOKEN", token.to_owned()));
        }
        self.python_test("tests/api/client_tests.py", name, &env)
    }

    /// Run test `name` of a Python test script against this server (KFP_HOST, KFBOX_HOME and
    /// KFBOX_BIN set, and `env`); its stdout. Fails the Rust test if the script fails.
    pub fn python_test(&self, script: &str, name: &str, env: &[(&str, String)]) -> String {
        let mut command = Command::new(sdk_python());
        command
            .arg("-W")
            .arg("ignore")
            .arg(repo_root().join(script))
            .arg(name)
            .env("KFP_HOST", &self.url)
            .env("KFBOX_HOME", self.home())
            .env("KFBOX_BIN", kfbox_bin())
            .envs(env.iter().map(|(k, v)| (k, v)));
        let output = command.output().expect("python starts");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "`{script} {name}` failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Start a run whose step sleeps; its id and the step's pid once the step runs.
    pub fn start_sleeper(&self) -> (String, i32) {
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
    pub fn recorded_run(&self, run_id: &str) -> Value {
        let out = kfbox_in(self.home(), &["runs", "get", run_id, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// Stop with SIGTERM, as `kfbox down` does; the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
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
