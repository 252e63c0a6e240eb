//! A failed step's failure in words, for its task's error: what kfbox's component runner
//! wrote about the exception a Python component raised, or, for any other step, the last
//! lines it wrote to stderr (a Python traceback among them read as the runner would).

use std::collections::VecDeque;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The variable that tells a step's runtime where to describe its failure.
pub const FAILURE_FILE_ENV: &str = "KFBOX_FAILURE_FILE";

/// How many of the last stderr lines a step's failure keeps.
const TAIL_LINES: usize = 40;

/// How many of them a task's error shows when no exception was recognised.
const SHOWN_LINES: usize = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The exception as Python prints its last line: `ZeroDivisionError: division by zero`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
    /// Where it was raised in the component's own code: `train.py:14`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The step's last stderr lines, when nothing better was said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stderr: Vec<String>,
}

impl Failure {
    /// What the file at `path` says, if a step (or its executor) wrote one.
    pub fn read(path: &Path) -> Option<Self> {
        let text = fs_err::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Write the stderr tail to `path`, unless the step's runtime described its failure there.
    pub fn write_tail_unless_described(path: &Path, tail: &StderrTail) -> std::io::Result<()> {
        if path.exists() || tail.lines.is_empty() {
            return Ok(());
        }
        let failure = Self {
            stderr: tail.lines.iter().cloned().collect(),
            ..Self::default()
        };
        fs_err::write(
            path,
            serde_json::to_vec(&failure).expect("strings serialize"),
        )
    }

    /// The task's error for a step that exited with `code`.
    pub fn describe(&self, code: i32) -> String {
        let (exception, location) = match &self.exception {
            Some(exception) => (Some(exception.clone()), self.location.clone()),
            None => python_traceback(&self.stderr),
        };
        match (exception, location) {
            (Some(exception), Some(location)) => format!("{exception} ({location})"),
            (Some(exception), None) => exception,
            (None, _) => {
                let shown: Vec<&str> = self
                    .stderr
                    .iter()
                    .map(|l| l.trim_end())
                    .filter(|l| !l.is_empty())
                    .collect();
                let shown = &shown[shown.len().saturating_sub(SHOWN_LINES)..];
                if shown.is_empty() {
                    format!("the step exited with code {code} (see its log)")
                } else {
                    format!("the step exited with code {code}: {}", shown.join("\n"))
                }
            }
        }
    }
}

/// The exception line and the innermost frame's `file:line` of the last Python traceback
/// in `lines`.
fn python_traceback(lines: &[String]) -> (Option<String>, Option<String>) {
    let Some(start) = lines
        .iter()
        .rposition(|l| l.starts_with("Traceback (most recent call last):"))
    else {
        return (None, None);
    };
    let mut location = None;
    let mut exception = None;
    for line in &lines[start + 1..] {
        if let Some(frame) = line.trim_start().strip_prefix("File \"") {
            // `File "/path/train.py", line 14, in main`
            if let Some((file, rest)) = frame.split_once("\", line ") {
                let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let name = Path::new(file)
                    .file_name()
                    .map_or_else(|| file.to_owned(), |n| n.to_string_lossy().into_owned());
                location = Some(format!("{name}:{number}"));
            }
        } else if !line.starts_with(' ') && !line.trim().is_empty() {
            exception = Some(line.trim().to_owned());
        }
    }
    let location = location.filter(|_| exception.is_some());
    (exception, location)
}

/// The last lines a step wrote to stderr.
#[derive(Debug, Default)]
pub struct StderrTail {
    lines: VecDeque<String>,
}

impl StderrTail {
    pub fn push(&mut self, line: &str) {
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(lines: &[&str]) -> Failure {
        Failure {
            stderr: lines.iter().map(|l| (*l).to_owned()).collect(),
            ..Failure::default()
        }
    }

    #[test]
    fn the_runners_words_come_first() {
        let said = Failure {
            exception: Some("ZeroDivisionError: division by zero".into()),
            location: Some("train.py:14".into()),
            stderr: Vec::new(),
        };
        assert_eq!(
            said.describe(1),
            "ZeroDivisionError: division by zero (train.py:14)"
        );
    }

    #[test]
    fn a_traceback_in_stderr_is_read_as_python_prints_it() {
        let failure = tail(&[
            "starting",
            "Traceback (most recent call last):",
            "  File \"/app/main.py\", line 3, in <module>",
            "    run()",
            "  File \"/app/train.py\", line 14, in run",
            "    return 1 / y",
            "           ~~^~~",
            "ZeroDivisionError: division by zero",
        ]);
        assert_eq!(
            failure.describe(1),
            "ZeroDivisionError: division by zero (train.py:14)"
        );
    }

    #[test]
    fn other_steps_show_their_last_stderr_lines() {
        let failure = tail(&["a", "", "cat: /x: No such file", "b", "c"]);
        assert_eq!(
            failure.describe(2),
            "the step exited with code 2: cat: /x: No such file\nb\nc"
        );
        assert_eq!(
            Failure::default().describe(3),
            "the step exited with code 3 (see its log)"
        );
        let mut long = StderrTail::default();
        for i in 0..100 {
            long.push(&i.to_string());
        }
        assert_eq!(long.lines.len(), TAIL_LINES);
        assert_eq!(long.lines.back().map(String::as_str), Some("99"));
    }
}
