//! Secrets and ConfigMaps on one machine: one owner-only JSON file each (keys to values),
//! read when a step starts. Values never leave these files except into the step that uses
//! them: listings show keys only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::NamespaceError;
use crate::names::{check_key, object_path};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Secret,
    ConfigMap,
}

impl ObjectKind {
    pub fn noun(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::ConfigMap => "config map",
        }
    }

    /// The `kfbox` command that manages this kind.
    pub fn command(self) -> &'static str {
        match self {
            Self::Secret => "secrets",
            Self::ConfigMap => "configmaps",
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ObjectFile {
    data: BTreeMap<String, String>,
}

/// The Secrets or the ConfigMaps of the namespace.
#[derive(Debug, Clone)]
pub struct Objects {
    kind: ObjectKind,
    root: PathBuf,
}

impl Objects {
    pub(crate) fn new(kind: ObjectKind, root: PathBuf) -> Self {
        Self { kind, root }
    }

    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    fn file(&self, name: &str) -> Result<PathBuf, NamespaceError> {
        let dir = object_path(self.kind.noun(), &self.root, name)?;
        Ok(dir.with_file_name(format!("{name}.json")))
    }

    /// Add `entries` to the object `name` (made when missing); a given key replaces its value.
    pub fn set(&self, name: &str, entries: BTreeMap<String, String>) -> Result<(), NamespaceError> {
        let path = self.file(name)?;
        for key in entries.keys() {
            check_key(self.kind.noun(), name, key)?;
        }
        let mut object = match self.read(name) {
            Ok(data) => data,
            Err(NamespaceError::NotFound { .. }) => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        object.extend(entries);
        kfbox_paths::create_private_dir_all(&self.root)?;
        let text =
            serde_json::to_vec_pretty(&ObjectFile { data: object }).expect("strings serialize");
        kfbox_paths::write_private_file(&path, &text)?;
        Ok(())
    }

    /// The object's keys and values.
    pub fn read(&self, name: &str) -> Result<BTreeMap<String, String>, NamespaceError> {
        let path = self.file(name)?;
        let text = match fs_err::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(NamespaceError::NotFound {
                    kind: self.kind.noun(),
                    name: name.to_owned(),
                    command: match self.kind {
                        ObjectKind::Secret => "secrets set",
                        ObjectKind::ConfigMap => "configmaps set",
                    },
                })
            }
            Err(e) => return Err(e.into()),
        };
        kfbox_paths::check_under(&self.root, &path)?;
        let file: ObjectFile =
            serde_json::from_slice(&text).map_err(|source| NamespaceError::Corrupt {
                kind: self.kind.noun(),
                path,
                source,
            })?;
        Ok(file.data)
    }

    /// Every object's name and keys (never values), by name.
    pub fn list(&self) -> Result<Vec<(String, Vec<String>)>, NamespaceError> {
        let mut names = Vec::new();
        match fs_err::read_dir(&self.root) {
            Ok(entries) => {
                for entry in entries {
                    let file_name = entry?.file_name().to_string_lossy().into_owned();
                    if let Some(name) = file_name.strip_suffix(".json") {
                        if !name.starts_with('.') {
                            names.push(name.to_owned());
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        names.sort();
        names
            .into_iter()
            .filter(|name| self.file(name).is_ok())
            .map(|name| {
                let keys = self.read(&name)?.into_keys().collect();
                Ok((name, keys))
            })
            .collect()
    }

    /// Remove the object; false when there was none.
    pub fn delete(&self, name: &str) -> Result<bool, NamespaceError> {
        let path = self.file(name)?;
        Ok(kfbox_paths::remove_under(&self.root, &path)?)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_secret_is_kept_owner_only_and_listed_without_its_values() {
        let home = tempfile::tempdir().unwrap();
        let secrets = Objects::new(ObjectKind::Secret, home.path().join("secrets"));
        secrets
            .set(
                "db",
                entries(&[("username", "alice"), ("password", "s3cr3t")]),
            )
            .unwrap();
        secrets.set("db", entries(&[("password", "n3w")])).unwrap();
        assert_eq!(
            secrets.read("db").unwrap(),
            entries(&[("username", "alice"), ("password", "n3w")])
        );
        let mode = fs_err::metadata(home.path().join("secrets/db.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let listed = secrets.list().unwrap();
        assert_eq!(
            listed,
            vec![(
                "db".to_owned(),
                vec!["password".to_owned(), "username".to_owned()]
            )]
        );
        assert!(secrets.delete("db").unwrap());
        assert!(matches!(
            secrets.read("db"),
            Err(NamespaceError::NotFound { .. })
        ));
    }

    #[test]
    fn bad_names_and_keys_are_refused_before_anything_is_written() {
        let home = tempfile::tempdir().unwrap();
        let maps = Objects::new(ObjectKind::ConfigMap, home.path().join("configmaps"));
        assert!(maps.set("../x", entries(&[("k", "v")])).is_err());
        assert!(maps.set("ok", entries(&[("../k", "v")])).is_err());
        assert!(!home.path().join("configmaps").exists());
    }
}
