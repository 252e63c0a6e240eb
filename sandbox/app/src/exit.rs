//! How a command ends, and the exit code that says so.

use std::process::ExitCode;

/// How a kfbox command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The work succeeded.
    Success,
    /// The work ran and failed (a run FAILED or was CANCELED).
    Failure,
    /// The input was unusable or kfbox itself failed; nothing was executed. Commands do not
    /// return it: they return the error, and `main` reports it and exits with this.
    Error,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Error => ExitCode::from(2),
        }
    }
}

/// Input kfbox cannot use, with every problem found (a file with three bad parameters names
/// all three): each is reported on its own, and nothing ran.
#[derive(Debug)]
pub struct UsageError(pub Vec<anyhow::Error>);

impl UsageError {
    pub fn all(problems: impl IntoIterator<Item = anyhow::Error>) -> Self {
        Self(problems.into_iter().collect())
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| format!("{e:#}")).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for UsageError {}
