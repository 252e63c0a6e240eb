//! Live progress of a run on stderr: a spinner per running task on a terminal, plain lines
//! otherwise. Step logs are streamed with a task prefix only on a terminal.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kfbox_engine::model::TaskState;
use kfbox_step::events::RunEvent;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::human::{shown, shown_lines};
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub struct Reporter {
    printer: Printer,
    live: Option<Live>,
    started: HashMap<String, Instant>,
    finished: usize,
    /// Tasks whose SDK executor is printing its ExecutorInput dump.
    in_sdk_dump: std::collections::HashSet<String>,
}

struct Live {
    multi: MultiProgress,
    header: ProgressBar,
    tasks: HashMap<String, ProgressBar>,
    preparing: Option<ProgressBar>,
}

fn spinner_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("static template")
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

pub fn state_label(state: TaskState) -> String {
    let text = state.as_str();
    match state {
        TaskState::Running => style(format!("… {text}")).blue().to_string(),
        TaskState::Succeeded => style(format!("✓ {text}")).green().to_string(),
        TaskState::Cached => style(format!("✓ {text}")).cyan().to_string(),
        TaskState::Failed => style(format!("✗ {text}")).red().bold().to_string(),
        TaskState::Skipped => style(format!("- {text}")).dim().to_string(),
        TaskState::Canceled => style(format!("■ {text}")).yellow().to_string(),
    }
}

impl Reporter {
    pub fn new(settings: &GlobalSettings, printer: Printer, title: &str) -> Self {
        let live = (settings.interactive && !settings.quiet).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let header = multi.add(ProgressBar::new_spinner());
            header.set_style(spinner_style("{spinner} {msg} {elapsed}"));
            header.enable_steady_tick(Duration::from_millis(100));
            header.set_message(format!("running {}", style(shown(title)).bold()));
            Live {
                multi,
                header,
                tasks: HashMap::new(),
                preparing: None,
            }
        });
        Self {
            printer,
            live,
            started: HashMap::new(),
            finished: 0,
            in_sdk_dump: Default::default(),
        }
    }

    fn line(&self, text: &str) {
        match &self.live {
            Some(live) => {
                let _ = live.multi.println(text);
            }
            None => self.printer.note(text),
        }
    }

    pub async fn consume(mut self, mut events: UnboundedReceiver<RunEvent>) {
        while let Some(event) = events.recv().await {
            self.handle(event);
        }
        if let Some(live) = self.live.take() {
            live.header.finish_and_clear();
            if let Some(bar) = live.preparing {
                bar.finish_and_clear();
            }
            let _ = live.multi.clear();
        }
    }

    fn handle(&mut self, event: RunEvent) {
        match event {
            RunEvent::Preparing { message, fraction } => {
                let Some(live) = &mut self.live else {
                    // Without a live view, say what is slow, but not every count.
                    if fraction.is_none() {
                        self.printer.note(&format!("{message} ..."));
                    }
                    return;
                };
                let bar = live.preparing.get_or_insert_with(|| {
                    let bar = live.multi.add(ProgressBar::new_spinner());
                    bar.set_style(spinner_style("{spinner} {wide_msg}"));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar
                });
                bar.set_message(message);
            }
            RunEvent::Prepared { message } => {
                if let Some(bar) = self.live.as_mut().and_then(|l| l.preparing.take()) {
                    bar.finish_and_clear();
                }
                self.line(&format!("{} {message}", style("✓").green()));
            }
            RunEvent::TaskPhase { path, phase } => {
                if let Some(bar) = self.live.as_ref().and_then(|l| l.tasks.get(&path)) {
                    let shown_path = shown(&path);
                    bar.set_message(if phase.is_empty() {
                        shown_path.into_owned()
                    } else {
                        format!("{shown_path}  {}", style(phase).dim())
                    });
                }
            }
            RunEvent::TaskStarted { path } => {
                self.started.insert(path.clone(), Instant::now());
                if let Some(live) = &mut self.live {
                    let bar = live.multi.add(ProgressBar::new_spinner());
                    bar.set_style(spinner_style("  {spinner} {msg} {elapsed}"));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar.set_message(shown(&path).into_owned());
                    live.tasks.insert(path, bar);
                }
                self.update_header();
            }
            RunEvent::TaskRetrying {
                path,
                attempt,
                error,
            } => self.line(&format!(
                "{} {}: attempt {attempt} failed ({}); retrying",
                style("↻").yellow(),
                shown(&path),
                shown(&error)
            )),
            RunEvent::TaskFinished { path, state } => {
                if let Some(bar) = self.live.as_mut().and_then(|l| l.tasks.remove(&path)) {
                    bar.finish_and_clear();
                }
                let took = self
                    .started
                    .remove(&path)
                    .map(|t| {
                        format!(
                            " {}",
                            style(format!("{:.1}s", t.elapsed().as_secs_f64())).dim()
                        )
                    })
                    .unwrap_or_default();
                self.finished += 1;
                self.line(&format!("{} {}{took}", state_label(state), shown(&path)));
                self.update_header();
            }
            RunEvent::Log { path, line } => {
                // The step's own output goes out as it wrote it (colours included), as
                // `docker logs` does; it runs as the user and could reach the terminal anyway.
                if self.live.is_some() && !self.is_sdk_noise(&path, &line) {
                    let prefix = format!("{} │", shown(&path));
                    self.line(&format!("{} {line}", style(prefix).dim()));
                }
            }
            RunEvent::Warning(text) => match &self.live {
                Some(live) => {
                    let _ = live.multi.println(format!(
                        "{} {}",
                        style("warning:").yellow().bold(),
                        shown_lines(&text)
                    ));
                }
                None => self.printer.warning(&text),
            },
        }
    }

    /// The SDK executor's own diagnostics (its `[KFP Executor ...]` lines and the ExecutorInput
    /// it dumps) would bury what the component prints; they stay in the task's log file.
    fn is_sdk_noise(&mut self, path: &str, line: &str) -> bool {
        if self.in_sdk_dump.contains(path) {
            if line == "}" {
                self.in_sdk_dump.remove(path);
            }
            return true;
        }
        if line.starts_with("[KFP Executor ") {
            if line.ends_with("Got executor_input:") {
                self.in_sdk_dump.insert(path.to_owned());
            }
            return true;
        }
        false
    }

    fn update_header(&self) {
        if let Some(live) = &self.live {
            let running = live.tasks.len();
            let base = live.header.message();
            let title = base.split(" · ").next().unwrap_or_default().to_owned();
            live.header.set_message(format!(
                "{title} · {} finished · {running} running",
                self.finished
            ));
        }
    }
}
