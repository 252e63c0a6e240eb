//! Python environments that kfbox manages under its data directory.
//!
//! One base environment holds the `kfp` SDK. A component with `packages_to_install` gets an
//! environment of its own per distinct requirement set, layered on the base one through a `.pth`
//! file, so it never reinstalls the SDK and a task whose requirements are met never runs pip.
//! Environments are built under a file lock and marked ready last, so concurrent kfbox processes
//! share one build and an interrupted build (kill -9) is detected and redone.
//!
//! Every package is installed from kfbox's own wheel cache (`<root>/wheels`): online, pip first
//! fills the cache (`pip wheel`, which also builds sdists once), then installs with no index; in
//! offline mode it installs from the cache and any wheelhouses given, never asking an index. So a
//! machine that has built an environment once can rebuild it without a network, and a
//! wheelhouse from `kfbox env bundle` sets up one that never had one.

mod lightweight;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use lightweight::{LightweightStep, Requirements};

/// The SDK installed into the base environment. Components pinned to another 2.x release run
/// with this one: the executor protocol is stable across 2.x.
pub const SDK_REQUIREMENT: &str = "kfp==2.17.0";

const READY_MARKER: &str = "kfbox-env.json";
/// The `.pth` file through which a layered environment sees its base environment's packages.
const BASE_LINK: &str = "kfbox-base.pth";

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("no Python interpreter found: `{0}` is not on PATH\nhint: install Python 3.9 or newer, or pass --python PATH (or set KFBOX_PYTHON)")]
    NoInterpreter(String),
    #[error("`{interpreter}` is not a usable Python 3.9+ interpreter: {reason}\nhint: pass --python PATH (or set KFBOX_PYTHON) to choose another")]
    BadInterpreter { interpreter: String, reason: String },
    #[error("creating the Python environment {dir} failed: {reason}")]
    Create { dir: PathBuf, reason: String },
    #[error("pip could not collect wheels for {packages}: {reason}{}", if *offline { "\nhint: offline, packages come only from kfbox's wheel cache and --wheels DIR; make a wheelhouse with `kfbox env bundle DIR` on a machine with a network" } else { "" })]
    Wheels {
        packages: String,
        reason: String,
        offline: bool,
    },
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PythonError + '_ {
    move |source| PythonError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A ready environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub dir: PathBuf,
    pub bin_dir: PathBuf,
    pub python: PathBuf,
}

/// What `kfbox env` shows about one environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvInfo {
    pub name: String,
    pub dir: PathBuf,
    pub requirements: Vec<String>,
    pub python_version: String,
    pub ready: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    requirements: Vec<String>,
    python_version: String,
}

/// The managed environments under one root directory.
#[derive(Debug, Clone)]
pub struct PythonEnvs {
    root: PathBuf,
    interpreter: String,
    /// `Some` in offline mode: the wheelhouses to install from besides the cache.
    offline: Option<Vec<PathBuf>>,
}

/// Progress messages for slow work (pip output lines).
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

impl PythonEnvs {
    /// `interpreter` is the Python used to create environments: a path or a name on PATH.
    pub fn new(root: PathBuf, interpreter: Option<String>) -> Self {
        Self {
            root,
            interpreter: interpreter.unwrap_or_else(|| "python3".into()),
            offline: None,
        }
    }

    /// Never ask a package index: install from the wheel cache and these wheelhouses only.
    pub fn offline(mut self, wheelhouses: Vec<PathBuf>) -> Self {
        self.offline = Some(wheelhouses);
        self
    }

    /// kfbox's wheel cache.
    pub fn wheel_cache(&self) -> PathBuf {
        self.root.join("wheels")
    }

    /// Where pip may find wheels without an index.
    fn find_links(&self) -> Vec<String> {
        std::iter::once(self.wheel_cache())
            .chain(self.offline.iter().flatten().cloned())
            .flat_map(|dir| ["--find-links".to_owned(), dir.display().to_string()])
            .collect()
    }

    /// Put wheels for `packages` and everything they need into `dir`: built from sdists where a
    /// package has no wheel, from the index unless offline.
    pub fn collect_wheels(
        &self,
        python: &Path,
        dir: &Path,
        packages: &[String],
        pip_options: &[String],
        progress: Progress,
    ) -> Result<(), PythonError> {
        fs_err::create_dir_all(dir).map_err(io(dir))?;
        progress(&format!("collecting wheels for {}", packages.join(" ")));
        let mut command = Command::new(python);
        command
            .args([
                "-m",
                "pip",
                "wheel",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--progress-bar", "off", "--wheel-dir"])
            .arg(dir)
            .args(self.find_links());
        if self.offline.is_some() {
            command.arg("--no-index");
        } else {
            command.args(pip_options);
        }
        run_logged(command.args(packages), progress).map_err(|reason| PythonError::Wheels {
            packages: packages.join(" "),
            reason,
            offline: self.offline.is_some(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn probe_interpreter(&self) -> Result<String, PythonError> {
        let output = Command::new(&self.interpreter)
            .args([
                "-c",
                "import sys; print('%d.%d.%d' % sys.version_info[:3]); import venv",
            ])
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    PythonError::NoInterpreter(self.interpreter.clone())
                }
                _ => PythonError::BadInterpreter {
                    interpreter: self.interpreter.clone(),
                    reason: e.to_string(),
                },
            })?;
        let bad = |reason: String| PythonError::BadInterpreter {
            interpreter: self.interpreter.clone(),
            reason,
        };
        if !output.status.success() {
            return Err(bad(String::from_utf8_lossy(&output.stderr)
                .trim()
                .to_owned()));
        }
        let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) < (3, 9) {
            return Err(bad(format!("version {version} is older than 3.9")));
        }
        Ok(version)
    }

    fn env_paths(dir: &Path) -> Env {
        Env {
            dir: dir.to_owned(),
            bin_dir: dir.join("bin"),
            python: dir.join("bin").join("python"),
        }
    }

    /// Where the interpreter lives, found without running it (PATH lookup): starting Python
    /// through a version-manager shim costs more than a whole small step.
    fn interpreter_identity(&self) -> String {
        find_program(&self.interpreter)
            .map_or_else(|| self.interpreter.clone(), |p| p.display().to_string())
    }

    fn short_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
            hasher.update([0]);
        }
        hasher
            .finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The environment with only the SDK, created on first use.
    pub fn base(&self, progress: Progress) -> Result<Env, PythonError> {
        let identity = self.interpreter_identity();
        let name = format!(
            "base-{}-{}",
            SDK_REQUIREMENT.replace("==", "-"),
            Self::short_hash([identity.as_str()])
        );
        self.ensure(&name, &[SDK_REQUIREMENT.to_owned()], &[], None, progress)
    }

    /// The environment for a component's extra requirements (the base one when there are none).
    pub fn for_requirements(
        &self,
        requirements: &Requirements,
        progress: Progress,
    ) -> Result<Env, PythonError> {
        let base = self.base(progress)?;
        if requirements.packages.is_empty() {
            return Ok(base);
        }
        // The real path: homes that share one environments directory through a link share
        // these environments too.
        let base_dir = fs_err::canonicalize(&base.dir)
            .unwrap_or_else(|_| base.dir.clone())
            .display()
            .to_string();
        let parts = std::iter::once(base_dir.as_str()).chain(
            requirements
                .packages
                .iter()
                .chain(&requirements.pip_options)
                .map(String::as_str),
        );
        let name = format!("req-{}", Self::short_hash(parts));
        self.ensure(
            &name,
            &requirements.packages,
            &requirements.pip_options,
            Some(&base),
            progress,
        )
    }

    fn ensure(
        &self,
        name: &str,
        packages: &[String],
        pip_options: &[String],
        layered_on: Option<&Env>,
        progress: Progress,
    ) -> Result<Env, PythonError> {
        let envs = self.root.join("envs");
        let dir = envs.join(name);
        if is_ready(&dir) {
            return Ok(Self::env_paths(&dir));
        }
        fs_err::create_dir_all(&envs).map_err(io(&envs))?;
        let lock_path = envs.join(format!("{name}.lock"));
        let lock = fs_err::File::create(&lock_path).map_err(io(&lock_path))?;
        lock.file().lock().map_err(io(&lock_path))?;
        // Another process may have finished it while we waited for the lock.
        if is_ready(&dir) {
            return Ok(Self::env_paths(&dir));
        }
        // No marker means a build was interrupted, a dangling base link that its base is gone:
        // start over.
        if dir.exists() {
            fs_err::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        let python_version = self.probe_interpreter()?;
        progress(&format!("creating Python environment {name}"));
        let failed = |reason: String| PythonError::Create {
            dir: dir.clone(),
            reason,
        };
        run_logged(
            Command::new(&self.interpreter)
                .args(["-m", "venv"])
                .arg(&dir),
            progress,
        )
        .map_err(failed)?;
        let staged = Self::env_paths(&dir);
        if let Some(base) = layered_on {
            let site = site_packages(&staged.python).map_err(failed)?;
            // The real path: the base may have been reached through a link that goes away (a
            // home whose environments directory is linked from elsewhere).
            let base_site = site_packages(&base.python).map_err(failed)?;
            let base_site = fs_err::canonicalize(&base_site).unwrap_or(base_site);
            let pth = site.join(BASE_LINK);
            fs_err::write(&pth, format!("{}\n", base_site.display())).map_err(io(&pth))?;
        }
        if self.offline.is_none() {
            self.collect_wheels(
                &staged.python,
                &self.wheel_cache(),
                packages,
                pip_options,
                progress,
            )?;
        }
        progress(&format!("installing {}", packages.join(" ")));
        run_logged(
            Command::new(&staged.python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--progress-bar",
                    "off",
                    "--no-index",
                ])
                .args(self.find_links())
                .args(packages),
            progress,
        )
        .map_err(|reason| match self.offline {
            Some(_) => PythonError::Wheels {
                packages: packages.join(" "),
                reason,
                offline: true,
            },
            None => failed(reason),
        })?;
        let marker = Marker {
            requirements: packages.to_vec(),
            python_version,
        };
        let marker_path = dir.join(READY_MARKER);
        fs_err::write(
            &marker_path,
            serde_json::to_string_pretty(&marker).expect("marker serializes"),
        )
        .map_err(io(&marker_path))?;
        progress(&format!("Python environment {name} ready"));
        Ok(Self::env_paths(&dir))
    }

    pub fn list(&self) -> Result<Vec<EnvInfo>, PythonError> {
        let envs = self.root.join("envs");
        let mut out = Vec::new();
        let Ok(entries) = fs_err::read_dir(&envs) else {
            return Ok(out);
        };
        for entry in entries {
            let entry = entry.map_err(io(&envs))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let marker: Option<Marker> = fs_err::read_to_string(path.join(READY_MARKER))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok());
            out.push(EnvInfo {
                name,
                ready: marker.is_some()
                    && path.join("bin").join("python").exists()
                    && base_link_intact(&path),
                requirements: marker
                    .as_ref()
                    .map(|m| m.requirements.clone())
                    .unwrap_or_default(),
                python_version: marker.map(|m| m.python_version).unwrap_or_default(),
                dir: path,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Remove environments that are incomplete or whose interpreter no longer starts, so that
    /// the next use rebuilds them. Returns what was removed.
    pub fn repair(&self) -> Result<Vec<String>, PythonError> {
        let mut removed = Vec::new();
        for env in self.list()? {
            let healthy = env.ready
                && Command::new(env.dir.join("bin").join("python"))
                    .args(["-c", "import kfp.dsl"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if !healthy {
                fs_err::remove_dir_all(&env.dir).map_err(io(&env.dir))?;
                removed.push(env.name);
            }
        }
        Ok(removed)
    }
}

/// Whether an environment was completed and, when layered, still reaches its base.
fn is_ready(dir: &Path) -> bool {
    dir.join(READY_MARKER).exists() && base_link_intact(dir)
}

/// A layered environment's link names a directory that exists (true for an unlayered one).
/// Found without starting Python: `lib/pythonX.Y/site-packages/kfbox-base.pth`.
fn base_link_intact(dir: &Path) -> bool {
    let Ok(versions) = std::fs::read_dir(dir.join("lib")) else {
        return true;
    };
    versions.filter_map(Result::ok).all(|version| {
        match std::fs::read_to_string(version.path().join("site-packages").join(BASE_LINK)) {
            Ok(text) => Path::new(text.trim()).is_dir(),
            Err(_) => true,
        }
    })
}

/// Find a program the way a shell would: a path as it is, a bare name on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

fn site_packages(python: &Path) -> Result<PathBuf, String> {
    let output = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// Run a command, passing each output line to `progress`; on failure return its last lines.
fn run_logged(command: &mut Command, progress: Progress) -> Result<(), String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {command:?}: {e}"))?;
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        progress(line.trim());
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let errors = errors.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let tail: Vec<String> = errors.iter().rev().take(12).rev().cloned().collect();
        Err(format!("{status}\n{}", tail.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layered_environment_whose_base_is_gone_is_not_ready() {
        let root = tempfile::tempdir().unwrap();
        let env = root.path().join("req-1");
        let site = env.join("lib/python3.11/site-packages");
        fs_err::create_dir_all(&site).unwrap();
        fs_err::write(env.join(READY_MARKER), "{}").unwrap();
        let base = root.path().join("base-site");
        fs_err::write(site.join(BASE_LINK), format!("{}\n", base.display())).unwrap();
        assert!(!is_ready(&env), "the base's site-packages does not exist");
        fs_err::create_dir_all(&base).unwrap();
        assert!(is_ready(&env));
        // An environment without a link (the base itself) needs none.
        fs_err::remove_file(site.join(BASE_LINK)).unwrap();
        assert!(is_ready(&env));
    }
}
