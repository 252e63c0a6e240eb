//! Recognising the SDK's lightweight Python components.
//!
//! The compiler wraps them in `sh -c '<pip install ...> && "$0" "$@"' sh -ec '<run executor_main>'
//! <source> ...`. kfbox drops the install prelude, installs what it asked for into a managed
//! environment once, and runs the rest of the command line with that environment first on PATH.

/// What a lightweight component asked pip for, minus the SDK itself (or what kfbox's own lab
/// needs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Requirements {
    /// Requirement specifiers, sorted and de-duplicated.
    pub packages: Vec<String>,
    /// `--index-url`, `--extra-index-url`, `--trusted-host` and their values.
    pub pip_options: Vec<String>,
    /// Packages left out even when a dependency asks for them (never set from a component).
    pub excluded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LightweightStep {
    pub requirements: Requirements,
    /// The SDK pin the component was compiled with, e.g. `kfp==2.7.0`.
    pub sdk_pin: Option<String>,
    /// The command line without the install prelude.
    pub argv: Vec<String>,
}

impl LightweightStep {
    pub fn detect(argv: &[String]) -> Option<Self> {
        if !argv.iter().any(|a| a.contains("kfp.dsl.executor_main")) {
            return None;
        }
        let [shell, flag, script, rest @ ..] = argv else {
            return None;
        };
        if !matches!(shell.as_str(), "sh" | "bash" | "/bin/sh" | "/bin/bash")
            || flag != "-c"
            || !script.trim_end().ends_with("\"$0\" \"$@\"")
            || !script.contains("pip install")
            || rest.is_empty()
        {
            return None;
        }
        let mut requirements = Requirements::default();
        let mut sdk_pin = None;
        for segment in script.split("pip install").skip(1) {
            let words = shell_words(segment.split("&&").next().unwrap_or_default());
            let mut words = words.into_iter();
            while let Some(word) = words.next() {
                match word.as_str() {
                    "--index-url" | "--extra-index-url" | "--trusted-host" | "-i" => {
                        if let Some(value) = words.next() {
                            if !requirements
                                .pip_options
                                .windows(2)
                                .any(|w| w[0] == word && w[1] == value)
                            {
                                requirements.pip_options.push(word);
                                requirements.pip_options.push(value);
                            }
                        }
                    }
                    w if w.starts_with('-') => {}
                    w if is_sdk(w) => sdk_pin = Some(w.to_owned()),
                    // Only needed on Pythons kfbox does not support.
                    w if w.contains("python_version<\"3.9\"")
                        || w.contains("python_version < \"3.9\"") => {}
                    w => requirements.packages.push(w.to_owned()),
                }
            }
        }
        requirements.packages.sort();
        requirements.packages.dedup();
        Some(Self {
            requirements,
            sdk_pin,
            argv: rest.to_vec(),
        })
    }

    /// The component's source as the compiler wrote it (its imports and its function, the
    /// decorator left out): the argument after the script that runs the SDK's executor.
    pub fn source(&self) -> Option<&str> {
        let at = self
            .argv
            .iter()
            .position(|a| a.contains("kfp.dsl.executor_main"))?;
        self.argv.get(at + 1).map(String::as_str)
    }

    /// The function the executor calls (`--function_to_execute`).
    pub fn function(&self) -> Option<&str> {
        self.flag("--function_to_execute")
    }

    /// The ExecutorInput the step was given (`--executor_input`).
    pub fn executor_input(&self) -> Option<serde_json::Value> {
        serde_json::from_str(self.flag("--executor_input")?).ok()
    }

    fn flag(&self, name: &str) -> Option<&str> {
        let at = self.argv.iter().position(|a| a == name)?;
        self.argv.get(at + 1).map(String::as_str)
    }
}

fn is_sdk(requirement: &str) -> bool {
    let name: String = requirement
        .chars()
        .take_while(|c| {
            c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '[' || *c == ']'
        })
        .collect();
    name == "kfp" || name.starts_with("kfp[")
}

/// Split POSIX shell words with single and double quotes, stopping at a newline-separated
/// command (enough for the prelude the compiler writes).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut has_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    current.push(q);
                }
            }
            '"' => {
                has_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                current.push(escaped);
                            }
                        }
                        _ => current.push(q),
                    }
                }
            }
            '\n' | ';' => break,
            c if c.is_whitespace() => {
                if has_word {
                    words.push(std::mem::take(&mut current));
                    has_word = false;
                }
            }
            c => {
                has_word = true;
                current.push(c);
            }
        }
    }
    if has_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(script: &str) -> Vec<String> {
        [
            "sh",
            "-c",
            script,
            "sh",
            "-ec",
            "python3 -m kfp.dsl.executor_main",
            "src",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn drops_the_sdk_and_keeps_extra_packages() {
        let script = "\nif ! [ -x \"$(command -v pip)\" ]; then\n    python3 -m ensurepip\nfi\n\nPIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location --index-url https://pypi.org/simple --trusted-host https://pypi.org/simple 'yapf'  &&  python3 -m pip install --quiet --no-warn-script-location 'kfp==2.14.3' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"' && \"$0\" \"$@\"\n";
        let step = LightweightStep::detect(&argv(script)).unwrap();
        assert_eq!(step.requirements.packages, vec!["yapf"]);
        assert_eq!(
            step.requirements.pip_options,
            vec![
                "--index-url",
                "https://pypi.org/simple",
                "--trusted-host",
                "https://pypi.org/simple"
            ]
        );
        assert_eq!(step.sdk_pin.as_deref(), Some("kfp==2.14.3"));
        assert_eq!(step.argv[0], "sh");
        assert_eq!(step.argv.len(), 4);
        assert_eq!(step.source(), Some("src"));
        assert_eq!(step.function(), None);
    }

    #[test]
    fn reads_the_function_and_its_input() {
        let mut with_flags = argv("pip install x && \"$0\" \"$@\"\n");
        with_flags.extend(
            [
                "--executor_input",
                r#"{"inputs":{}}"#,
                "--function_to_execute",
                "train",
            ]
            .map(String::from),
        );
        let step = LightweightStep::detect(&with_flags).unwrap();
        assert_eq!(step.function(), Some("train"));
        assert_eq!(
            step.executor_input(),
            Some(serde_json::json!({"inputs": {}}))
        );
        assert_eq!(step.source(), Some("src"));
    }

    #[test]
    fn ignores_other_commands() {
        assert!(LightweightStep::detect(&["echo".to_string(), "hi".to_string()]).is_none());
    }
}
