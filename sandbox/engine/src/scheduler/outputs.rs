//! A finished step's outputs: the executor output JSON first, then output parameter files,
//! each typed against the component; artifact URIs a step names are confined to its run.

use std::path::Path;

use kfbox_spec::ir::ComponentSpec;
use kfbox_spec::value::{coerce, text_to_value};
use serde_json::{Map, Value};

use crate::model::RuntimeArtifact;
use kfbox_paths::check_under;

use super::context::{local_uri, Artifacts};
use super::step_input::ExecutorInput;

/// Outputs of a finished step: the executor output JSON first, then output parameter files
/// (as the backend's launcher does), each value checked against its declared type. A new URI
/// the step gives an artifact must lie in its run directory (later steps read it, and deleting
/// the run deletes it); a `set_path()` file must too unless the step ran with the host's files
/// (`host_files`), which it could read itself.
pub(super) fn collect_outputs(
    input: &ExecutorInput<'_>,
    component: &ComponentSpec,
    run_dir: &Path,
    host_files: bool,
) -> Result<(Map<String, Value>, Artifacts), String> {
    let in_run = |what: &str, path: &str| {
        check_under(run_dir, Path::new(path)).map_err(|_| {
            format!("{what} {path} lies outside the run directory {}; a step may name only files of its own run", run_dir.display())
        })
    };
    let executor_output: Value = match fs_err::read_to_string(&input.output_file) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            format!(
                "executor output {} is not JSON: {e}",
                input.output_file.display()
            )
        })?,
        Err(_) => Value::Null,
    };
    let mut parameters = Map::new();
    let written = executor_output
        .get("parameterValues")
        .and_then(Value::as_object);
    for (name, definition) in &component.output_definitions.parameters {
        let raw = match written.and_then(|w| w.get(name)) {
            Some(v) => v.clone(),
            None => {
                let file = input
                    .output_parameters
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, p)| p.clone())
                    .unwrap_or_default();
                let text = fs_err::read_to_string(&file)
                    .map_err(|e| format!("output parameter `{name}` was not written: {e}"))?;
                text_to_value(&text, definition.parameter_type)
                    .map_err(|e| format!("output parameter `{name}`: {e}"))?
            }
        };
        let value = coerce(raw, definition.parameter_type)
            .map_err(|e| format!("output parameter `{name}`: {e}"))?;
        parameters.insert(name.clone(), value);
    }
    let mut artifacts = input.outputs.clone();
    if let Some(written) = executor_output.get("artifacts").and_then(Value::as_object) {
        for (name, list) in written {
            let Some(declared) = artifacts.get_mut(name) else {
                continue;
            };
            let template = declared.first().cloned();
            let items = list
                .get("artifacts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                continue;
            }
            let mut merged = Vec::new();
            for item in items {
                let mut artifact = template.clone().unwrap_or(RuntimeArtifact {
                    name: name.clone(),
                    uri: String::new(),
                    schema_title: String::new(),
                    schema_version: String::new(),
                    metadata: Map::new(),
                    id: None,
                });
                if let Some(uri) = item
                    .get("uri")
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty())
                {
                    let uri = local_uri(uri);
                    // Remote URIs (`gs://`...) are references kfbox never opens.
                    if !uri.contains("://") {
                        in_run(&format!("artifact `{name}`: the URI"), &uri)?;
                    }
                    artifact.uri = uri;
                }
                if let Some(metadata) = item.get("metadata").and_then(Value::as_object) {
                    artifact.metadata.extend(metadata.clone());
                }
                // `set_path()` wrote the artifact elsewhere; the launcher uploads it from there.
                let custom = item.get("customPath").or_else(|| item.get("custom_path"));
                if let Some(custom) = custom.and_then(Value::as_str).filter(|c| !c.is_empty()) {
                    if custom != artifact.uri {
                        if !host_files {
                            in_run(&format!("artifact `{name}`: set_path()"), custom)?;
                        }
                        in_run(&format!("artifact `{name}`: the URI"), &artifact.uri)?;
                        copy_tree(Path::new(custom), Path::new(&artifact.uri)).map_err(|e| {
                            format!("artifact `{name}`: copying from custom path {custom}: {e}")
                        })?;
                    }
                }
                merged.push(artifact);
            }
            *declared = merged;
        }
    }
    Ok((parameters, artifacts))
}

/// Copy a file or tree; symlinks are copied as links, never followed (a link a step planted
/// must not bring the file it points at into the run's artifacts).
pub(super) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let kind = fs_err::symlink_metadata(from)?.file_type();
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    if kind.is_symlink() {
        std::os::unix::fs::symlink(fs_err::read_link(from)?, to)
    } else if kind.is_dir() {
        fs_err::create_dir_all(to)?;
        for entry in fs_err::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs_err::copy(from, to).map(|_| ())
    }
}
