//! What a step's Python needs on this host: the managed environment's programs first on
//! `PATH`, and kfbox's scripts (the component runner, the warm worker) written beside the
//! environments.

use std::path::{Path, PathBuf};

const COMPONENT_RUNNER: &str = include_str!("../../../embedded/python/run_component.py");

/// `PATH` with `bin_dir` first (a managed environment's programs before the host's).
pub fn path_with(bin_dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![bin_dir.to_owned()];
    if let Some(existing) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&existing));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// Write kfbox's component runner into `dir` (unless it is there already, as it is); its path.
pub fn install_component_runner(dir: &Path) -> std::io::Result<PathBuf> {
    install_script(dir, "kfbox-run-component.py", COMPONENT_RUNNER)
}

/// Write one of kfbox's Python scripts into `dir` as `name`, unless it is there already; its
/// path. Written through a temporary file, so that a kfbox starting a step meanwhile reads the
/// old text or the new, never half of it.
pub(crate) fn install_script(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    if fs_err::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(path);
    }
    fs_err::create_dir_all(dir)?;
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    fs_err::write(&temporary, text)?;
    fs_err::rename(&temporary, &path)?;
    Ok(path)
}
