//! A run's summary as a table: `kfbox run` prints it when the run ends, `kfbox runs get`
//! from the store.

use chrono::DateTime;
use console::style;
use kfbox_engine::model::{RunState, RunSummary};
use kfbox_spec::value::value_to_text;

use crate::human::shown;
use crate::reporter::state_label;

pub(crate) fn seconds_between(start: &str, end: &str) -> Option<f64> {
    let start = DateTime::parse_from_rfc3339(start).ok()?;
    let end = DateTime::parse_from_rfc3339(end).ok()?;
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

pub(crate) fn render_summary(summary: &RunSummary) -> String {
    let mut out = String::new();
    let took = seconds_between(&summary.started_at, &summary.finished_at).unwrap_or_default();
    let state = match summary.state {
        RunState::Succeeded => style(summary.state.as_str()).green().bold(),
        RunState::Failed => style(summary.state.as_str()).red().bold(),
        RunState::Canceled => style(summary.state.as_str()).yellow().bold(),
        RunState::Running => style(summary.state.as_str()).blue().bold(),
    };
    out.push_str(&format!(
        "Run {} of {}: {state} in {took:.1}s\n",
        summary.run_id,
        style(shown(&summary.pipeline)).bold()
    ));
    // 2 + 14 + 1 + 2 + 8 + 2 + 7 leaves 44 of 80 columns for the task path.
    let width = summary
        .tasks
        .iter()
        .map(|t| t.path.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 44);
    out.push_str(&format!(
        "  {:<14} {:<width$}  {:>8}  {:>7}\n",
        "STATE", "TASK", "ATTEMPTS", "TIME"
    ));
    for task in &summary.tasks {
        let took = match (&task.started_at, &task.finished_at) {
            (Some(s), Some(f)) => {
                seconds_between(s, f).map_or(String::new(), |t| format!("{t:.1}s"))
            }
            _ => String::new(),
        };
        let label = state_label(task.state);
        let pad = 14usize.saturating_sub(console::measure_text_width(&label));
        out.push_str(&format!(
            "  {label}{} {:<width$}  {:>8}  {:>7}\n",
            " ".repeat(pad),
            crate::human::fit_left(&task.path, width),
            // A task that never started (skipped, cached, not reached) made no attempt.
            if task.attempts == 0 {
                "-".to_owned()
            } else {
                task.attempts.to_string()
            },
            took
        ));
        // Errors run to several lines (an installer's last ones, a hint): each indented.
        if let Some(error) = &task.error {
            for line in crate::human::shown_lines(error).lines() {
                out.push_str(&format!("      {}\n", style(line).red()));
            }
        }
        if let Some(reason) = &task.reason {
            out.push_str(&format!("      {}\n", style(shown(reason)).dim()));
        }
    }
    if !summary.outputs.is_empty() {
        out.push_str("Outputs:\n");
        for (name, value) in &summary.outputs {
            out.push_str(&format!(
                "  {} = {}\n",
                shown(name),
                shown(&value_to_text(value))
            ));
        }
    }
    match &summary.page {
        Some(page) => out.push_str(&format!("In the UI: {page}")),
        None => out.push_str(&format!("Logs and artifacts: {}", summary.run_dir)),
    }
    out
}
