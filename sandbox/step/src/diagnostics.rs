//! A step's log holds the component's own lines and, around them, diagnostics: the SDK
//! executor's (`[KFP Executor ...]`, every line of its ExecutorInput dump and of its traceback
//! frames marked so by kfbox's component runner) and kfbox's own notes (`[kfbox] ...`). Log
//! views show the component's lines by default; nothing is dropped from the stored log.

/// Whether a log line is a diagnostic rather than the component's own output.
pub fn is_diagnostic(line: &str) -> bool {
    line.starts_with("[KFP Executor") || line.starts_with("[kfbox]")
}

/// Drops diagnostic lines from a log read in chunks of bytes, which may end inside a line
/// (never inside a character of a whole line: a newline is one byte).
#[derive(Debug, Default)]
pub struct ComponentLines {
    partial: Vec<u8>,
}

impl ComponentLines {
    /// The component's whole lines in `chunk` (with what earlier chunks left unfinished).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.partial.extend_from_slice(chunk);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        keep(&whole)
    }

    /// What is left at the end of the log: a last line without a newline.
    pub fn finish(&mut self) -> Vec<u8> {
        let last = std::mem::take(&mut self.partial);
        keep(&last)
    }
}

fn keep(bytes: &[u8]) -> Vec<u8> {
    bytes
        .split_inclusive(|b| *b == b'\n')
        .filter(|line| !is_diagnostic(&String::from_utf8_lossy(line)))
        .flatten()
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_are_dropped_across_chunk_boundaries() {
        let mut lines = ComponentLines::default();
        let mut shown = lines.feed(b"[KFP Executor 2026 INFO]: Got executor_input:\n[KFP Ex");
        shown.extend(lines.feed(b"ecutor] {\ntraining with 3\n[kfbox] skipped the prelude\nTrace"));
        shown.extend(
            lines.feed(b"back (most recent call last):\nZeroDivisionError: division by zero"),
        );
        shown.extend(lines.finish());
        assert_eq!(
            String::from_utf8(shown).unwrap(),
            "training with 3\nTraceback (most recent call last):\nZeroDivisionError: division by zero"
        );
    }
}
