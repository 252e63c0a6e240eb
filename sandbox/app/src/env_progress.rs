//! Progress of Python environments being built: one bar per environment on a terminal
//! (packages fetched of those needed, bytes unpacked), milestone lines elsewhere.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kfbox_python::Update;

use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub struct EnvProgress {
    printer: Printer,
    /// `None` when stderr is not a terminal (or --quiet): lines instead of bars.
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Put before every line: "lab: " for the lab's environment.
    prefix: &'static str,
}

impl EnvProgress {
    pub fn new(settings: &GlobalSettings, printer: &Printer, prefix: &'static str) -> Self {
        Self::on(terminal(settings), settings, printer, prefix)
    }

    /// Bars on a terminal shared with other bars (`kfbox up`'s status line).
    pub fn on(
        multi: Option<MultiProgress>,
        settings: &GlobalSettings,
        printer: &Printer,
        prefix: &'static str,
    ) -> Self {
        let multi = multi.filter(|_| settings.interactive && !settings.quiet);
        Self {
            printer: printer.clone(),
            multi,
            bars: Mutex::default(),
            prefix,
        }
    }

    pub fn update(&self, update: Update) {
        let prefix = self.prefix;
        let Some(multi) = &self.multi else {
            match update {
                Update::Step { .. } => self.printer.note(&format!("{prefix}{update} ...")),
                Update::Packages { done: 0, total, .. } if total > 0 => self.printer.note(
                    &format!("{prefix}{}: fetching {total} packages", env_of(&update)),
                ),
                Update::Packages { .. } => {}
                Update::Ready { .. } => self.printer.note(&format!("{prefix}{update}")),
            }
            return;
        };
        let env = env_of(&update).to_owned();
        let mut bars = self.bars.lock().expect("bars lock");
        let bar = bars.entry(env.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg}")
                    .expect("static template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            bar.set_prefix(format!("{prefix}{env}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        match update {
            Update::Step { message, .. } => bar.set_message(message.to_owned()),
            Update::Packages {
                done, total, bytes, ..
            } => {
                if total > 0 && bar.length() != Some(total as u64) {
                    bar.set_length(total as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {prefix} [{bar:24}] {pos}/{len} packages, {msg}",
                        )
                        .expect("static template")
                        .progress_chars("=> ")
                        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
                    );
                }
                bar.set_position(done as u64);
                bar.set_message(format!("{:.1} MiB", bytes as f64 / 1_048_576.0));
            }
            Update::Ready { seconds, .. } => {
                bar.finish_and_clear();
                multi.remove(bar);
                bars.remove(&env);
                let _ = multi.println(format!(
                    "{} {prefix}{env} ready ({seconds} s)",
                    style("✓").green()
                ));
            }
        }
    }
}

/// Where live bars go: stderr, when it is a terminal and not --quiet.
pub fn terminal(settings: &GlobalSettings) -> Option<MultiProgress> {
    (settings.interactive && !settings.quiet)
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8)))
}

fn env_of<'a>(update: &Update<'a>) -> &'a str {
    match *update {
        Update::Step { env, .. } | Update::Packages { env, .. } | Update::Ready { env, .. } => env,
    }
}
