//! `kfbox.toml`: settings that outlive one command line.
//!
//! ```toml
//! [executor]
//! default = "auto"                 # auto | process | docker
//! [[executor.images]]              # first match wins; `*` matches any run of characters
//! pattern = "ghcr.io/acme/*"
//! executor = "docker"
//!
//! [gpu]
//! policy = "prefer"                # require | prefer | ignore
//! share = false                    # true: steps share GPUs instead of waiting for free ones
//!
//! [wasi]
//! memory = "256Mi"                 # per module, unless the component sets a memory limit
//! time_limit = "10m"               # wall clock per module run: s, m or h
//!
//! [server]
//! listen = "127.0.0.1:8888"        # `kfbox up`'s address; beyond loopback it needs a token
//! allowed_hosts = ["kfbox.lan"]    # names browsers may use besides localhost (a proxy's)
//! allowed_origins = ["https://notebooks.lan"]  # other pages that may start runs
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use kfbox_cli::{ExecutorKind, GpuChoice};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub executor: ExecutorConfig,
    pub gpu: GpuConfig,
    pub wasi: WasiConfig,
    pub server: ServerConfig,
    pub cluster: ClusterConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Capabilities the k3s node runs without: when set, the node gets every other capability
    /// instead of `--privileged` (for hosts where `--privileged` fails, e.g. `["SYS_RESOURCE"]`).
    pub drop_capabilities: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: Option<String>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    pub default: Option<ExecutorKind>,
    pub images: Vec<ImageRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRule {
    pub pattern: String,
    pub executor: ExecutorKind,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuConfig {
    pub policy: Option<GpuChoice>,
    pub share: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasiConfig {
    pub memory: Option<String>,
    pub time_limit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Read `path`; a missing file is an empty configuration unless it was asked for by name.
    pub fn load(path: &Path, named: bool) -> Result<Self, ConfigError> {
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => {
                return Ok(Self::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let config: Config = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        config.wasi_limits().map_err(invalid)?;
        Ok(config)
    }

    /// The executor for `image` by the file's rules, if one matches, else its default.
    pub fn executor_for(&self, image: &str) -> Option<ExecutorKind> {
        self.executor
            .images
            .iter()
            .find(|rule| wildcard_match(&rule.pattern, image))
            .map(|rule| rule.executor)
            .or(self.executor.default)
    }

    pub fn wasi_limits(&self) -> Result<kfbox_wasi::WasiLimits, String> {
        let mut limits = kfbox_wasi::WasiLimits::default();
        if let Some(memory) = &self.wasi.memory {
            limits.memory_bytes = kfbox_resources::parse_quantity(memory).ok_or_else(|| {
                format!("wasi.memory `{memory}` is not a size (e.g. `256Mi`, `1G`)")
            })? as u64;
        }
        if let Some(limit) = &self.wasi.time_limit {
            limits.time_limit = parse_duration(limit).ok_or_else(|| {
                format!("wasi.time_limit `{limit}` is not a duration (e.g. `30s`, `10m`, `1h`)")
            })?;
        }
        Ok(limits)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))?;
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0).then(|| Duration::from_secs_f64(value * scale))
}

/// `*` matches any run of characters (including `/` and `:`); everything else literally.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_images() {
        assert!(wildcard_match("python:*", "python:3.11"));
        assert!(wildcard_match(
            "ghcr.io/*/trainer:*",
            "ghcr.io/acme/trainer:v2"
        ));
        assert!(!wildcard_match(
            "ghcr.io/*/trainer:*",
            "ghcr.io/acme/eval:v2"
        ));
        assert!(wildcard_match("alpine", "alpine"));
        assert!(!wildcard_match("alpine", "alpine:3"));
        assert!(wildcard_match("*", "anything"));
    }

    #[test]
    fn the_file_decides_per_image_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kfbox.toml");
        fs_err::write(
            &path,
            "[executor]\ndefault = \"process\"\n[[executor.images]]\npattern = \"ghcr.io/*\"\nexecutor = \"docker\"\n[wasi]\nmemory = \"64Mi\"\ntime_limit = \"2s\"\n",
        )
        .unwrap();
        let config = Config::load(&path, true).unwrap();
        assert_eq!(
            config.executor_for("ghcr.io/acme/x:1"),
            Some(ExecutorKind::Docker)
        );
        assert_eq!(
            config.executor_for("python:3.11"),
            Some(ExecutorKind::Process)
        );
        let limits = config.wasi_limits().unwrap();
        assert_eq!(limits.memory_bytes, 64 * 1024 * 1024);
        assert_eq!(limits.time_limit, Duration::from_secs(2));

        fs_err::write(&path, "[executor]\ndefualt = \"docker\"\n").unwrap();
        let error = Config::load(&path, true).unwrap_err().to_string();
        assert!(
            error.contains("defualt") && error.contains("kfbox.toml"),
            "{error}"
        );
        fs_err::write(&path, "[wasi]\ntime_limit = \"soon\"\n").unwrap();
        let error = Config::load(&path, true).unwrap_err().to_string();
        assert!(error.contains("`soon`"), "{error}");
        assert!(Config::load(&dir.path().join("absent.toml"), false).is_ok());
        assert!(Config::load(&dir.path().join("absent.toml"), true).is_err());
    }
}
