//! Progress of a run as events, for reporters (terminal table, JSON, later the server).

use tokio::sync::mpsc;

use crate::model::TaskState;

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
