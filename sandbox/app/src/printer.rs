//! The one place that writes to stdout and stderr. stdout carries data; stderr the rest.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use console::style;

use crate::human::shown_lines;

#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
}

impl Printer {
    /// `quiet`: notes and warnings are left out; data and errors never are.
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// Data for the user or for another program.
    pub fn data(&self, text: &str) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        match writeln!(out, "{text}").and_then(|()| out.flush()) {
            Ok(()) => {}
            // A reader that stopped reading (`kfbox env | head -1`) is not our failure; the
            // command's own exit status still stands.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => eprintln!(
                "{} cannot write to stdout: {e}",
                style("error:").red().bold()
            ),
        }
    }

    /// Progress and notes; hidden by --quiet. Callers style them, and pass names from a
    /// pipeline file or a request through [`crate::human::shown`].
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Warnings and errors often quote names from a pipeline file or a request (the engine's
    /// warnings, load errors): their control characters are escaped here.
    pub fn warning(&self, text: &str) {
        if !self.quiet {
            eprintln!(
                "{} {}",
                style("warning:").yellow().bold(),
                shown_lines(text)
            );
        }
    }

    pub fn error(&self, error: &anyhow::Error) {
        let mut text = format!(
            "{} {}",
            style("error:").red().bold(),
            shown_lines(&error.to_string())
        );
        for cause in error.chain().skip(1) {
            text.push_str(&format!(
                "\n  caused by: {}",
                shown_lines(&cause.to_string())
            ));
        }
        eprintln!("{text}");
    }
}
