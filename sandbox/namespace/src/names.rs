//! Names of namespace objects, checked as Kubernetes checks them before one becomes a path.

use std::path::{Path, PathBuf};

use crate::error::NamespaceError;

/// Kubernetes allows 253 characters (a DNS subdomain); the name is a file name here too.
const MAX_OBJECT_NAME: usize = kfbox_paths::MAX_NAME_BYTES;

/// `base/name` for `name` a valid object name: a DNS-1123 subdomain (lower-case letters,
/// digits, `-` and `.`, starting and ending with a letter or digit), as the API server
/// requires of PVC, Secret and ConfigMap names.
pub fn object_path(kind: &'static str, base: &Path, name: &str) -> Result<PathBuf, NamespaceError> {
    let bad = |why| NamespaceError::BadName {
        kind,
        name: name.escape_default().to_string(),
        why,
    };
    if name.is_empty() || name.len() > MAX_OBJECT_NAME {
        return Err(bad("it must be 1 to 200 characters long"));
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid_label = |label: &str| {
        label.starts_with(alnum)
            && label.ends_with(alnum)
            && label.chars().all(|c| alnum(c) || c == '-')
    };
    if !name.split('.').all(valid_label) {
        return Err(bad(
            "use lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit",
        ));
    }
    kfbox_paths::join_name(base, name).map_err(|_| bad("it cannot be a file name"))
}

/// Keys of a Secret or ConfigMap: letters, digits, `-`, `_` and `.` (each key becomes a file
/// when the object is mounted as a volume), as Kubernetes validates them.
pub fn check_key(kind: &'static str, object: &str, key: &str) -> Result<(), NamespaceError> {
    let valid = !key.is_empty()
        && key.len() <= MAX_OBJECT_NAME
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(NamespaceError::Invalid {
            what: format!(
                "{kind} `{object}`: key `{}` is not a valid key; use letters, digits, `-`, `_` and `.`",
                key.escape_default()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_kubernetes_checks_them() {
        let base = Path::new("/home/volumes");
        for good in ["a", "my-pvc", "0f1e-my.pvc", "x".repeat(200).as_str()] {
            assert_eq!(
                object_path("volume", base, good).unwrap(),
                base.join(good),
                "{good}"
            );
        }
        for bad in [
            "", ".", "..", "../etc", "a/b", "My", "-a", "a-", "a..b", "a_b", "a b",
        ] {
            assert!(
                object_path("volume", base, bad).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(object_path("volume", base, &"x".repeat(201)).is_err());
    }

    #[test]
    fn keys_cannot_walk_out_of_a_mounted_volume() {
        for good in ["password", "ca.crt", "A_B-c"] {
            check_key("secret", "s", good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "ü"] {
            assert!(check_key("secret", "s", bad).is_err(), "{bad:?} accepted");
        }
    }
}
