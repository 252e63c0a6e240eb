//! Reading a compiled pipeline file: YAML (one or two documents) or JSON, bare or wrapped in
//! `{"pipeline_spec": ..., "platform_spec": ...}`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::ir::PipelineSpec;
use crate::platform::PlatformSpec;
use crate::validate::{validate, Problem};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read pipeline file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML or JSON: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {message}\nhint: pass a pipeline compiled by the kfp SDK (`kfp.compiler.Compiler().compile(...)`)")]
    NotAPipeline { path: PathBuf, message: String },
    #[error("{path}: the pipeline is not runnable:\n{}", format_problems(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A pipeline ready to run: the IR plus Kubernetes platform settings, validated.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    pub path: PathBuf,
    pub spec: PipelineSpec,
    pub platform: PlatformSpec,
    /// The spec as JSON, in the `{"pipeline_spec", "platform_spec"}` wrapper when it has
    /// platform settings: what the API stores and answers with.
    pub source: Value,
}

pub fn load_pipeline(path: &Path) -> Result<LoadedPipeline, LoadError> {
    let text = fs_err::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_pipeline(path, &text)
}

pub fn parse_pipeline(path: &Path, text: &str) -> Result<LoadedPipeline, LoadError> {
    pipeline_from_documents(path, parse_documents(path, text)?)
}

/// A pipeline from the documents of a file (see [`parse_documents`]): the spec, bare or in the
/// `{"pipeline_spec", "platform_spec"}` wrapper, then the platform spec as a second document.
pub fn pipeline_from_documents(
    path: &Path,
    documents: Vec<Value>,
) -> Result<LoadedPipeline, LoadError> {
    let mut documents = documents.into_iter();
    let first = documents.next().ok_or_else(|| LoadError::NotAPipeline {
        path: path.to_owned(),
        message: "the file is empty".into(),
    })?;
    let (spec_value, mut platform_value) = match first {
        Value::Object(mut map) if map.contains_key("pipeline_spec") => {
            let platform = map.remove("platform_spec");
            (map.remove("pipeline_spec").unwrap_or_default(), platform)
        }
        other => (other, None),
    };
    // The compiler writes Kubernetes settings as a second YAML document.
    if platform_value.is_none() {
        platform_value = documents.next();
    }
    let object = spec_value
        .as_object()
        .ok_or_else(|| LoadError::NotAPipeline {
            path: path.to_owned(),
            message: "the top level is not a mapping".into(),
        })?;
    for required in ["root", "pipelineInfo"] {
        if !object.contains_key(required) {
            return Err(LoadError::NotAPipeline {
                path: path.to_owned(),
                message: format!("field `{required}` is missing, so this is not a PipelineSpec"),
            });
        }
    }
    let spec = PipelineSpec::deserialize(&spec_value).map_err(|e| LoadError::NotAPipeline {
        path: path.to_owned(),
        message: format!("unexpected PipelineSpec shape: {e}"),
    })?;
    let platform_value = platform_value.filter(|v| !v.is_null());
    let platform = match &platform_value {
        Some(v) => PlatformSpec::deserialize(v).map_err(|e| LoadError::NotAPipeline {
            path: path.to_owned(),
            message: format!("unexpected platform_spec shape: {e}"),
        })?,
        None => PlatformSpec::default(),
    };
    let problems = validate(&spec);
    if !problems.is_empty() {
        return Err(LoadError::Invalid {
            path: path.to_owned(),
            problems,
        });
    }
    let source = match platform_value {
        Some(platform) => {
            serde_json::json!({ "pipeline_spec": spec_value, "platform_spec": platform })
        }
        None => spec_value,
    };
    Ok(LoadedPipeline {
        path: path.to_owned(),
        spec,
        platform,
        source,
    })
}

/// The documents of a pipeline file: one JSON value, or the non-empty YAML documents.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Value>, LoadError> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text)
            .map(|v| vec![v])
            .map_err(|e| LoadError::Syntax {
                path: path.to_owned(),
                message: e.to_string(),
            });
    }
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|e| LoadError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}
