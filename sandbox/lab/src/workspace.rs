//! The lab's working directory: copies of the notebooks and codelabs this kfbox ships. A newer
//! kfbox adds what is new and updates what the user left as shipped; whatever the user edited
//! or deleted stays as they left it. What kfbox last wrote is remembered by content hash in
//! `.kfbox/shipped.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

use crate::LabError;

static NOTEBOOKS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../notebooks");
static CODELABS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../codelabs");

const MANIFEST: &str = ".kfbox/shipped.json";

/// A file this kfbox ships, by its path in the workspace.
#[derive(Debug, Clone)]
pub struct Shipped<'a> {
    pub path: String,
    pub bytes: &'a [u8],
}

/// Everything shipped: `notebooks/` at the workspace's top (the welcome notebook opens
/// first), `codelabs/` under `codelabs/`.
pub fn shipped() -> Vec<Shipped<'static>> {
    fn walk(dir: &'static Dir<'static>, prefix: &str, out: &mut Vec<Shipped<'static>>) {
        for file in dir.files() {
            let path = file.path().to_str().expect("shipped paths are UTF-8");
            out.push(Shipped {
                path: format!("{prefix}{path}"),
                bytes: file.contents(),
            });
        }
        for sub in dir.dirs() {
            walk(sub, prefix, out);
        }
    }
    let mut out = Vec::new();
    walk(&NOTEBOOKS, "", &mut out);
    walk(&CODELABS, "codelabs/", &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// What a sync did, by workspace path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    /// Shipped files the user changed (or deleted), left as they are.
    pub kept: Vec<String>,
}

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Bring `dir` up to date with `files`.
pub fn sync(dir: &Path, files: &[Shipped]) -> Result<SyncReport, LabError> {
    let manifest_path = dir.join(MANIFEST);
    let mut manifest: BTreeMap<String, String> = match fs_err::read(&manifest_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(io(&manifest_path)(e)),
    };
    let mut report = SyncReport::default();
    for file in files {
        let target = safe_join(dir, &file.path)?;
        let wanted = digest(file.bytes);
        let current = match fs_err::read(&target) {
            Ok(bytes) => Some(digest(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&target)(e)),
        };
        let last_written = manifest.get(&file.path);
        let write = match (&current, last_written) {
            (None, None) => {
                report.added.push(file.path.clone());
                true
            }
            (Some(now), Some(written)) if now == written && *now != wanted => {
                report.updated.push(file.path.clone());
                true
            }
            (Some(now), _) if *now == wanted => false,
            _ => {
                report.kept.push(file.path.clone());
                false
            }
        };
        if write {
            if let Some(parent) = target.parent() {
                fs_err::create_dir_all(parent).map_err(io(parent))?;
            }
            fs_err::write(&target, file.bytes).map_err(io(&target))?;
            manifest.insert(file.path.clone(), wanted);
        } else if current.as_deref() == Some(wanted.as_str()) {
            manifest.insert(file.path.clone(), wanted);
        }
    }
    if let Some(parent) = manifest_path.parent() {
        fs_err::create_dir_all(parent).map_err(io(parent))?;
    }
    let text = serde_json::to_string_pretty(&manifest).expect("a map of strings serializes");
    fs_err::write(&manifest_path, text).map_err(io(&manifest_path))?;
    Ok(report)
}

/// `dir/path`, for a relative path of plain names only.
fn safe_join(dir: &Path, path: &str) -> Result<PathBuf, LabError> {
    let plain = Path::new(path)
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !plain {
        return Err(LabError::BadShippedPath(path.to_owned()));
    }
    Ok(dir.join(path))
}

#[cfg(test)]
mod tests {
    use super::{shipped, sync, Shipped, SyncReport};

    #[test]
    fn updates_add_new_files_and_never_touch_the_users_edits() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = [
            Shipped {
                path: "welcome.ipynb".into(),
                bytes: b"w1",
            },
            Shipped {
                path: "codelabs/a/README.md".into(),
                bytes: b"a1",
            },
            Shipped {
                path: "codelabs/b/README.md".into(),
                bytes: b"b1",
            },
        ];
        let first = sync(dir.path(), &v1).unwrap();
        assert_eq!(first.added.len(), 3);
        // The user edits one file and deletes another.
        fs_err::write(dir.path().join("codelabs/a/README.md"), b"mine").unwrap();
        fs_err::remove_file(dir.path().join("codelabs/b/README.md")).unwrap();
        let v2 = [
            Shipped {
                path: "welcome.ipynb".into(),
                bytes: b"w2",
            },
            Shipped {
                path: "codelabs/a/README.md".into(),
                bytes: b"a2",
            },
            Shipped {
                path: "codelabs/b/README.md".into(),
                bytes: b"b2",
            },
            Shipped {
                path: "codelabs/c/README.md".into(),
                bytes: b"c2",
            },
        ];
        let second = sync(dir.path(), &v2).unwrap();
        assert_eq!(
            second,
            SyncReport {
                added: vec!["codelabs/c/README.md".into()],
                updated: vec!["welcome.ipynb".into()],
                kept: vec!["codelabs/a/README.md".into(), "codelabs/b/README.md".into()],
            }
        );
        let read = |p: &str| fs_err::read(dir.path().join(p)).ok();
        assert_eq!(read("welcome.ipynb").as_deref(), Some(&b"w2"[..]));
        assert_eq!(read("codelabs/a/README.md").as_deref(), Some(&b"mine"[..]));
        assert_eq!(read("codelabs/b/README.md"), None);
        // Nothing changes on a second sync of the same version.
        let again = sync(dir.path(), &v2).unwrap();
        assert!(again.added.is_empty() && again.updated.is_empty());
    }

    #[test]
    fn paths_that_leave_the_workspace_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bad = [Shipped {
            path: "../escape".into(),
            bytes: b"x",
        }];
        assert!(sync(dir.path(), &bad).is_err());
        assert!(!dir.path().parent().unwrap().join("escape").exists());
    }

    #[test]
    fn the_welcome_notebook_and_the_codelabs_are_shipped() {
        let files = shipped();
        assert!(files.iter().any(|f| f.path == "welcome.ipynb"));
        assert!(files
            .iter()
            .any(|f| f.path == "codelabs/01-hello-pipeline/README.md"));
    }
}
