//! What can go wrong making or using an environment.

use std::path::{Path, PathBuf};

use crate::installer::UV_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("no Python interpreter found: `{0}` is not on PATH\nhint: install Python 3.9 or newer (on Debian and Ubuntu: `sudo apt-get install python3`), or pass --python PATH (or set KFBOX_PYTHON)")]
    NoInterpreter(String),
    #[error("`{interpreter}` is not a usable Python 3.9+ interpreter: {reason}\nhint: pass --python PATH (or set KFBOX_PYTHON) to choose another")]
    BadInterpreter { interpreter: String, reason: String },
    #[error("cannot fetch kfbox's package installer (uv {UV_VERSION}): {reason}\nthe whole output is in {}{}", log.display(), if *offline { "\nhint: offline, uv's wheel must be in a wheelhouse given with --wheels DIR; `kfbox env bundle DIR` on a machine with a network puts it there" } else { "\nhint: kfbox downloads it from the package index (PyPI, or UV_DEFAULT_INDEX / PIP_INDEX_URL); check the network or proxy settings (https_proxy)" })]
    Installer {
        reason: String,
        log: PathBuf,
        offline: bool,
    },
    #[error("creating the Python environment for {label} in {} failed: {reason}\nthe whole output is in {}", dir.display(), log.display())]
    Create {
        label: String,
        dir: PathBuf,
        reason: String,
        log: PathBuf,
    },
    #[error("installing {packages} failed: {reason}\nthe whole output is in {}{}", log.display(), if *offline { "\nhint: offline, packages come only from what kfbox installed before and from --wheels DIR; make a wheelhouse with `kfbox env bundle DIR` on a machine with a network" } else { "" })]
    Install {
        packages: String,
        reason: String,
        log: PathBuf,
        offline: bool,
    },
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PythonError {
    /// The installer's log that holds the whole story, when there is one.
    pub fn log(&self) -> Option<&Path> {
        match self {
            PythonError::Installer { log, .. }
            | PythonError::Create { log, .. }
            | PythonError::Install { log, .. } => Some(log),
            _ => None,
        }
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PythonError + '_ {
    move |source| PythonError::Io {
        path: path.to_owned(),
        source,
    }
}
