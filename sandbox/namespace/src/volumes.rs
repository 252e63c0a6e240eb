//! PersistentVolumeClaims on one machine: a directory each under `volumes/`, holding what the
//! claim asked for (`claim.json`: size, access modes and storage class are recorded, not
//! enforced) and the files steps write (`data/`), kept across runs until deleted.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::NamespaceError;
use crate::names::object_path;

const KIND: &str = "volume";
const COMMAND: &str = "volumes";
const CLAIM_FILE: &str = "claim.json";
const DATA_DIR: &str = "data";

/// What a claim asked for, as `kfp.kubernetes.CreatePVC` (or `kfbox volumes create`) gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub name: String,
    /// The requested size, a Kubernetes quantity such as `5Gi`.
    pub size: Option<String>,
    pub access_modes: Vec<String>,
    pub storage_class: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The run whose CreatePVC task made it, if one did.
    pub created_by_run: Option<String>,
}

/// A claim with what its directory holds now.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeEntry {
    #[serde(flatten)]
    pub claim: Claim,
    /// Bytes of the files in it (apparent sizes).
    pub used_bytes: u64,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Volumes {
    root: PathBuf,
}

impl Volumes {
    pub(crate) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Make the claim's volume; a name in use fails, as creating an existing PVC does.
    /// Returns the directory steps mount.
    pub fn create(&self, claim: &Claim) -> Result<PathBuf, NamespaceError> {
        let dir = object_path(KIND, &self.root, &claim.name)?;
        kfbox_paths::create_private_dir_all(&self.root)?;
        match fs_err::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(NamespaceError::Exists {
                    kind: KIND,
                    name: claim.name.clone(),
                    command: COMMAND,
                })
            }
            other => other?,
        }
        let data = dir.join(DATA_DIR);
        fs_err::create_dir(&data)?;
        // As a provisioner's volume: writable by whichever user a step runs as
        // (set_security_context); KFBOX_HOME itself stays owner-only.
        fs_err::set_permissions(&data, std::fs::Permissions::from_mode(0o777))?;
        let text = serde_json::to_vec_pretty(claim).expect("a claim serializes");
        kfbox_paths::write_private_file(&dir.join(CLAIM_FILE), &text)?;
        Ok(data)
    }

    /// The directory a step mounts for the claim `name`.
    pub fn data_dir(&self, name: &str) -> Result<PathBuf, NamespaceError> {
        let dir = object_path(KIND, &self.root, name)?;
        let data = dir.join(DATA_DIR);
        if !data.is_dir() {
            return Err(NamespaceError::NotFound {
                kind: KIND,
                name: name.to_owned(),
                command: "volumes create",
            });
        }
        kfbox_paths::check_under(&self.root, &data)?;
        Ok(data)
    }

    pub fn get(&self, name: &str) -> Result<VolumeEntry, NamespaceError> {
        let data = self.data_dir(name)?;
        let claim_file = data.with_file_name(CLAIM_FILE);
        let claim = match fs_err::read(&claim_file) {
            Ok(text) => {
                serde_json::from_slice(&text).map_err(|source| NamespaceError::Corrupt {
                    kind: KIND,
                    path: claim_file,
                    source,
                })?
            }
            // Made by hand, or cut off while it was made: a claim that asked for nothing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Claim {
                name: name.to_owned(),
                size: None,
                access_modes: Vec::new(),
                storage_class: None,
                created_at: String::new(),
                created_by_run: None,
            },
            Err(e) => return Err(e.into()),
        };
        Ok(VolumeEntry {
            claim,
            used_bytes: used_bytes(&data),
            path: data,
        })
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeEntry>, NamespaceError> {
        let mut names = Vec::new();
        match fs_err::read_dir(&self.root) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry?;
                    if entry.file_type()?.is_dir() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        names.sort();
        names
            .iter()
            .filter(|name| object_path(KIND, &self.root, name).is_ok())
            .map(|name| self.get(name))
            .collect()
    }

    /// Remove the volume and its files; false when there was none.
    pub fn delete(&self, name: &str) -> Result<bool, NamespaceError> {
        let dir = object_path(KIND, &self.root, name)?;
        Ok(kfbox_paths::remove_under(&self.root, &dir)?)
    }
}

fn used_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => used_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str) -> Claim {
        Claim {
            name: name.to_owned(),
            size: Some("5Gi".to_owned()),
            access_modes: vec!["ReadWriteOnce".to_owned()],
            storage_class: None,
            created_at: "2026-12-01T00:00:00Z".to_owned(),
            created_by_run: Some("run-1".to_owned()),
        }
    }

    #[test]
    fn a_volume_lives_until_deleted_and_its_name_is_taken_meanwhile() {
        let home = tempfile::tempdir().unwrap();
        let volumes = Volumes::new(home.path().join("volumes"));
        let data = volumes.create(&claim("shared")).unwrap();
        fs_err::write(data.join("f.txt"), "hello").unwrap();
        assert_eq!(volumes.data_dir("shared").unwrap(), data);
        let listed = volumes.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].claim, claim("shared"));
        assert_eq!(listed[0].used_bytes, 5);
        assert!(matches!(
            volumes.create(&claim("shared")),
            Err(NamespaceError::Exists { .. })
        ));
        assert!(volumes.delete("shared").unwrap());
        assert!(!data.exists());
        assert!(matches!(
            volumes.data_dir("shared"),
            Err(NamespaceError::NotFound { .. })
        ));
        assert!(!volumes.delete("shared").unwrap());
    }

    #[test]
    fn a_symlinked_volume_is_not_followed_out_of_the_namespace() {
        let home = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs_err::create_dir(elsewhere.path().join("data")).unwrap();
        let volumes = Volumes::new(home.path().join("volumes"));
        fs_err::create_dir_all(home.path().join("volumes")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join("volumes/evil")).unwrap();
        assert!(volumes.data_dir("evil").is_err());
        // Deleting removes the link, never what it points at.
        assert!(volumes.delete("evil").unwrap());
        assert!(elsewhere.path().join("data").is_dir());
    }
}
