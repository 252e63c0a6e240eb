//! uv itself for the environments: fetched once per home, its commands configured (cache,
//! certificates, index, offline), and wheelhouses collected for machines without a network.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::envs::{lock, PythonEnvs};
use crate::error::{io, PythonError};
use crate::installer::{self, UV_VERSION};
use crate::lightweight::Requirements;
use crate::progress::{Progress, Update};

impl PythonEnvs {
    /// uv, fetched on first use (under a lock: concurrent kfbox processes fetch it once).
    pub fn installer(&self, progress: Progress) -> Result<PathBuf, PythonError> {
        let dir = self.root.join("uv").join(UV_VERSION);
        let uv = dir.join("uv");
        if uv.is_file() {
            return Ok(uv);
        }
        fs_err::create_dir_all(&dir).map_err(io(&dir))?;
        let _lock = lock(&dir.join("fetch.lock"))?;
        if uv.is_file() {
            return Ok(uv);
        }
        let python = self.interpreter_path()?;
        let label = format!("kfbox's package installer (uv {UV_VERSION})");
        progress(Update::Step {
            env: &label,
            message: "downloading",
        });
        let started = Instant::now();
        let log = self.fresh_log("uv")?;
        installer::fetch_uv(
            &python,
            &uv,
            &self.wheel_cache(),
            self.offline.as_deref(),
            &log,
            &mut |done, total| {
                progress(Update::Packages {
                    env: &label,
                    done: usize::from(done == total),
                    total: 1,
                    bytes: done,
                })
            },
        )
        .map_err(|reason| PythonError::Installer {
            reason,
            log: log.clone(),
            offline: self.offline.is_some(),
        })?;
        progress(Update::Ready {
            env: &label,
            seconds: started.elapsed().as_secs(),
        });
        Ok(uv)
    }

    /// The uv wheel fetched for this machine, for a wheelhouse.
    pub fn installer_wheel(&self) -> Option<PathBuf> {
        let prefix = format!("uv-{UV_VERSION}-");
        let dirs =
            std::iter::once(self.wheel_cache()).chain(self.offline.iter().flatten().cloned());
        dirs.filter_map(|dir| fs_err::read_dir(dir).ok())
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
            })
    }

    /// A uv command with kfbox's cache and the system's certificates (a proxy that inspects
    /// TLS, as in many companies, is trusted there, as pip on Debian trusts it).
    pub(crate) fn uv(&self, uv: &Path, subcommand: &[&str]) -> Command {
        let mut command = Command::new(uv);
        command
            .args(subcommand)
            .args(["--system-certs", "--no-progress", "--color", "never"])
            .env("UV_CACHE_DIR", self.uv_cache())
            // Environments use the interpreter the user chose, never one uv downloads.
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env_remove("VIRTUAL_ENV")
            .env_remove("CONDA_PREFIX");
        // A mirror configured for pip alone (a company's, a workshop's) serves uv too.
        let uv_index_set = ["UV_DEFAULT_INDEX", "UV_INDEX_URL"]
            .iter()
            .any(|var| std::env::var_os(var).is_some());
        if let (false, Some(url)) = (uv_index_set, std::env::var_os("PIP_INDEX_URL")) {
            command.env("UV_DEFAULT_INDEX", url);
        }
        if let Some(wheelhouses) = &self.offline {
            command.arg("--offline");
            for dir in wheelhouses {
                command.arg("--find-links").arg(dir);
            }
        }
        command
    }

    /// Put wheels for `packages` and everything they need into `dir` (built from source where a
    /// package has no wheel), for `kfbox env bundle` and the runtime image. uv installs but
    /// writes no wheelhouse, so this is pip's `wheel` command, run by a current pip in an
    /// environment of its own.
    pub fn collect_wheels(
        &self,
        dir: &Path,
        packages: &[String],
        progress: Progress,
    ) -> Result<(), PythonError> {
        let tool = self.ensure(
            "tool-pip",
            "Python environment with pip",
            &Requirements::default(),
            None,
            progress,
        )?;
        fs_err::create_dir_all(dir).map_err(io(dir))?;
        let label = packages.join(" ");
        progress(Update::Step {
            env: &label,
            message: "collecting wheels",
        });
        let log = self.fresh_log("wheels")?;
        let mut command = Command::new(&tool.python);
        command
            .args([
                "-m",
                "pip",
                "wheel",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--progress-bar", "off", "--wheel-dir"])
            .arg(dir);
        if let Some(wheelhouses) = &self.offline {
            command.arg("--no-index");
            for wheelhouse in wheelhouses {
                command.arg("--find-links").arg(wheelhouse);
            }
        }
        installer::run_logged(command.args(packages), &log, &mut |_| {}).map_err(|reason| {
            PythonError::Install {
                packages: label.clone(),
                reason,
                log: log.clone(),
                offline: self.offline.is_some(),
            }
        })
    }
}
