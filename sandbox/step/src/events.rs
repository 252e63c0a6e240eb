//! Progress of a run as events, for reporters (the terminal table, the server's task phases),
//! and the states a task passes through.

use tokio::sync::mpsc;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone)]
pub enum RunEvent {
    TaskStarted {
        path: String,
    },
    TaskRetrying {
        path: String,
        attempt: u32,
        error: String,
    },
    TaskFinished {
        path: String,
        state: TaskState,
    },
    /// One line a step wrote to stdout or stderr.
    Log {
        path: String,
        line: String,
    },
    /// Something the user should know that does not stop the run.
    Warning(String),
    /// Slow set-up work (creating a Python environment, pulling an image). `fraction` is how
    /// far a download or install has come, when known; messages without one are milestones.
    Preparing {
        message: String,
        fraction: Option<f64>,
    },
    /// What a started task is busy with before its program runs (its packages installing).
    TaskPhase {
        path: String,
        phase: String,
    },
    Prepared {
        message: String,
    },
}

/// Warnings said once per key, however many tasks or attempts meet the same condition: an
/// executor is told about every attempt, and a loop can have thousands of tasks.
#[derive(Debug, Default)]
pub struct WarnOnce(std::sync::Mutex<std::collections::HashSet<String>>);

impl WarnOnce {
    /// Send `message` unless a warning with `key` was sent already.
    pub fn warn(&self, events: &EventSink, key: String, message: impl FnOnce() -> String) {
        if self.0.lock().unwrap_or_else(|e| e.into_inner()).insert(key) {
            events.send(RunEvent::Warning(message()));
        }
    }
}

/// Where events go; cloning is cheap. A closed receiver is not an error: events are advisory.
#[derive(Debug, Clone)]
pub struct EventSink(Option<mpsc::UnboundedSender<RunEvent>>);

impl EventSink {
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<RunEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(Some(tx)), rx)
    }

    pub fn discard() -> Self {
        Self(None)
    }

    pub fn send(&self, event: RunEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Still running (only seen when reading a run in progress from the store).
    Running,
    Succeeded,
    Failed,
    Skipped,
    Canceled,
    Cached,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
            Self::Canceled => "CANCELED",
            Self::Cached => "CACHED",
        }
    }

    /// The state [`TaskState::as_str`] wrote, or `None` for text it never writes.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "RUNNING" => Self::Running,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "SKIPPED" => Self::Skipped,
            "CANCELED" => Self::Canceled,
            "CACHED" => Self::Cached,
            _ => return None,
        })
    }

    /// Downstream tasks with the default trigger strategy run after these states.
    pub fn lets_dependents_run(self) -> bool {
        matches!(self, Self::Succeeded | Self::Cached | Self::Skipped)
    }
}
