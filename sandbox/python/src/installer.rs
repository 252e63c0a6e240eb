//! The package installer every environment is built with: uv, from its wheel on PyPI.
//!
//! uv is fetched once per kfbox home by a standard-library-only Python script (so neither pip nor
//! Debian's `python3-venv` is needed), kept under `<root>/uv/<version>/uv`, and its wheel kept in
//! `<root>/wheels` so that `kfbox env bundle` can carry it to an offline machine. Everything it
//! runs writes its whole output to a log file; callers get the last lines on failure.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The uv release kfbox installs with; its wheel's name starts `uv-<version>-`.
pub const UV_VERSION: &str = "0.13.9";

const FETCH_SCRIPT: &str = include_str!("../../../embedded/python/fetch_uv.py");

/// How many of the installer's last lines an error shows.
const ERROR_LINES: usize = 15;

/// Run `command` with stdout and stderr both appended to `log` (and each line passed to
/// `on_line`). On failure, the exit status and the last lines.
pub fn run_logged(
    command: &mut Command,
    log: &Path,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), String> {
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| e.to_string())?;
    let _ = writeln!(file, "$ {}", shown_command(command));
    let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let writer_for_stderr = writer.try_clone().map_err(|e| e.to_string())?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", shown_command(command)))?;
    // The command holds the pipe's writing ends: release them so that reading ends with the
    // child.
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut tail = std::collections::VecDeque::with_capacity(ERROR_LINES);
    for line in BufReader::new(reader).lines().map_while(Result::ok) {
        let _ = writeln!(file, "{line}");
        on_line(&line);
        if tail.len() == ERROR_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let _ = writeln!(file, "({status})");
    if status.success() {
        Ok(())
    } else {
        let lines: Vec<String> = tail.into_iter().collect();
        Err(format!("{status}\n{}", lines.join("\n")))
    }
}

fn shown_command(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| word.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fetch uv into `destination` with `python` (the user's interpreter) unless it is there.
/// `on_bytes(done, total)` follows a download.
pub fn fetch_uv(
    python: &Path,
    destination: &Path,
    download_dir: &Path,
    offline: Option<&[PathBuf]>,
    log: &Path,
    on_bytes: &mut dyn FnMut(u64, u64),
) -> Result<(), String> {
    let mut command = Command::new(python);
    command
        .args(["-I", "-c", FETCH_SCRIPT, UV_VERSION])
        .arg(destination)
        .arg(download_dir);
    if let Some(wheelhouses) = offline {
        command.arg("--offline");
        for dir in wheelhouses {
            command.arg("--wheels").arg(dir);
        }
    }
    run_logged(&mut command, log, &mut |line| {
        let mut words = line.split(' ');
        if words.next() == Some("bytes") {
            let mut number = || words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            let (done, total) = (number(), number());
            on_bytes(done, total);
        }
    })
}

/// Counts what uv adds to its cache while it installs: each downloaded (or built) package is
/// unpacked into a directory of `archive-v0` that appears whole (uv renames it into place), so
/// new entries are packages done and their sizes the bytes unpacked.
pub struct CacheWatch {
    archive: PathBuf,
    before: HashSet<std::ffi::OsString>,
}

impl CacheWatch {
    pub fn new(cache: &Path) -> Self {
        let archive = cache.join("archive-v0");
        let before = entries(&archive);
        Self { archive, before }
    }

    /// Poll until `stop` is set, calling `report(done, bytes)` whenever something was added.
    pub fn follow(&self, stop: &AtomicBool, report: &mut dyn FnMut(usize, u64)) {
        let mut counted = HashSet::new();
        let mut bytes = 0;
        loop {
            let finished = stop.load(Ordering::Acquire);
            let mut grew = false;
            for name in entries(&self.archive) {
                if !self.before.contains(&name) && counted.insert(name.clone()) {
                    bytes += tree_size(&self.archive.join(&name));
                    grew = true;
                }
            }
            if grew {
                report(counted.len(), bytes);
            }
            if finished {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn entries(dir: &Path) -> HashSet<std::ffi::OsString> {
    fs_err::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .filter(|name| !name.to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs_err::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| tree_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// "Would download 79 packages" from `uv pip install --dry-run`: how many packages an install
/// will fetch (0 when everything is cached).
pub fn would_download(line: &str) -> Option<usize> {
    let rest = line.trim().strip_prefix("Would download ")?;
    rest.split(' ').next()?.parse().ok()
}

/// pip's index options as a component gives them, in uv's words (`--trusted-host` is pip's
/// name for uv's `--allow-insecure-host`).
pub(crate) fn uv_index_options(pip_options: &[String]) -> Vec<String> {
    pip_options
        .iter()
        .map(|word| match word.as_str() {
            "--trusted-host" => "--allow-insecure-host".to_owned(),
            _ => word.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_count_is_read_from_a_dry_run() {
        assert_eq!(would_download("Would download 79 packages"), Some(79));
        assert_eq!(would_download("Would download 1 package"), Some(1));
        assert_eq!(would_download("Would install 91 packages"), None);
        assert_eq!(would_download(" + anyio==4.16.0"), None);
    }

    #[test]
    fn a_failing_command_reports_its_last_lines_and_logs_all() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let mut seen = Vec::new();
        let failed = run_logged(
            Command::new("sh").args([
                "-c",
                "for i in $(seq 40); do echo out $i; done; echo err >&2; exit 3",
            ]),
            &log,
            &mut |line| seen.push(line.to_owned()),
        )
        .unwrap_err();
        assert!(failed.contains("exit status: 3"), "{}", failed);
        assert!(failed.contains("err"), "{}", failed);
        assert!(!failed.contains("out 20\n"), "{}", failed);
        assert_eq!(seen.len(), 41);
        let logged = fs_err::read_to_string(&log).unwrap();
        assert!(logged.contains("out 1\n") && logged.contains("err\n"));
    }

    #[test]
    fn the_cache_watch_counts_new_archive_entries() {
        let cache = tempfile::tempdir().unwrap();
        let archive = cache.path().join("archive-v0");
        fs_err::create_dir_all(archive.join("old")).unwrap();
        let watch = CacheWatch::new(cache.path());
        fs_err::create_dir_all(archive.join("new/pkg")).unwrap();
        fs_err::write(archive.join("new/pkg/a.py"), "x".repeat(1000)).unwrap();
        fs_err::create_dir_all(archive.join(".tmp123")).unwrap();
        let stop = AtomicBool::new(true);
        let mut reports = Vec::new();
        watch.follow(&stop, &mut |done, bytes| reports.push((done, bytes)));
        assert_eq!(reports, vec![(1, 1000)]);
    }
}
