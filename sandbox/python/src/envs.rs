//! Python environments that kfbox manages under its data directory.
//!
//! One base environment holds the `kfp` SDK. A component with `packages_to_install` gets an
//! environment of its own per distinct requirement set, layered on the base one through a `.pth`
//! file, so it never reinstalls the SDK and a task whose requirements are met never installs
//! anything. Environments are built under a file lock and marked ready last, so concurrent kfbox
//! processes share one build and an interrupted build (kill -9) is detected and redone.
//!
//! Environments are made and filled by uv (see `installer`), with whatever Python the user has
//! (a distribution's, python.org's, pyenv's, conda's): uv needs neither pip nor `venv` from it,
//! builds source-only packages with current build tools, and fetches in parallel. Its cache
//! (`<root>/uv-cache`) is what makes an environment built once rebuildable offline; wheelhouses
//! from `kfbox env bundle` set up a machine that never had a network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{io, PythonError};
use crate::installer;
use crate::installer::uv_index_options;
use crate::lightweight::Requirements;
use crate::progress::{Progress, Update};

/// The SDK installed into the base environment. Components pinned to another 2.x release run
/// with this one: the executor protocol is stable across 2.x.
pub const SDK_REQUIREMENT: &str = "kfp==2.17.0";

/// What every environment gets besides its requirements (`uv venv --seed`), so that `pip`
/// works in the lab and in steps as it does in a `python` image; offline they must be in a
/// wheelhouse, so `kfbox env bundle` carries them.
pub const SEED_PACKAGES: &[&str] = &["pip", "setuptools", "wheel"];

pub(crate) const READY_MARKER: &str = "kfbox-env.json";

/// The `.pth` file through which a layered environment sees its base environment's packages.
pub(crate) const BASE_LINK: &str = "kfbox-base.pth";

/// A `.pth` file Python runs at start-up in every environment: `kfp.Client()` warns on every
/// call that it needs a v2 backend (a `FutureWarning` box in every notebook), which kfbox's
/// server is; other warnings stay.
pub(crate) const QUIET_PTH: &str = "kfbox-warnings.pth";

pub(crate) const QUIET_PTH_TEXT: &str = "import warnings; warnings.filterwarnings('ignore', message='This client only works with Kubeflow Pipeline v2', category=FutureWarning)\n";

/// What the base environment is called in progress and errors.
pub(crate) const BASE_LABEL: &str = "Python environment with the kfp SDK";

/// A ready environment.
#[derive(Debug, Clone)]
pub struct Env {
    pub dir: PathBuf,
    pub bin_dir: PathBuf,
    pub python: PathBuf,
}

/// What `kfbox env` shows about one environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvInfo {
    pub name: String,
    pub dir: PathBuf,
    pub requirements: Vec<String>,
    pub python_version: String,
    pub ready: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Marker {
    pub(crate) requirements: Vec<String>,
    pub(crate) python_version: String,
}

/// The managed environments under one root directory.
#[derive(Debug, Clone)]
pub struct PythonEnvs {
    pub(crate) root: PathBuf,
    pub(crate) interpreter: String,
    /// `Some` in offline mode: the wheelhouses to install from besides uv's cache.
    pub(crate) offline: Option<Vec<PathBuf>>,
}

/// An exclusive lock held until the returned file is dropped.
pub(crate) fn lock(path: &Path) -> Result<fs_err::File, PythonError> {
    let file = fs_err::File::create(path).map_err(io(path))?;
    file.file().lock().map_err(io(path))?;
    Ok(file)
}

/// Whether an environment was completed and, when layered, still reaches its base.
pub(crate) fn is_ready(dir: &Path) -> bool {
    dir.join(READY_MARKER).exists() && base_link_intact(dir)
}

/// A layered environment's link names a directory that exists (true for an unlayered one).
/// Found without starting Python: `lib/pythonX.Y/site-packages/kfbox-base.pth`.
pub(crate) fn base_link_intact(dir: &Path) -> bool {
    let Ok(versions) = fs_err::read_dir(dir.join("lib")) else {
        return true;
    };
    versions.filter_map(Result::ok).all(|version| {
        match fs_err::read_to_string(version.path().join("site-packages").join(BASE_LINK)) {
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

pub(crate) fn site_packages(python: &Path) -> Result<PathBuf, String> {
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

impl PythonEnvs {
    /// `interpreter` is the Python environments are made with: a path or a name on PATH.
    pub fn new(root: PathBuf, interpreter: Option<String>) -> Self {
        Self {
            root,
            interpreter: interpreter.unwrap_or_else(|| "python3".into()),
            offline: None,
        }
    }

    /// Never ask a package index: install from uv's cache and these wheelhouses only.
    pub fn offline(mut self, wheelhouses: Vec<PathBuf>) -> Self {
        self.offline = Some(wheelhouses);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// In offline mode, the wheelhouses given besides uv's cache; `None` online.
    pub fn offline_wheelhouses(&self) -> Option<&[PathBuf]> {
        self.offline.as_deref()
    }

    /// Where kfbox keeps the wheels it downloads itself (uv's, which `kfbox env bundle`
    /// carries to offline machines).
    pub(crate) fn wheel_cache(&self) -> PathBuf {
        self.root.join("wheels")
    }

    pub(crate) fn uv_cache(&self) -> PathBuf {
        self.root.join("uv-cache")
    }

    /// The installer's output for one environment (or for fetching uv itself).
    pub(crate) fn log_path(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    pub(crate) fn fresh_log(&self, name: &str) -> Result<PathBuf, PythonError> {
        let log = self.log_path(name);
        let dir = log.parent().expect("logs have a directory");
        fs_err::create_dir_all(dir).map_err(io(dir))?;
        fs_err::write(&log, "").map_err(io(&log))?;
        Ok(log)
    }

    /// The interpreter's path, found without running it (PATH lookup).
    pub(crate) fn interpreter_path(&self) -> Result<PathBuf, PythonError> {
        find_program(&self.interpreter).ok_or_else(|| {
            if self.interpreter.contains('/') {
                PythonError::BadInterpreter {
                    interpreter: self.interpreter.clone(),
                    reason: "no such file".into(),
                }
            } else {
                PythonError::NoInterpreter(self.interpreter.clone())
            }
        })
    }

    pub(crate) fn probe_interpreter(&self) -> Result<String, PythonError> {
        let python = self.interpreter_path()?;
        let bad = |reason: String| PythonError::BadInterpreter {
            interpreter: self.interpreter.clone(),
            reason,
        };
        let output = Command::new(&python)
            .args([
                "-I",
                "-c",
                "import sys; print('%d.%d.%d' % sys.version_info[:3])",
            ])
            .output()
            .map_err(|e| bad(e.to_string()))?;
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

    /// Check that an environment can be made with the chosen Python: the interpreter answers,
    /// the installer is there (fetched if need be) and makes a throwaway environment with it.
    /// Returns the Python version.
    pub fn check(&self, progress: Progress) -> Result<String, PythonError> {
        let version = self.probe_interpreter()?;
        let uv = self.installer(progress)?;
        let scratch = self.root.join("envs").join(".doctor");
        if scratch.exists() {
            fs_err::remove_dir_all(&scratch).map_err(io(&scratch))?;
        }
        let log = self.fresh_log("doctor")?;
        let made = installer::run_logged(
            self.uv(&uv, &["venv", "--quiet"])
                .arg("--python")
                .arg(self.interpreter_path()?)
                .arg(&scratch),
            &log,
            &mut |_| {},
        );
        let _ = fs_err::remove_dir_all(&scratch);
        made.map_err(|reason| PythonError::Create {
            label: "a test".into(),
            dir: scratch,
            reason,
            log,
        })?;
        Ok(version)
    }

    pub(crate) fn env_paths(dir: &Path) -> Env {
        Env {
            dir: dir.to_owned(),
            bin_dir: dir.join("bin"),
            python: dir.join("bin").join("python"),
        }
    }

    /// Where the interpreter lives, found without running it (PATH lookup): starting Python
    /// through a version-manager shim costs more than a whole small step.
    pub(crate) fn interpreter_identity(&self) -> String {
        find_program(&self.interpreter)
            .map_or_else(|| self.interpreter.clone(), |p| p.display().to_string())
    }

    pub(crate) fn short_hash<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
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
        let requirements = Requirements {
            packages: vec![SDK_REQUIREMENT.to_owned()],
            ..Requirements::default()
        };
        self.ensure(&name, BASE_LABEL, &requirements, None, progress)
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
        let excluded = requirements
            .excluded
            .iter()
            .map(|package| format!("excluded:{package}"));
        let parts: Vec<String> = std::iter::once(base_dir)
            .chain(requirements.packages.iter().cloned())
            .chain(requirements.pip_options.iter().cloned())
            .chain(excluded)
            .collect();
        let name = format!("req-{}", Self::short_hash(parts.iter().map(String::as_str)));
        self.ensure(
            &name,
            &format!(
                "Python environment with {}",
                requirements.packages.join(" ")
            ),
            requirements,
            Some(&base),
            progress,
        )
    }

    pub(crate) fn ensure(
        &self,
        name: &str,
        label: &str,
        requirements: &Requirements,
        layered_on: Option<&Env>,
        progress: Progress,
    ) -> Result<Env, PythonError> {
        let packages = &requirements.packages;
        let envs = self.root.join("envs");
        let dir = envs.join(name);
        if is_ready(&dir) {
            return Ok(Self::env_paths(&dir));
        }
        fs_err::create_dir_all(&envs).map_err(io(&envs))?;
        let _lock = lock(&envs.join(format!("{name}.lock")))?;
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
        let uv = self.installer(progress)?;
        let started = Instant::now();
        progress(Update::Step {
            env: label,
            message: "creating",
        });
        let log = self.fresh_log(name)?;
        let failed = |reason: String| PythonError::Create {
            label: label.to_owned(),
            dir: dir.clone(),
            reason,
            log: log.clone(),
        };
        installer::run_logged(
            self.uv(&uv, &["venv", "--seed"])
                .arg("--python")
                .arg(self.interpreter_path()?)
                .arg(&dir),
            &log,
            &mut |_| {},
        )
        .map_err(failed)?;
        let staged = Self::env_paths(&dir);
        let site = site_packages(&staged.python).map_err(failed)?;
        let quiet = site.join(QUIET_PTH);
        fs_err::write(&quiet, QUIET_PTH_TEXT).map_err(io(&quiet))?;
        if let Some(base) = layered_on {
            // The real path: the base may have been reached through a link that goes away (a
            // home whose environments directory is linked from elsewhere).
            let base_site = site_packages(&base.python).map_err(failed)?;
            let base_site = fs_err::canonicalize(&base_site).unwrap_or(base_site);
            let pth = site.join(BASE_LINK);
            fs_err::write(&pth, format!("{}\n", base_site.display())).map_err(io(&pth))?;
        }
        if !packages.is_empty() {
            self.install(&uv, &staged, label, requirements, &log, progress)?;
        }
        let marker = Marker {
            requirements: packages.clone(),
            python_version,
        };
        let marker_path = dir.join(READY_MARKER);
        fs_err::write(
            &marker_path,
            serde_json::to_string_pretty(&marker).expect("marker serializes"),
        )
        .map_err(io(&marker_path))?;
        progress(Update::Ready {
            env: label,
            seconds: started.elapsed().as_secs(),
        });
        Ok(Self::env_paths(&dir))
    }

    /// Resolve (a dry run says how many packages must be fetched), then install while counting
    /// what arrives in uv's cache.
    pub(crate) fn install(
        &self,
        uv: &Path,
        env: &Env,
        label: &str,
        requirements: &Requirements,
        log: &Path,
        progress: Progress,
    ) -> Result<(), PythonError> {
        let packages = &requirements.packages;
        let failed = |reason: String| PythonError::Install {
            packages: packages.join(" "),
            reason,
            log: log.to_owned(),
            offline: self.offline.is_some(),
        };
        let excludes = env.dir.join("kfbox-excluded.txt");
        if !requirements.excluded.is_empty() {
            let text: String = requirements
                .excluded
                .iter()
                .map(|p| format!("{p}\n"))
                .collect();
            fs_err::write(&excludes, text).map_err(io(&excludes))?;
        }
        let command = |extra: &[&str]| {
            let mut command = self.uv(uv, &["pip", "install"]);
            command
                .args(extra)
                .arg("--python")
                .arg(&env.python)
                .args(uv_index_options(&requirements.pip_options));
            if !requirements.excluded.is_empty() {
                command.arg("--excludes").arg(&excludes);
            }
            command.args(packages);
            command
        };
        progress(Update::Step {
            env: label,
            message: "resolving",
        });
        let mut total = 0;
        installer::run_logged(&mut command(&["--dry-run"]), log, &mut |line| {
            if let Some(n) = installer::would_download(line) {
                total = n;
            }
        })
        .map_err(failed)?;
        progress(Update::Packages {
            env: label,
            done: 0,
            total,
            bytes: 0,
        });
        let watch = installer::CacheWatch::new(&self.uv_cache());
        let finished = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                watch.follow(&finished, &mut |done, bytes| {
                    progress(Update::Packages {
                        env: label,
                        done: done.min(total),
                        total,
                        bytes,
                    })
                })
            });
            let installed = installer::run_logged(&mut command(&[]), log, &mut |_| {});
            finished.store(true, Ordering::Release);
            installed
        })
        .map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(crate) fn a_layered_environment_whose_base_is_gone_is_not_ready() {
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
