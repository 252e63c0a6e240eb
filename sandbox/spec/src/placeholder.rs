//! Command-line placeholders of container executors.
//!
//! Two layers: inline `{{$...}}` references inside a string, and the structured `IfPresent` /
//! `Concat` placeholders that the compiler writes as a JSON object in place of one argument.

use serde_json::Value;

/// One inline reference, `{{$...}}`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `{{$}}`: the whole ExecutorInput as JSON.
    ExecutorInput,
    InputParameter(String),
    InputArtifact(String, ArtifactField),
    /// `{{$.inputs.artifacts['x']}}`: an artifact list input, as a JSON list of artifacts.
    InputArtifactList(String),
    OutputParameterFile(String),
    OutputArtifact(String, ArtifactField),
    /// `{{$.outputs.output_file}}`: where the executor output JSON goes.
    ExecutorOutputFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactField {
    Uri,
    Path,
    Metadata,
}

/// An argument of a container command, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Literal text and inline references, in order.
    Text(Vec<Piece>),
    IfPresent {
        input: String,
        then: Vec<Arg>,
        otherwise: Vec<Arg>,
    },
    Concat(Vec<Arg>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Literal(String),
    Ref(Reference),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("unknown placeholder `{0}`")]
    Unknown(String),
    #[error("unterminated placeholder starting at `{0}`")]
    Unterminated(String),
    #[error("malformed structured placeholder `{text}`: {reason}")]
    Structured { text: String, reason: String },
}

pub fn parse_arg(text: &str) -> Result<Arg, PlaceholderError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("{\"IfPresent\"") || trimmed.starts_with("{\"Concat\"") {
        let value: Value =
            serde_json::from_str(text).map_err(|e| PlaceholderError::Structured {
                text: text.to_owned(),
                reason: e.to_string(),
            })?;
        return parse_structured(&value, text);
    }
    Ok(Arg::Text(parse_pieces(text)?))
}

fn parse_structured(value: &Value, text: &str) -> Result<Arg, PlaceholderError> {
    let bad = |reason: &str| PlaceholderError::Structured {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    match value {
        Value::String(s) => parse_arg(s),
        Value::Object(map) => {
            if let Some(body) = map.get("IfPresent") {
                let input = body
                    .get("InputName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("IfPresent needs a string `InputName`"))?;
                let list = |key: &str| -> Result<Vec<Arg>, PlaceholderError> {
                    match body.get(key) {
                        None | Some(Value::Null) => Ok(Vec::new()),
                        Some(Value::Array(items)) => {
                            items.iter().map(|i| parse_structured(i, text)).collect()
                        }
                        Some(single) => Ok(vec![parse_structured(single, text)?]),
                    }
                };
                Ok(Arg::IfPresent {
                    input: input.to_owned(),
                    then: list("Then")?,
                    otherwise: list("Else")?,
                })
            } else if let Some(Value::Array(items)) = map.get("Concat") {
                Ok(Arg::Concat(
                    items
                        .iter()
                        .map(|i| parse_structured(i, text))
                        .collect::<Result<_, _>>()?,
                ))
            } else {
                Err(bad("expected `IfPresent` or `Concat`"))
            }
        }
        _ => Err(bad("expected a string or an object")),
    }
}

fn parse_pieces(text: &str) -> Result<Vec<Piece>, PlaceholderError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{$") {
        if start > 0 {
            pieces.push(Piece::Literal(rest[..start].to_owned()));
        }
        let after = &rest[start..];
        let end = after
            .find("}}")
            .ok_or_else(|| PlaceholderError::Unterminated(after.chars().take(40).collect()))?;
        let token = &after[..end + 2];
        pieces.push(Piece::Ref(parse_reference(token)?));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_owned()));
    }
    Ok(pieces)
}

fn parse_reference(token: &str) -> Result<Reference, PlaceholderError> {
    let unknown = || PlaceholderError::Unknown(token.to_owned());
    let inner = token
        .strip_prefix("{{$")
        .and_then(|t| t.strip_suffix("}}"))
        .ok_or_else(unknown)?;
    if inner.is_empty() {
        return Ok(Reference::ExecutorInput);
    }
    if inner == ".outputs.output_file" {
        return Ok(Reference::ExecutorOutputFile);
    }
    let (kind, rest) = [
        ".inputs.parameters[",
        ".inputs.artifacts[",
        ".outputs.parameters[",
        ".outputs.artifacts[",
    ]
    .iter()
    .find_map(|prefix| inner.strip_prefix(prefix).map(|r| (*prefix, r)))
    .ok_or_else(unknown)?;
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"');
    let quote = quote.ok_or_else(unknown)?;
    let close = format!("{quote}]");
    let name_end = rest[1..].find(&close).ok_or_else(unknown)? + 1;
    let name = rest[1..name_end].to_owned();
    let field = &rest[name_end + 2..];
    let artifact_field = || match field {
        ".uri" => Ok(ArtifactField::Uri),
        ".path" => Ok(ArtifactField::Path),
        ".metadata" => Ok(ArtifactField::Metadata),
        _ => Err(unknown()),
    };
    match kind {
        ".inputs.parameters[" if field.is_empty() => Ok(Reference::InputParameter(name)),
        ".inputs.artifacts[" if field.is_empty() => Ok(Reference::InputArtifactList(name)),
        ".inputs.artifacts[" => Ok(Reference::InputArtifact(name, artifact_field()?)),
        ".outputs.parameters[" if field == ".output_file" => {
            Ok(Reference::OutputParameterFile(name))
        }
        ".outputs.artifacts[" => Ok(Reference::OutputArtifact(name, artifact_field()?)),
        _ => Err(unknown()),
    }
}

impl Arg {
    /// Every inline reference in this argument, including inside structured placeholders.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out = Vec::new();
        self.collect_references(&mut out);
        out
    }

    fn collect_references<'a>(&'a self, out: &mut Vec<&'a Reference>) {
        match self {
            Arg::Text(pieces) => out.extend(pieces.iter().filter_map(|p| match p {
                Piece::Ref(r) => Some(r),
                Piece::Literal(_) => None,
            })),
            Arg::IfPresent {
                then, otherwise, ..
            } => then
                .iter()
                .chain(otherwise)
                .for_each(|a| a.collect_references(out)),
            Arg::Concat(items) => items.iter().for_each(|a| a.collect_references(out)),
        }
    }

    /// Names tested by `IfPresent`, including nested ones.
    pub fn if_present_inputs(&self) -> Vec<&str> {
        match self {
            Arg::Text(_) => Vec::new(),
            Arg::IfPresent {
                input,
                then,
                otherwise,
            } => std::iter::once(input.as_str())
                .chain(
                    then.iter()
                        .chain(otherwise)
                        .flat_map(Arg::if_present_inputs),
                )
                .collect(),
            Arg::Concat(items) => items.iter().flat_map(Arg::if_present_inputs).collect(),
        }
    }

    /// Expand to zero or more command-line words.
    pub fn expand<R: Resolver + ?Sized>(
        &self,
        resolver: &R,
    ) -> Result<Vec<String>, PlaceholderError> {
        match self {
            Arg::Text(pieces) => {
                let mut s = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => s.push_str(text),
                        Piece::Ref(r) => s.push_str(&resolver.resolve(r)?),
                    }
                }
                Ok(vec![s])
            }
            Arg::IfPresent {
                input,
                then,
                otherwise,
            } => {
                let branch = if resolver.is_present(input) {
                    then
                } else {
                    otherwise
                };
                let mut out = Vec::new();
                for a in branch {
                    out.extend(a.expand(resolver)?);
                }
                Ok(out)
            }
            Arg::Concat(items) => {
                let mut s = String::new();
                for a in items {
                    s.push_str(&a.expand(resolver)?.concat());
                }
                Ok(vec![s])
            }
        }
    }
}

/// Supplies the runtime values behind references.
pub trait Resolver {
    fn resolve(&self, reference: &Reference) -> Result<String, PlaceholderError>;
    fn is_present(&self, input: &str) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inline_references() {
        let arg = parse_arg("--x={{$.inputs.parameters['a']}}/{{$.outputs.artifacts['m'].path}}")
            .unwrap();
        assert_eq!(
            arg.references(),
            vec![
                &Reference::InputParameter("a".into()),
                &Reference::OutputArtifact("m".into(), ArtifactField::Path)
            ]
        );
    }

    #[test]
    fn rejects_unknown_references() {
        assert_eq!(
            parse_arg("{{$.inputs.nonsense}}"),
            Err(PlaceholderError::Unknown("{{$.inputs.nonsense}}".into()))
        );
        assert!(parse_arg("{{$.inputs.parameters['a']").is_err());
    }

    struct Fixed;
    impl Resolver for Fixed {
        fn resolve(&self, r: &Reference) -> Result<String, PlaceholderError> {
            Ok(match r {
                Reference::InputParameter(n) => format!("<{n}>"),
                _ => "?".into(),
            })
        }
        fn is_present(&self, input: &str) -> bool {
            input == "here"
        }
    }

    #[test]
    fn expands_if_present_and_concat() {
        let arg = parse_arg(
            r#"{"IfPresent": {"InputName": "here", "Then": ["--a", "{\"Concat\": [\"x-\", \"{{$.inputs.parameters['here']}}\"]}"], "Else": ["no"]}}"#,
        )
        .unwrap();
        assert_eq!(arg.expand(&Fixed).unwrap(), vec!["--a", "x-<here>"]);
        let absent = parse_arg(r#"{"IfPresent": {"InputName": "gone", "Then": ["--a"]}}"#).unwrap();
        assert!(absent.expand(&Fixed).unwrap().is_empty());
        let concat = parse_arg(r#"{"Concat": ["p-", "{{$.inputs.parameters['q']}}"]}"#).unwrap();
        assert_eq!(concat.expand(&Fixed).unwrap(), vec!["p-<q>"]);
    }
}
