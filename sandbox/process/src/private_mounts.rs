//! A host process sees its pod's volumes at the mount paths the pipeline gives (`/data`),
//! as a container would, through a private mount namespace made by bubblewrap: the host's
//! file system as it is, with the volumes mounted over it for that process only. Nothing is
//! created on the host: where a mount path's parent does not exist, the directories above
//! it are rebuilt as tmpfs holding binds of their host entries, and the path is made there.

use std::path::{Component, Path, PathBuf};

use kfbox_step::{ExecutorError, VolumeMount};

/// More entries than this in a directory that must be rebuilt means a mount path in a
/// crowded place (`/tmp/x`); binding each one would make a huge command.
const MAX_REBUILT_ENTRIES: usize = 4096;

/// The program that makes the namespace; its Debian package is `bubblewrap`.
const BWRAP: &str = "bwrap";

/// Arguments for `bwrap` that run a program (given after them) in `work_dir` with `volumes`
/// mounted.
pub(crate) fn bwrap_args(
    volumes: &[VolumeMount],
    work_dir: &Path,
) -> Result<Vec<String>, ExecutorError> {
    let mut rebuilt: Vec<PathBuf> = Vec::new();
    for volume in volumes {
        // The nearest existing directory at or above the mount path: everything from the root
        // down to it is rebuilt, unless it is the mount path itself (then it is mounted over).
        let mut existing = volume.target.clone();
        while !existing.is_dir() {
            if !existing.pop() {
                break;
            }
        }
        if existing == volume.target {
            continue;
        }
        let mut ancestor = PathBuf::from("/");
        rebuilt.push(ancestor.clone());
        for component in existing.components().skip(1) {
            let Component::Normal(name) = component else {
                continue;
            };
            ancestor.push(name);
            if fs_err::symlink_metadata(&ancestor).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(ExecutorError::Unrunnable(format!(
                    "volume mount path {} goes through the symbolic link {}; choose a path without one",
                    volume.target.display(),
                    ancestor.display()
                )));
            }
            rebuilt.push(ancestor.clone());
        }
    }
    rebuilt.sort();
    rebuilt.dedup();
    let mut args: Vec<String> = Vec::new();
    let mut push = |words: &[&str]| args.extend(words.iter().map(|w| (*w).to_owned()));
    if rebuilt.is_empty() {
        push(&["--dev-bind", "/", "/"]);
    } else {
        rebuild(Path::new("/"), &rebuilt, volumes, &mut args)?;
    }
    let mut ordered: Vec<&VolumeMount> = volumes.iter().collect();
    // Outer mount paths first, so that a volume inside another is mounted over it.
    ordered.sort_by_key(|v| v.target.components().count());
    for volume in ordered {
        let kind = if volume.read_only {
            "--ro-bind"
        } else {
            "--bind"
        };
        args.extend([
            kind.to_owned(),
            volume.source.dir().display().to_string(),
            volume.target.display().to_string(),
        ]);
    }
    args.extend([
        "--die-with-parent".to_owned(),
        "--chdir".to_owned(),
        work_dir.display().to_string(),
        "--".to_owned(),
    ]);
    Ok(args)
}

/// `dir` as a tmpfs holding its host entries: binds of each (rebuilt again where a mount path
/// lies below), its symbolic links as links; mount paths themselves are left to the volumes.
fn rebuild(
    dir: &Path,
    rebuilt: &[PathBuf],
    volumes: &[VolumeMount],
    args: &mut Vec<String>,
) -> Result<(), ExecutorError> {
    let unreadable = |e: std::io::Error| {
        ExecutorError::Unrunnable(format!(
            "cannot list {} to mount volumes below it: {e}",
            dir.display()
        ))
    };
    let mut entries: Vec<_> = fs_err::read_dir(dir)
        .map_err(unreadable)?
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    if entries.len() > MAX_REBUILT_ENTRIES {
        return Err(ExecutorError::Unrunnable(format!(
            "a volume's mount path is inside {}, which holds {} entries; choose a mount path whose parent directory exists, or one in a less crowded directory",
            dir.display(),
            entries.len()
        )));
    }
    entries.sort_by_key(|e| e.file_name());
    args.extend(["--tmpfs".to_owned(), dir.display().to_string()]);
    for entry in entries {
        let path = entry.path();
        let shown = path.display().to_string();
        if volumes.iter().any(|v| v.target == path) {
            continue;
        }
        if rebuilt.contains(&path) {
            rebuild(&path, rebuilt, volumes, args)?;
            continue;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_symlink() => {
                let target = fs_err::read_link(&path).map_err(|e| {
                    ExecutorError::Unrunnable(format!("cannot read the link {shown}: {e}"))
                })?;
                args.extend(["--symlink".to_owned(), target.display().to_string(), shown]);
            }
            _ => args.extend(["--dev-bind".to_owned(), shown.clone(), shown]),
        }
    }
    Ok(())
}

/// The bubblewrap that can make a mount namespace here, or why there is none, with what to do.
pub(crate) async fn usable_bwrap() -> Result<PathBuf, String> {
    let advice = "or run the pipeline with `--executor docker`";
    let Some(bwrap) = kfbox_python::find_program(BWRAP) else {
        return Err(format!(
            "this needs bubblewrap (`bwrap`), which is not installed: `sudo apt-get install bubblewrap`, {advice}"
        ));
    };
    let probe = tokio::process::Command::new(&bwrap)
        .args(["--dev-bind", "/", "/", "--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match probe {
        Ok(output) if output.status.success() => Ok(bwrap),
        Ok(output) => Err(format!(
            "bubblewrap cannot make a mount namespace on this machine ({}); unprivileged user namespaces may be turned off (Ubuntu 24.04: `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`; others: `sudo sysctl kernel.unprivileged_userns_clone=1`), {advice}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run {}: {e}; {advice}", bwrap.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kfbox_step::VolumeSource;

    fn volume(source: &Path, target: &Path) -> VolumeMount {
        VolumeMount {
            target: target.to_owned(),
            source: VolumeSource::Dir(source.to_owned()),
            read_only: false,
        }
    }

    #[test]
    fn an_existing_mount_path_is_mounted_over_without_rebuilding_anything() {
        let host = tempfile::tempdir().unwrap();
        let args = bwrap_args(&[volume(Path::new("/v"), host.path())], Path::new("/w")).unwrap();
        let target = host.path().display().to_string();
        assert_eq!(
            args,
            [
                "--dev-bind",
                "/",
                "/",
                "--bind",
                "/v",
                &target,
                "--die-with-parent",
                "--chdir",
                "/w",
                "--"
            ]
        );
    }

    #[test]
    fn the_directories_above_a_new_mount_path_are_rebuilt_with_their_entries() {
        let target = Path::new("/etc/kfbox-no-such-dir/data");
        let args = bwrap_args(&[volume(Path::new("/v"), target)], Path::new("/w")).unwrap();
        let text = args.join(" ");
        assert!(text.starts_with("--tmpfs / "), "{text}");
        assert!(text.contains(" --tmpfs /etc "), "{text}");
        assert!(
            text.contains("--dev-bind /etc/passwd /etc/passwd"),
            "{text}"
        );
        assert!(!text.contains("--dev-bind /etc /etc"), "{text}");
        // Other entries of / are bound as they are, links kept as links.
        assert!(text.contains("--dev-bind /proc /proc"), "{text}");
        for entry in fs_err::read_dir("/").unwrap().flatten() {
            if entry.file_type().unwrap().is_symlink() {
                let link = fs_err::read_link(entry.path()).unwrap();
                let expected = format!("--symlink {} {}", link.display(), entry.path().display());
                assert!(text.contains(&expected), "{expected} missing from {text}");
            }
        }
        assert!(
            text.ends_with("--bind /v /etc/kfbox-no-such-dir/data --die-with-parent --chdir /w --"),
            "{text}"
        );
    }
}
