//! JupyterLab: `kfbox lab` alone, and the lab `kfbox up` starts beside its server.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use indicatif::MultiProgress;
use kfbox_cli::LabArgs;
use kfbox_lab::{workspace, Lab, LabOptions, LAB_EXCLUDED, LAB_REQUIREMENTS};
use kfbox_python::Requirements;
use kfbox_server::{LabBoard, LabState, LabStatus};

use crate::env_progress::EnvProgress;
use crate::exit::ExitStatus;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

const DEFAULT_PORT: u16 = 8889;
/// Generous: the first start on a slow disk compiles JupyterLab's Python files.
const READY_LIMIT: Duration = Duration::from_secs(120);

/// Install the lab's environment (first use only), bring the workspace up to date, start the
/// lab and wait until it answers. Blocking: pip may run for minutes.
fn start(
    settings: &GlobalSettings,
    printer: &Printer,
    progress: &EnvProgress,
    board: &LabBoard,
    api_url: &str,
    port: Option<u16>,
) -> anyhow::Result<Lab> {
    let requirements = Requirements {
        packages: LAB_REQUIREMENTS.iter().map(|r| (*r).to_owned()).collect(),
        excluded: LAB_EXCLUDED.iter().map(|r| (*r).to_owned()).collect(),
        ..Requirements::default()
    };
    let envs = settings.python_envs();
    let env = envs
        .for_requirements(&requirements, &|update| {
            progress.update(update);
            board.set(LabStatus {
                state: LabState::Starting,
                detail: update.to_string(),
                fraction: update.fraction(),
                ..LabStatus::default()
            });
        })
        .context("cannot prepare JupyterLab's Python environment")?;
    board.set(LabStatus {
        state: LabState::Starting,
        detail: "starting JupyterLab".into(),
        log: Some(settings.home.lab_log().display().to_string()),
        ..LabStatus::default()
    });
    let dir = settings.home.workspace();
    let report = workspace::sync(&dir, &workspace::shipped())?;
    if !report.kept.is_empty() {
        printer.note(&format!(
            "lab: kept your edits of {} (kfbox ships a newer copy; delete yours to get it)",
            report.kept.join(", ")
        ));
    }
    let listen = choose_port(port)?;
    let mut lab = Lab::start(LabOptions {
        python: env.python,
        workspace: dir,
        listen,
        token: crate::instance::new_token(),
        api_url: api_url.to_owned(),
        home: settings.home.path().to_owned(),
        kfbox_dir: std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(ToOwned::to_owned))
            .unwrap_or_default(),
        log: settings.home.lab_log(),
    })?;
    lab.wait_ready(READY_LIMIT)?;
    Ok(lab)
}

/// The port asked for (which must be free), else 8889, else any free one.
fn choose_port(asked: Option<u16>) -> anyhow::Result<SocketAddr> {
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if let Some(port) = asked {
        TcpListener::bind(at(port))
            .with_context(|| format!("--port {port}: cannot listen on 127.0.0.1:{port}"))?;
        return Ok(at(port));
    }
    if TcpListener::bind(at(DEFAULT_PORT)).is_ok() {
        return Ok(at(DEFAULT_PORT));
    }
    let any = TcpListener::bind(at(0)).context("cannot find a free port for JupyterLab")?;
    Ok(at(any.local_addr()?.port()))
}

/// The log an error of a lab start points to: the installer's when an environment failed.
fn log_of(error: &anyhow::Error) -> Option<PathBuf> {
    error.chain().find_map(|cause| {
        cause
            .downcast_ref::<kfbox_python::PythonError>()
            .and_then(|e| e.log())
            .map(ToOwned::to_owned)
    })
}

/// `kfbox lab`: the lab alone, against the server running for this home.
pub async fn lab(
    settings: &GlobalSettings,
    printer: &Printer,
    args: LabArgs,
) -> anyhow::Result<ExitStatus> {
    let Some(server) = crate::instance::running_url(settings) else {
        return Err(anyhow::anyhow!(
            "no kfbox server is running for {}; start one with `kfbox up --no-lab` (or plain `kfbox up`, which starts the lab too)",
            settings.home.display()
        ));
    };
    // Watched from the start: a Ctrl-C right after the address is printed must stop the lab,
    // not kill kfbox and leave the lab running.
    let stop = crate::signals::stop_requested(true);
    let lab = {
        let settings = settings.clone();
        let printer = printer.clone();
        tokio::task::spawn_blocking(move || {
            let progress = EnvProgress::new(&settings, &printer, "lab: ");
            start(
                &settings,
                &printer,
                &progress,
                &LabBoard::default(),
                &server,
                args.port,
            )
        })
        .await?
    };
    let lab = lab?;
    printer.data(&format!("  JupyterLab: {}", lab.url()));
    printer.note("Press Ctrl-C to stop the lab (and its kernels).");
    stop.await;
    drop(lab);
    printer.note("JupyterLab stopped");
    Ok(ExitStatus::Success)
}

/// The lab `kfbox up` runs beside its server, started on a thread of its own so that the API
/// answers while pip works, and stopped with the server.
#[derive(Default)]
pub struct BackgroundLab {
    slot: Arc<Mutex<LabSlot>>,
}

#[derive(Default)]
struct LabSlot {
    /// Held so that dropping it stops the lab.
    lab: Option<Lab>,
    stopped: bool,
}

impl BackgroundLab {
    /// Start the lab, its state kept on `board`; `on_ready` gets its address once it answers.
    /// Progress bars go to `terminal` (shared with `kfbox up`'s own status line) when it is
    /// interactive.
    pub fn start(
        settings: &GlobalSettings,
        printer: &Printer,
        terminal: Option<MultiProgress>,
        board: LabBoard,
        api_url: String,
        port: Option<u16>,
        on_ready: impl FnOnce(&str) + Send + 'static,
    ) -> Self {
        let this = Self::default();
        let slot = this.slot.clone();
        let (settings, printer) = (settings.clone(), printer.clone());
        board.set(LabStatus {
            state: LabState::Starting,
            ..LabStatus::default()
        });
        // A plain thread: the runtime would wait for a blocking task (the installer) before it
        // could exit.
        std::thread::spawn(move || {
            let progress = EnvProgress::on(terminal, &settings, &printer, "lab: ");
            match start(&settings, &printer, &progress, &board, &api_url, port) {
                Ok(lab) => {
                    let mut slot = slot.lock().expect("lab slot lock");
                    if slot.stopped {
                        return;
                    }
                    board.set(LabStatus {
                        state: LabState::Ready,
                        url: Some(lab.url()),
                        log: Some(settings.home.lab_log().display().to_string()),
                        ..LabStatus::default()
                    });
                    on_ready(&lab.url());
                    slot.lab = Some(lab);
                }
                Err(e) => {
                    board.set(LabStatus {
                        state: LabState::Failed,
                        error: Some(format!("{e:#}")),
                        log: log_of(&e)
                            .or_else(|| Some(settings.home.lab_log()))
                            .map(|log| log.display().to_string()),
                        ..LabStatus::default()
                    });
                    printer.error(&e.context(
                        "JupyterLab did not start (the API and UI run on; `kfbox lab` tries again)",
                    ))
                }
            }
        });
        this
    }

    /// Stop the lab, or keep it from starting.
    pub fn stop(&self) {
        let lab = {
            let mut slot = self.slot.lock().expect("lab slot lock");
            slot.stopped = true;
            slot.lab.take()
        };
        drop(lab);
    }
}
