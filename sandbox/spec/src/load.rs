//! Reading a compiled pipeline file: YAML (one or two documents) or JSON, bare or wrapped in
//! `{"pipeline_spec": ..., "platform_spec": ...}`.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Number, Value};

use crate::ir::PipelineSpec;
use crate::limits::MAX_PIPELINE_BYTES;
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
    #[error("{path} is larger than {} MiB, the most kfbox reads as a pipeline file\nhint: pass the YAML or JSON that `kfp.compiler.Compiler().compile(...)` wrote; even large pipelines compile to a few hundred KiB", MAX_PIPELINE_BYTES >> 20)]
    TooLarge { path: PathBuf },
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

/// Read and check a pipeline file; at most [`MAX_PIPELINE_BYTES`] are read (a device or a
/// pipe without end is refused, not read into memory).
pub fn load_pipeline(path: &Path) -> Result<LoadedPipeline, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    fs_err::File::open(path)
        .map_err(read_error)?
        .take(MAX_PIPELINE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PIPELINE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| LoadError::Syntax {
        path: path.to_owned(),
        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
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

/// The documents of a pipeline file: one JSON value, or the non-empty YAML documents. A key
/// given twice in one mapping is an error (which of the two would win is not the user's
/// intent to guess).
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Value>, LoadError> {
    let syntax = |message: String| LoadError::Syntax {
        path: path.to_owned(),
        message,
    };
    if text.trim_start().starts_with('{') {
        return serde_json::from_str::<Strict>(text)
            .map(|v| vec![v.0])
            .map_err(|e| syntax(e.to_string()));
    }
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let Strict(value) = Strict::deserialize(document).map_err(|e| syntax(e.to_string()))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// A JSON value read from YAML or JSON, refusing duplicate keys and non-finite numbers.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Strict::deserialize(deserializer).map(|s| s.0)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.contains_key(&key) {
                let shown: String = key.chars().take(80).collect();
                return Err(serde::de::Error::custom(format!(
                    "key `{shown}` is given twice in one mapping"
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}
