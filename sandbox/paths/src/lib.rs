//! The one place where a name from a pipeline spec or a request (a task, an output) becomes a
//! path component ([`join_name`], [`join_names`]), and where a path that kfbox reads or deletes
//! on a run's behalf is checked, symlinks resolved, against the directory it belongs to
//! ([`resolve_under`], [`remove_under`]). Everything else builds paths from these.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

/// The longest name that becomes a file name. File systems take 255 bytes per component;
/// kfbox appends at most a short suffix (`.log`), and KFP's own pipelines stay under 64.
pub const MAX_NAME_BYTES: usize = 200;

/// A name that cannot become a path component, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeName {
    #[error("the name is empty")]
    Empty,
    #[error("`{0}` is not a name but a reference to a directory")]
    Dots(String),
    #[error("`{0}` contains a path separator (`/` or `\\`)")]
    Separator(String),
    #[error("`{0}` contains a control character")]
    Control(String),
    #[error("`{0}…` is {1} bytes long; names are at most {MAX_NAME_BYTES}")]
    TooLong(String, usize),
}

/// Check that `name` can be one path component as it is: not empty, `.` or `..`, no `/`, `\`,
/// NUL or other control characters, at most [`MAX_NAME_BYTES`].
pub fn check_name(name: &str) -> Result<(), UnsafeName> {
    // Shown names are escaped: a name that fails here is hostile or broken, and goes to
    // terminals and logs.
    let shown = || name.escape_default().to_string();
    if name.is_empty() {
        return Err(UnsafeName::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        let head: String = name.chars().take(40).collect();
        return Err(UnsafeName::TooLong(
            head.escape_default().to_string(),
            name.len(),
        ));
    }
    if name == "." || name == ".." {
        return Err(UnsafeName::Dots(name.to_owned()));
    }
    if name.contains(['/', '\\']) {
        return Err(UnsafeName::Separator(shown()));
    }
    if name.chars().any(char::is_control) {
        return Err(UnsafeName::Control(shown()));
    }
    Ok(())
}

/// `base/name`, for a name checked by [`check_name`].
pub fn join_name(base: &Path, name: &str) -> Result<PathBuf, UnsafeName> {
    check_name(name)?;
    Ok(base.join(name))
}

/// Check a `/`-separated path of names (a task path): each name as [`check_name`] does.
pub fn check_names(names: &str) -> Result<(), UnsafeName> {
    names.split('/').try_for_each(check_name)
}

/// `base/a/b/c` for a `/`-separated path of names (a task path), each checked.
pub fn join_names(base: &Path, names: &str) -> Result<PathBuf, UnsafeName> {
    check_names(names)?;
    Ok(names
        .split('/')
        .fold(base.to_owned(), |path, name| path.join(name)))
}

/// A path that is not where it should be.
#[derive(Debug, thiserror::Error)]
pub enum Confinement {
    #[error("{path} lies outside {root}; kfbox reads and deletes only files it wrote there")]
    Outside { path: PathBuf, root: PathBuf },
    #[error("{path} is gone from disk")]
    Missing { path: PathBuf },
    #[error("cannot resolve {path}")]
    Resolve {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn real(path: &Path) -> Result<PathBuf, Confinement> {
    fs_err::canonicalize(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => Confinement::Missing {
            path: path.to_owned(),
        },
        _ => Confinement::Resolve {
            path: path.to_owned(),
            source,
        },
    })
}

/// The real path of `path` (every symlink and `..` resolved) when it lies under the real path
/// of `root`; for reading what a run wrote.
pub fn resolve_under(root: &Path, path: &Path) -> Result<PathBuf, Confinement> {
    let root = real(root)?;
    let resolved = real(path)?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(Confinement::Outside {
            path: path.to_owned(),
            root,
        })
    }
}

/// Check that `path`, which need not exist yet, lies under `root`: absolute, no `..`, under
/// `root` as written, and the real path of its nearest existing ancestor under the real path of
/// `root` (a symlinked directory on the way cannot lead out). For paths a step names (a URI
/// it sets, a file it says it wrote).
pub fn check_under(root: &Path, path: &Path) -> Result<(), Confinement> {
    let outside = || Confinement::Outside {
        path: path.to_owned(),
        root: root.to_owned(),
    };
    let lexical = path.is_absolute()
        && path.starts_with(root)
        && !path.components().any(|c| c == Component::ParentDir);
    if !lexical {
        return Err(outside());
    }
    let real_root = real(root)?;
    let existing = path
        .ancestors()
        .find(|a| fs_err::symlink_metadata(a).is_ok())
        .unwrap_or(root);
    if real(existing)?.starts_with(&real_root) {
        Ok(())
    } else {
        Err(outside())
    }
}

/// Remove the file, symlink or directory tree at `path` when it lies strictly under `root`:
/// its parent's real path must lie under the real path of `root`; the entry itself is removed,
/// never followed (a symlink goes, its target stays). Returns whether something was removed.
pub fn remove_under(root: &Path, path: &Path) -> Result<bool, Confinement> {
    let outside = |root: PathBuf| Confinement::Outside {
        path: path.to_owned(),
        root,
    };
    let (Some(parent), Some(Component::Normal(name))) =
        (path.parent(), path.components().next_back())
    else {
        return Err(outside(root.to_owned()));
    };
    let root = match real(root) {
        Ok(root) => root,
        Err(Confinement::Missing { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    let parent = match real(parent) {
        Ok(parent) => parent,
        Err(Confinement::Missing { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    if !parent.starts_with(&root) {
        return Err(outside(root));
    }
    let target = parent.join(name);
    let removed = match fs_err::symlink_metadata(&target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => Err(source),
        // std's remove_dir_all does not follow symlinks inside the tree either.
        Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(&target),
        Ok(_) => fs_err::remove_file(&target),
    };
    removed
        .map(|()| true)
        .map_err(|source| Confinement::Resolve {
            path: target,
            source,
        })
}

/// Create `path` and its missing parents readable by their owner only (0700): run data, the
/// store and environments are nobody else's business on a shared machine.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))
}

/// Replace the file at `path` with `contents`, readable by its owner only (0600): written to a
/// temporary file beside it and renamed, so a reader sees the old file or the new one whole.
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::io::Write;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(contents)?;
    fs_err::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_walk_the_file_system_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "/home/user/notes.txt",
            "a/b",
            "a\\b",
            "nul\0byte",
            "title\x1b]0;owned\x07",
            "bell\x07",
            "c1\u{9b}",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} passed");
        }
        assert!(check_name(&"x".repeat(MAX_NAME_BYTES + 1)).is_err());
        for good in [
            "train",
            "for-loop-2",
            "Output",
            "out_put.v2",
            "é",
            "...",
            "a b",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good:?} refused");
        }
        assert_eq!(
            join_names(Path::new("/r"), "loop/iteration-0/step").unwrap(),
            Path::new("/r/loop/iteration-0/step")
        );
        assert!(join_names(Path::new("/r"), "loop/../../x").is_err());
        assert!(join_name(Path::new("/r"), "/etc/passwd").is_err());
    }

    #[test]
    fn reads_resolve_symlinks_before_checking_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("runs");
        fs_err::create_dir_all(root.join("run")).unwrap();
        fs_err::write(dir.path().join("secret"), "key").unwrap();
        fs_err::write(root.join("run/ok"), "data").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("run/link")).unwrap();
        assert!(resolve_under(&root, &root.join("run/ok")).is_ok());
        assert!(matches!(
            resolve_under(&root, &root.join("run/link")),
            Err(Confinement::Outside { .. })
        ));
        assert!(matches!(
            resolve_under(&root, &root.join("run/../../secret")),
            Err(Confinement::Outside { .. })
        ));
        assert!(matches!(
            resolve_under(&root, &root.join("run/none")),
            Err(Confinement::Missing { .. })
        ));
    }

    #[test]
    fn paths_a_step_names_must_stay_in_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        fs_err::create_dir_all(root.join("artifacts")).unwrap();
        assert!(check_under(&root, &root.join("artifacts/model/new")).is_ok());
        assert!(check_under(&root, &root.join("artifacts/../../x")).is_err());
        assert!(check_under(&root, Path::new("/etc/passwd")).is_err());
        assert!(check_under(&root, Path::new("relative")).is_err());
        std::os::unix::fs::symlink(dir.path(), root.join("artifacts/out")).unwrap();
        assert!(check_under(&root, &root.join("artifacts/out/x")).is_err());
    }

    #[test]
    fn deletes_stay_under_the_root_and_never_follow_the_last_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("runs");
        let outside = dir.path().join("keep");
        fs_err::create_dir_all(root.join("run/artifacts")).unwrap();
        fs_err::create_dir_all(&outside).unwrap();
        fs_err::write(outside.join("file"), "mine").unwrap();
        // `..` that walks out of the root, textually under it.
        let walked = root.join("run/artifacts/../../../keep");
        assert!(matches!(
            remove_under(&root, &walked),
            Err(Confinement::Outside { .. })
        ));
        // A symlinked directory on the way out.
        std::os::unix::fs::symlink(&outside, root.join("run/out")).unwrap();
        assert!(matches!(
            remove_under(&root, &root.join("run/out/file")),
            Err(Confinement::Outside { .. })
        ));
        // The link itself goes; its target stays.
        assert!(remove_under(&root, &root.join("run/out")).unwrap());
        assert!(outside.join("file").exists());
        assert!(matches!(
            remove_under(&root, &outside),
            Err(Confinement::Outside { .. })
        ));
        assert!(matches!(
            remove_under(&root, &root),
            Err(Confinement::Outside { .. })
        ));
        assert!(remove_under(&root, &root.join("run")).unwrap());
        assert!(!root.join("run").exists());
        assert!(!remove_under(&root, &root.join("run/gone")).unwrap());
        assert!(outside.join("file").exists());
    }
}
