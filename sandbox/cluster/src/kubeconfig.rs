//! The node's kubeconfig, made usable from the host (its server is the published port on
//! 127.0.0.1, its names the cluster's), and merged into the user's kubeconfig next to the
//! contexts already there.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use crate::error::ClusterError;

/// k3s names its cluster, user and context `default`; kfbox's are named after the cluster.
pub fn for_host(
    node_kubeconfig: &str,
    name: &str,
    api_server: &str,
) -> Result<String, ClusterError> {
    let bad = |what: &str| ClusterError::Kubeconfig {
        what: format!("from the node {what}"),
    };
    let mut doc: Value =
        serde_yaml::from_str(node_kubeconfig).map_err(|e| bad(&format!("is not YAML: {e}")))?;
    let clusters = doc
        .get_mut("clusters")
        .and_then(Value::as_sequence_mut)
        .filter(|c| c.len() == 1)
        .ok_or_else(|| bad("does not have exactly one cluster"))?;
    clusters[0]["name"] = name.into();
    clusters[0]["cluster"]["server"] = api_server.into();
    for list in ["users", "contexts"] {
        let entries = doc
            .get_mut(list)
            .and_then(Value::as_sequence_mut)
            .filter(|e| e.len() == 1)
            .ok_or_else(|| bad(&format!("does not have exactly one of its {list}")))?;
        entries[0]["name"] = name.into();
        if list == "contexts" {
            entries[0]["context"]["cluster"] = name.into();
            entries[0]["context"]["user"] = name.into();
        }
    }
    doc["current-context"] = name.into();
    serde_yaml::to_string(&doc).map_err(|e| bad(&e.to_string()))
}

/// How to reach and authenticate to the cluster a kubeconfig written by [`for_host`] names.
pub struct Credentials {
    /// The API server's address, e.g. `https://127.0.0.1:PORT`.
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub client_certificate_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
}

/// The current context's server and certificates (k3s writes them inline, base64).
pub fn credentials(kubeconfig: &str) -> Result<Credentials, ClusterError> {
    use base64::Engine;
    let bad = |what: &str| ClusterError::Kubeconfig {
        what: what.to_owned(),
    };
    let doc: Value =
        serde_yaml::from_str(kubeconfig).map_err(|e| bad(&format!("is not YAML: {e}")))?;
    let current = doc["current-context"]
        .as_str()
        .ok_or_else(|| bad("has no current-context"))?;
    let named = |list: &str, name: &str| -> Result<Value, ClusterError> {
        doc[list]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|entry| entry["name"].as_str() == Some(name))
            .cloned()
            .ok_or_else(|| bad(&format!("has no entry `{name}` in its {list}")))
    };
    let context = named("contexts", current)?;
    let cluster = named(
        "clusters",
        context["context"]["cluster"].as_str().unwrap_or_default(),
    )?;
    let user = named(
        "users",
        context["context"]["user"].as_str().unwrap_or_default(),
    )?;
    let inline = |entry: &Value, section: &str, key: &str| -> Result<Vec<u8>, ClusterError> {
        let text = entry[section][key]
            .as_str()
            .ok_or_else(|| bad(&format!("has no {key} for `{current}`")))?;
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| bad(&format!("has a {key} that is not base64: {e}")))
    };
    Ok(Credentials {
        server: cluster["cluster"]["server"]
            .as_str()
            .ok_or_else(|| bad(&format!("has no server for `{current}`")))?
            .to_owned(),
        ca_pem: inline(&cluster, "cluster", "certificate-authority-data")?,
        client_certificate_pem: inline(&user, "user", "client-certificate-data")?,
        client_key_pem: inline(&user, "user", "client-key-data")?,
    })
}

/// Puts the cluster, user and context of `ours` (one each, as [`for_host`] writes) into the
/// kubeconfig at `path`, replacing entries of the same names and keeping every other; the
/// current context becomes ours. Written whole to a temporary file and renamed, owner-only.
pub fn merge_into(path: &Path, ours: &str) -> Result<(), ClusterError> {
    let bad = |reason: String| ClusterError::BadKubeconfig {
        path: path.to_owned(),
        reason,
    };
    let io = |source| ClusterError::Io {
        path: path.to_owned(),
        source,
    };
    let ours: Value = serde_yaml::from_str(ours).map_err(|e| bad(e.to_string()))?;
    let mut theirs: Value = match fs_err::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?
        }
        Ok(_) => Value::Mapping(Mapping::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Mapping(Mapping::new()),
        Err(e) => return Err(io(e)),
    };
    let Value::Mapping(config) = &mut theirs else {
        return Err(bad("it is not a mapping".into()));
    };
    config
        .entry("apiVersion".into())
        .or_insert_with(|| "v1".into());
    config
        .entry("kind".into())
        .or_insert_with(|| "Config".into());
    for list in ["clusters", "users", "contexts"] {
        let entries = config
            .entry(list.into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        if entries.is_null() {
            *entries = Value::Sequence(Vec::new());
        }
        let Value::Sequence(entries) = entries else {
            return Err(bad(format!("`{list}` is not a list")));
        };
        for entry in ours[list].as_sequence().into_iter().flatten() {
            entries.retain(|e| e.get("name") != entry.get("name"));
            entries.push(entry.clone());
        }
    }
    config.insert("current-context".into(), ours["current-context"].clone());
    let text = serde_yaml::to_string(&theirs).map_err(|e| bad(e.to_string()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir).map_err(io)?;
    }
    kfbox_paths::write_private_file(path, text.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K3S: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";

    #[test]
    fn credentials_are_the_current_contexts_decoded() {
        let ours = for_host(K3S, "kfbox", "https://127.0.0.1:40123").unwrap();
        let access = credentials(&ours).unwrap();
        assert_eq!(access.server, "https://127.0.0.1:40123");
        assert_eq!(access.ca_pem, b"CA");
        assert_eq!(access.client_certificate_pem, b"CERT");
        assert_eq!(access.client_key_pem, b"KEY");
        let no_key = ours.replace("client-key-data: S0VZ", "token: abc");
        let error = credentials(&no_key).err().unwrap().to_string();
        assert!(
            error.contains("has no client-key-data for `kfbox`"),
            "{error}"
        );
    }

    #[test]
    fn the_node_kubeconfig_points_at_the_published_port_under_the_cluster_name() {
        let ours = for_host(K3S, "kfbox", "https://127.0.0.1:40123").unwrap();
        let doc: Value = serde_yaml::from_str(&ours).unwrap();
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:40123"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "kfbox");
        assert_eq!(doc["users"][0]["name"], "kfbox");
        assert_eq!(doc["current-context"], "kfbox");
        assert!(for_host("clusters: []", "kfbox", "x").is_err());
    }

    #[test]
    fn merging_keeps_other_contexts_and_replaces_our_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs_err::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: https://prod}\nusers:\n- name: prod\n  user: {token: t}\ncontexts:\n- name: prod\n  context: {cluster: prod, user: prod}\ncurrent-context: prod\n",
        )
        .unwrap();
        let first = for_host(K3S, "kfbox", "https://127.0.0.1:1").unwrap();
        merge_into(&path, &first).unwrap();
        let second = for_host(K3S, "kfbox", "https://127.0.0.1:2").unwrap();
        merge_into(&path, &second).unwrap();
        let doc: Value = serde_yaml::from_str(&fs_err::read_to_string(&path).unwrap()).unwrap();
        let names = |list: &str| -> Vec<String> {
            doc[list]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("clusters"), ["prod", "kfbox"]);
        assert_eq!(names("contexts"), ["prod", "kfbox"]);
        assert_eq!(
            doc["clusters"][1]["cluster"]["server"],
            "https://127.0.0.1:2"
        );
        assert_eq!(doc["current-context"], "kfbox");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs_err::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A missing file is created.
        let fresh = dir.path().join("new/config");
        merge_into(&fresh, &first).unwrap();
        assert!(fs_err::read_to_string(&fresh).unwrap().contains("kfbox"));
        // Something that is not a kubeconfig is left alone and named.
        let broken = dir.path().join("broken");
        fs_err::write(&broken, "- just\n- a list\n").unwrap();
        let error = merge_into(&broken, &first).unwrap_err();
        assert!(error.to_string().contains("broken"), "{error}");
        assert_eq!(
            fs_err::read_to_string(&broken).unwrap(),
            "- just\n- a list\n"
        );
    }
}
