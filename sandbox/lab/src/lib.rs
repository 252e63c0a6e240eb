//! kfbox's JupyterLab: the workspace it opens on ([`workspace`]) and the lab server process
//! ([`Lab`]), started from a kfbox-managed Python environment on loopback with a token, its
//! kernels pointed at kfbox's API through `KF_PIPELINES_ENDPOINT`.

pub mod workspace;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// What the lab environment installs (the kernel finds `kfp` in the base environment below it).
pub const LAB_REQUIREMENTS: &[&str] = &["jupyterlab==4.6.6"];

/// Left out of the lab's environment: `rfc3987-syntax` (pulled in by `jsonschema`'s format
/// checkers through `jupyter-events`) compiles a grammar at import, half of every lab start
/// (2.2 s of 4.4 s measured); `jsonschema` skips the IRI formats without it.
pub const LAB_EXCLUDED: &[&str] = &["rfc3987-syntax"];

/// What the codelabs' components ask for in `packages_to_install`, so that a wheelhouse from
/// `kfbox env bundle` runs them offline (the offline codelab test fails if they ask for more).
pub const CODELAB_REQUIREMENTS: &[&str] = &["pandas==2.3.3", "scikit-learn==1.7.2"];

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("shipped file `{0}` is not a plain relative path")]
    BadShippedPath(String),
    #[error("cannot start JupyterLab: {0}")]
    Spawn(std::io::Error),
    #[error("JupyterLab exited before it answered ({status}); see {}", log.display())]
    Exited {
        status: std::process::ExitStatus,
        log: PathBuf,
    },
    #[error("JupyterLab did not answer within {} s; see {}", waited.as_secs(), log.display())]
    Timeout { waited: Duration, log: PathBuf },
}

/// The notebook the lab opens on.
const WELCOME: &str = "welcome.ipynb";

/// Lab settings a workshop wants from the first start: no news pop-up asking to fetch Jupyter's
/// news, no update checks (both reach the network). Written only where the user has none, so
/// their own choice in the lab's settings editor stands.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[(
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
    r#"{ "fetchNews": "false", "checkForUpdates": false }"#,
)];

fn write_default_settings(dir: &Path) -> Result<(), LabError> {
    for (name, text) in DEFAULT_SETTINGS {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        let parent = path.parent().expect("settings live in a directory");
        fs_err::create_dir_all(parent)
            .and_then(|()| fs_err::write(&path, text))
            .map_err(|source| LabError::Io {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}

/// How to start the lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The environment's Python, with JupyterLab installed.
    pub python: PathBuf,
    pub workspace: PathBuf,
    pub listen: SocketAddr,
    pub token: String,
    /// kfbox's API, for `kfp.Client()` in the kernels.
    pub api_url: String,
    /// The kfbox home, and the directory of the kfbox executable (put first on PATH): `kfbox`
    /// in a lab terminal or a notebook's `!kfbox` sees the same runs as the server.
    pub home: PathBuf,
    pub kfbox_dir: PathBuf,
    /// Where the lab's output goes.
    pub log: PathBuf,
}

/// A running lab server; stopped (with its kernels) when dropped.
#[derive(Debug)]
pub struct Lab {
    child: Child,
    options: LabOptions,
}

impl Lab {
    pub fn start(options: LabOptions) -> Result<Self, LabError> {
        let log = fs_err::File::create(&options.log).map_err(|source| LabError::Io {
            path: options.log.clone(),
            source,
        })?;
        let err = log.file().try_clone().map_err(LabError::Spawn)?;
        let jupyter = options.workspace.join(".kfbox/jupyter");
        let settings = jupyter.join("lab/user-settings");
        write_default_settings(&settings)?;
        let mut command = Command::new(&options.python);
        command
            .args(["-m", "jupyterlab", "--no-browser"])
            .arg(format!("--ServerApp.ip={}", options.listen.ip()))
            .arg(format!("--ServerApp.port={}", options.listen.port()))
            .arg("--ServerApp.port_retries=0")
            .arg(format!(
                "--ServerApp.root_dir={}",
                options.workspace.display()
            ))
            .arg(format!("--IdentityProvider.token={}", options.token))
            // The token is the lab's only credential; nothing may reach it from elsewhere.
            .arg("--ServerApp.allow_remote_access=False")
            .arg("--LabApp.news_url=")
            .arg("--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
            // Offline first: no extension listings fetched from PyPI.
            .arg("--LabApp.extension_manager=readonly")
            .env("KF_PIPELINES_ENDPOINT", &options.api_url)
            .env("KFBOX_HOME", &options.home)
            .env("PATH", search_path(&options.kfbox_dir))
            .env("JUPYTER_CONFIG_DIR", jupyter.join("config"))
            .env("JUPYTER_RUNTIME_DIR", jupyter.join("runtime"))
            .env("JUPYTERLAB_SETTINGS_DIR", &settings)
            .current_dir(&options.workspace);
        // Jupyter refuses root unless told; the lab listens on loopback behind a token either way.
        if nix::unistd::geteuid().is_root() {
            command.arg("--allow-root");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.into_file())
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(LabError::Spawn)?;
        Ok(Self { child, options })
    }

    /// The address to open in a browser, token included.
    /// It opens the welcome notebook (the Launcher when the user deleted it).
    pub fn url(&self) -> String {
        let page = if self.options.workspace.join(WELCOME).is_file() {
            format!("lab/tree/{WELCOME}")
        } else {
            "lab".to_owned()
        };
        format!(
            "http://{}/{page}?token={}",
            self.options.listen, self.options.token
        )
    }

    /// Wait until the lab answers its status route with the token.
    pub fn wait_ready(&mut self, limit: Duration) -> Result<(), LabError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(LabError::Exited {
                    status,
                    log: self.options.log.clone(),
                });
            }
            if status_ok(self.options.listen, &self.options.token) {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(LabError::Timeout {
                    waited: limit,
                    log: self.options.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stop the lab and everything it started (kernels): SIGTERM, then SIGKILL after 5 s.
    pub fn stop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = killpg(group, Signal::SIGKILL);
            return;
        }
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                // Kernels that outlived the server.
                let _ = killpg(group, Signal::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PATH with `first` in front.
fn search_path(first: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(first.to_owned()).chain(std::env::split_paths(&rest)))
        .unwrap_or(rest)
}

/// Whether `GET /api/status` with the token answers 200.
fn status_ok(addr: SocketAddr, token: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "GET /api/status HTTP/1.1\r\nHost: {addr}\r\nAuthorization: token {token}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    stream
        .read(&mut head)
        .is_ok_and(|n| head[..n].starts_with(b"HTTP/1.1 200"))
}

/// The workspace directory under a kfbox home.
pub fn workspace_dir(home: &Path) -> PathBuf {
    home.join("workspace")
}
