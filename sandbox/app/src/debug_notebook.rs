//! The notebook `kfbox debug --notebook` writes: a recorded task's inputs as Python objects
//! (first cell), the component's function as the compiler wrote it (second), and the task as
//! it ran, through the SDK's own executor (third), so the error comes back where the user can
//! poke at it.

use std::path::Path;

use serde_json::{json, Value};

/// What the notebook is made from.
pub struct DebugNotebook<'a> {
    /// e.g. "task `train` of run 1a2b3c4d".
    pub title: String,
    /// The ExecutorInput, its output paths already fresh ones.
    pub executor_input: &'a Value,
    pub source: &'a str,
    pub function: &'a str,
    /// The step's environment variables (Secrets' values already left out).
    pub env: &'a [(String, String)],
    /// The environment that holds the component's `packages_to_install`, when it asked for any.
    pub packages_env: Option<&'a Path>,
}

impl DebugNotebook<'_> {
    /// The notebook, as nbformat 4.5 JSON, for the lab's Python 3 kernel.
    pub fn render(&self) -> Value {
        let cells = [
            self.inputs_cell(),
            self.source.trim_start_matches('\n').to_owned(),
            self.run_cell(),
        ];
        json!({
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {
                    "name": "python3",
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python"
                },
                "language_info": {"name": "python"}
            },
            "cells": cells.iter().enumerate().map(|(i, text)| json!({
                "id": format!("kfbox-debug-{}", i + 1),
                "cell_type": "code",
                "metadata": {},
                "execution_count": null,
                "outputs": [],
                "source": text,
            })).collect::<Vec<_>>(),
        })
    }

    fn inputs_cell(&self) -> String {
        let mut cell = format!(
            "# {}, on the inputs it had (written by `kfbox debug --notebook`).\n\
             # Artifacts are the SDK's artifact objects: `.path` is the file (what an `InputPath`\n\
             # argument gets), `.uri` and `.metadata` as recorded.\n\n",
            self.title
        );
        if let Some(env) = self.packages_env {
            cell.push_str(&format!(
                "# What the component asked pip for, from its kfbox-managed environment.\n\
                 import glob\n\
                 import sys\n\n\
                 sys.path[:0] = glob.glob({} + \"/lib/python*/site-packages\")\n\n",
                python_literal(&Value::String(env.display().to_string()), 0)
            ));
        }
        if !self.env.is_empty() {
            let env: serde_json::Map<String, Value> = self
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            cell.push_str(&format!(
                "# The step's environment variables.\nimport os\n\nos.environ.update({})\n\n",
                python_literal(&Value::Object(env), 0)
            ));
        }
        let inputs = &self.executor_input["inputs"];
        let mut lines = Vec::new();
        for (name, value) in inputs["parameterValues"].as_object().into_iter().flatten() {
            if is_identifier(name) {
                lines.push(format!("{name} = {}", python_literal(value, 0)));
            }
        }
        let input_artifacts = artifact_lines(&inputs["artifacts"], "inputs");
        let outputs = artifact_lines(&self.executor_input["outputs"]["artifacts"], "outputs");
        if !input_artifacts.is_empty() || !outputs.is_empty() {
            cell.push_str("from kfp.dsl.executor import create_artifact_instance\n\n");
        }
        lines.extend(input_artifacts);
        cell.push_str(&format!(
            "executor_input = {}\n",
            python_literal(self.executor_input, 0)
        ));
        if !lines.is_empty() {
            cell.push_str("\n# Inputs\n");
            cell.push_str(&lines.join("\n"));
            cell.push('\n');
        }
        if !outputs.is_empty() {
            cell.push_str("\n# Output artifacts, in a fresh directory (the run's are untouched)\n");
            cell.push_str(&outputs.join("\n"));
            cell.push('\n');
        }
        cell
    }

    fn run_cell(&self) -> String {
        format!(
            "# The task as it ran: the SDK's executor calls `{f}` with the inputs above and writes\n\
             # its outputs. Or call `{f}(...)` yourself with the objects above.\n\
             from kfp.dsl.executor import Executor\n\n\
             Executor(executor_input, {f}).execute()\n",
            f = self.function
        )
    }
}

/// `name = create_artifact_instance(...)` for each artifact input or output with a name Python
/// accepts (a list of them where the step got several).
fn artifact_lines(artifacts: &Value, side: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, list) in artifacts.as_object().into_iter().flatten() {
        let count = list["artifacts"].as_array().map_or(0, Vec::len);
        if !is_identifier(name) || count == 0 {
            continue;
        }
        let key = python_literal(&Value::String(name.clone()), 0);
        let at = format!("executor_input[\"{side}\"][\"artifacts\"][{key}][\"artifacts\"]");
        lines.push(if count == 1 {
            format!("{name} = create_artifact_instance({at}[0])")
        } else {
            format!("{name} = [create_artifact_instance(a) for a in {at}]")
        });
    }
    lines
}

/// A name the notebook can bind: the component's parameter names are Python identifiers, and
/// anything else in a hostile spec stays reachable through `executor_input` only.
pub fn is_identifier(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield",
    ];
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
        && !matches!(name, "os" | "sys" | "glob" | "executor_input")
        && !name.starts_with("create_artifact_instance")
}

/// A JSON value as a Python literal, laid out over lines when it is long. JSON's string
/// escapes are Python's too.
fn python_literal(value: &Value, indent: usize) -> String {
    let flat = flat_literal(value);
    if flat.len() + indent <= 88 {
        return flat;
    }
    let inner = " ".repeat(indent + 4);
    let close = " ".repeat(indent);
    match value {
        Value::Array(items) => format!(
            "[\n{}\n{close}]",
            items
                .iter()
                .map(|v| format!("{inner}{},", python_literal(v, indent + 4)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Value::Object(map) => format!(
            "{{\n{}\n{close}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{inner}{}: {},",
                    Value::String(k.clone()),
                    python_literal(v, indent + 4)
                ))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        _ => flat,
    }
}

fn flat_literal(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(_) | Value::String(_) => value.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(flat_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), flat_literal(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_python() {
        let value = json!({"a": [1, 2.5, true, null], "b\"": "x\ny"});
        assert_eq!(
            python_literal(&value, 0),
            r#"{"a": [1, 2.5, True, None], "b\"": "x\ny"}"#
        );
        let long = json!({"first": "a".repeat(50), "second": ["b".repeat(50)]});
        assert_eq!(
            python_literal(&long, 0),
            format!(
                "{{\n    \"first\": \"{}\",\n    \"second\": [\"{}\"],\n}}",
                "a".repeat(50),
                "b".repeat(50)
            )
        );
    }

    #[test]
    fn only_python_names_are_bound() {
        assert!(is_identifier("rows_2"));
        for name in ["2rows", "import", "a-b", "", "os", "a b", "é"] {
            assert!(!is_identifier(name), "{name}");
        }
    }

    #[test]
    fn the_cells_load_inputs_define_the_function_and_run_it() {
        let input = json!({
            "inputs": {
                "parameterValues": {"skip": 3, "bad-name": 1},
                "artifacts": {"rows": {"artifacts": [{"name": "rows", "uri": "/a/rows",
                    "type": {"schemaTitle": "system.Dataset"}, "metadata": {}}]}}
            },
            "outputs": {"outputFile": "/d/out.json"}
        });
        let notebook = DebugNotebook {
            title: "task `mean` of run 1a2b3c4d".to_owned(),
            executor_input: &input,
            source: "def mean(rows, skip):\n    return 1 / 0\n",
            function: "mean",
            env: &[("LEVEL".to_owned(), "2".to_owned())],
            packages_env: None,
        }
        .render();
        let cells: Vec<&str> = notebook["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["source"].as_str().unwrap())
            .collect();
        assert!(cells[0].contains("\nskip = 3\n"), "{}", cells[0]);
        assert!(!cells[0].contains("bad-name ="), "{}", cells[0]);
        assert!(
            cells[0].contains(
                "rows = create_artifact_instance(executor_input[\"inputs\"][\"artifacts\"][\"rows\"][\"artifacts\"][0])"
            ),
            "{}",
            cells[0]
        );
        assert!(cells[0].contains("os.environ.update({\"LEVEL\": \"2\"})"));
        assert!(!cells[0].contains("glob"));
        assert_eq!(cells[1], "def mean(rows, skip):\n    return 1 / 0\n");
        assert!(cells[2].ends_with("Executor(executor_input, mean).execute()\n"));
    }
}
