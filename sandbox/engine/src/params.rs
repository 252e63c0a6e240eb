//! Pipeline (root) parameters: `--param name=value` checked against `root.inputDefinitions`.

use kfbox_spec::ir::PipelineSpec;
use kfbox_spec::value::{coerce, describe, parse_cli_value};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("--param {name}: the pipeline has no parameter `{name}` (it takes: {known})")]
    Unknown { name: String, known: String },
    #[error("--param {name}={value}: expected {expected} for parameter `{name}`")]
    WrongType {
        name: String,
        value: String,
        expected: &'static str,
    },
    #[error("parameter `{name}` ({expected}) is required and has no default\nhint: pass --param {name}=VALUE")]
    Missing {
        name: String,
        expected: &'static str,
    },
    #[error("--param {0}: expected NAME=VALUE")]
    Syntax(String),
    #[error(
        "pipeline input artifact `{0}` is required, and artifacts cannot be passed as --param"
    )]
    ArtifactInput(String),
}

/// Split `name=value` arguments.
pub fn parse_assignments(raw: &[String]) -> Result<Vec<(String, String)>, ParamError> {
    raw.iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| ParamError::Syntax(a.clone()))
        })
        .collect()
}

/// Resolve every root parameter: given value (typed), else default, else absent when optional.
/// Every problem is reported, not only the first.
pub fn resolve_root_parameters(
    spec: &PipelineSpec,
    given: &[(String, String)],
) -> Result<Map<String, Value>, Vec<ParamError>> {
    let definitions = &spec.root.input_definitions.parameters;
    let mut errors = Vec::new();
    let mut values = Map::new();
    for (name, text) in given {
        let Some(definition) = definitions.get(name) else {
            let known = if definitions.is_empty() {
                "no parameters".to_owned()
            } else {
                definitions.keys().cloned().collect::<Vec<_>>().join(", ")
            };
            errors.push(ParamError::Unknown {
                name: name.clone(),
                known,
            });
            continue;
        };
        match parse_cli_value(text, definition.parameter_type) {
            Ok(v) => {
                values.insert(name.clone(), v);
            }
            Err(e) => errors.push(ParamError::WrongType {
                name: name.clone(),
                value: text.clone(),
                expected: e.expected,
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
                    expected: definition.parameter_type.name(),
                }),
            },
            None if definition.is_optional => {}
            None => errors.push(ParamError::Missing {
                name: name.clone(),
                expected: definition.parameter_type.name(),
            }),
        }
    }
    for (name, artifact) in &spec.root.input_definitions.artifacts {
        if !artifact.is_optional {
            errors.push(ParamError::ArtifactInput(name.clone()));
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}
