//! Pipeline (root) parameters: `--param name=value` checked against `root.inputDefinitions`.

use std::collections::BTreeMap;

use kfbox_spec::ir::PipelineSpec;
use kfbox_spec::value::{coerce, describe, parse_cli_value};
use serde_json::{Map, Value};

use crate::model::RuntimeArtifact;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter `{name}`: the pipeline has no such parameter (it takes: {known})")]
    Unknown { name: String, known: String },
    #[error("parameter `{name}` = {value}: expected {expected}")]
    WrongType {
        name: String,
        value: String,
        expected: &'static str,
    },
    #[error("parameter `{name}` ({expected}) is required and has no default\nhint: give it a value (`--param {name}=VALUE`, or `runtime_config.parameters` through the API)")]
    Missing {
        name: String,
        expected: &'static str,
    },
    #[error("{flag} {text}: expected NAME=VALUE")]
    Syntax { flag: &'static str, text: String },
    #[error("pipeline input artifact `{0}` is required\nhint: pass --artifact {0}=PATH")]
    MissingArtifact(String),
    #[error("--artifact {name}: the pipeline has no input artifact `{name}` (it takes: {known})")]
    UnknownArtifact { name: String, known: String },
    #[error("--artifact {name}={path}: no such file or directory")]
    ArtifactPath { name: String, path: String },
}

/// Split `name=value` arguments of a flag such as `--param`.
pub fn parse_assignments(
    flag: &'static str,
    raw: &[String],
) -> Result<Vec<(String, String)>, ParamError> {
    raw.iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| ParamError::Syntax {
                    flag,
                    text: a.clone(),
                })
        })
        .collect()
}

/// The declared names, for an error message about an unknown one.
fn known_names<'a>(names: impl ExactSizeIterator<Item = &'a String>, none: &str) -> String {
    if names.len() == 0 {
        none.to_owned()
    } else {
        names.cloned().collect::<Vec<_>>().join(", ")
    }
}

/// A root parameter's value as given: command-line text, or JSON from the API.
#[derive(Debug, Clone)]
pub enum GivenValue {
    Text(String),
    Json(Value),
}

/// Resolve every root parameter: given value (typed), else default, else absent when optional.
/// Every problem is reported, not only the first.
pub fn resolve_root_parameters(
    spec: &PipelineSpec,
    given: &[(String, GivenValue)],
) -> Result<Map<String, Value>, Vec<ParamError>> {
    let definitions = &spec.root.input_definitions.parameters;
    let mut errors = Vec::new();
    let mut values = Map::new();
    for (name, given) in given {
        let Some(definition) = definitions.get(name) else {
            errors.push(ParamError::Unknown {
                name: name.clone(),
                known: known_names(definitions.keys(), "no parameters"),
            });
            continue;
        };
        let typed = match given {
            GivenValue::Text(text) => parse_cli_value(text, definition.parameter_type)
                .map_err(|e| (text.clone(), e.expected)),
            GivenValue::Json(value) => coerce(value.clone(), definition.parameter_type)
                .map_err(|e| (describe(value), e.expected)),
        };
        match typed {
            Ok(v) => {
                values.insert(name.clone(), v);
            }
            Err((value, expected)) => errors.push(ParamError::WrongType {
                name: name.clone(),
                value,
                expected,
            }),
        }
    }
    for (name, definition) in definitions {
        if values.contains_key(name) {
            continue;
        }
        match &definition.default_value {
            Some(default) => match coerce(default.clone(), definition.parameter_type) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(_) => errors.push(ParamError::WrongType {
                    name: name.clone(),
                    value: describe(default),
                    expected: definition.parameter_type.python_name(),
                }),
            },
            None if definition.is_optional => {}
            None => errors.push(ParamError::Missing {
                name: name.clone(),
                expected: definition.parameter_type.python_name(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// Resolve root input artifacts given as local paths; every problem is reported.
pub fn resolve_root_artifacts(
    spec: &PipelineSpec,
    given: &[(String, String)],
) -> Result<BTreeMap<String, Vec<RuntimeArtifact>>, Vec<ParamError>> {
    let definitions = &spec.root.input_definitions.artifacts;
    let mut errors = Vec::new();
    let mut artifacts = BTreeMap::new();
    for (name, path) in given {
        let Some(definition) = definitions.get(name) else {
            errors.push(ParamError::UnknownArtifact {
                name: name.clone(),
                known: known_names(definitions.keys(), "no input artifacts"),
            });
            continue;
        };
        match std::path::absolute(path).ok().filter(|p| p.exists()) {
            Some(absolute) => {
                let artifact = RuntimeArtifact {
                    name: name.clone(),
                    uri: absolute.display().to_string(),
                    schema_title: definition.artifact_type.schema_title.clone(),
                    schema_version: definition.artifact_type.schema_version.clone(),
                    metadata: Map::new(),
                    id: None,
                };
                artifacts.insert(name.clone(), vec![artifact]);
            }
            None => errors.push(ParamError::ArtifactPath {
                name: name.clone(),
                path: path.clone(),
            }),
        }
    }
    for (name, definition) in definitions {
        if !definition.is_optional && !artifacts.contains_key(name) {
            errors.push(ParamError::MissingArtifact(name.clone()));
        }
    }
    if errors.is_empty() {
        Ok(artifacts)
    } else {
        Err(errors)
    }
}
