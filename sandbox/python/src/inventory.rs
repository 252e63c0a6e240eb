//! The environments a home holds: listed, and half-built or broken ones removed.

use std::process::{Command, Stdio};

use crate::envs::{base_link_intact, EnvInfo, Marker, PythonEnvs, READY_MARKER};
use crate::error::{io, PythonError};

impl PythonEnvs {
    pub fn list(&self) -> Result<Vec<EnvInfo>, PythonError> {
        let envs = self.root.join("envs");
        let mut out = Vec::new();
        let Ok(entries) = fs_err::read_dir(&envs) else {
            return Ok(out);
        };
        for entry in entries {
            let entry = entry.map_err(io(&envs))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !path.is_dir() || name.starts_with('.') {
                continue;
            }
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
            // Every environment but pip's own sees the SDK (directly or through its base).
            let probe = if env.requirements.is_empty() {
                "import pip"
            } else {
                "import kfp.dsl"
            };
            let healthy = env.ready
                && Command::new(env.dir.join("bin").join("python"))
                    .args(["-c", probe])
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
