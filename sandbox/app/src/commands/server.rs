//! `kfbox up`, `kfbox status`, `kfbox down`: the API server's life.
//!
//! One server per KFBOX_HOME: it holds an exclusive lock on `server.lock` while it lives (the
//! kernel drops it when the process dies, even by kill -9) and describes itself in
//! `server.json` (address, pid, token, log), readable only by the user.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use clap::ValueEnum;
use kfbox_cli::{DownArgs, ExecutorKind, StatusArgs, UpArgs};
use kfbox_process::{ProcessExecutor, WarmWorkers};
use kfbox_python::PythonEnvs;
use kfbox_server::{Bound, BrowserPolicy, LabBoard, LabState, LabStatus, Launcher, ServerOptions};
use kfbox_spec::LoadedPipeline;
use kfbox_step::process::ProcessIdentity;
use kfbox_step::Executor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;
use crate::executors::StepRouter;
use crate::exit::ExitStatus;
use crate::instance::{new_token, running_server, try_lock, ServerInfo};
use crate::json::{Serving, StatusReport, Stopped};
use crate::printer::Printer;
use crate::settings::{listen_address, parallelism, GlobalSettings};

/// How long shutting down waits for canceled runs to record their end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

fn parse_listen(text: &str) -> anyhow::Result<SocketAddr> {
    text.parse().map_err(|_| {
        anyhow::anyhow!(
            "--listen `{text}`: expected ADDRESS:PORT, e.g. 127.0.0.1:8888 or 0.0.0.0:8888"
        )
    })
}

/// The URL clients use: a wildcard address is reached through loopback.
fn client_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

pub async fn up(
    settings: &GlobalSettings,
    printer: &Printer,
    args: UpArgs,
) -> anyhow::Result<ExitStatus> {
    let config = settings.load_config()?;
    let listen_text = listen_address(args.listen.as_deref(), &config);
    let listen = parse_listen(&listen_text)?;
    let mut generated = false;
    let token = match args.token.clone().filter(|t| !t.is_empty()) {
        Some(token) => Some(token),
        None if !listen.ip().is_loopback() => {
            generated = true;
            Some(new_token())
        }
        None => None,
    };
    if let Some(info) = running_server(settings) {
        return Err(already_running(settings, &info));
    }
    if args.detach {
        return detach(settings, printer, &args, listen, token, generated).await;
    }
    // `kfbox status` takes the lock for an instant to see whether a server holds it.
    let mut lock = try_lock(settings)?;
    for _ in 0..20 {
        if lock.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        lock = try_lock(settings)?;
    }
    let Some(_lock) = lock else {
        match running_server(settings) {
            Some(info) => return Err(already_running(settings, &info)),
            None => {
                return Err(anyhow::anyhow!(
                    "another kfbox is starting a server for {}; try again in a moment",
                    settings.home.display()
                ));
            }
        }
    };
    let store = Arc::new(settings.open_store(printer)?);
    let gpus = crate::settings::plan_gpus(&config, None, printer).await;
    let browser = BrowserPolicy {
        allowed_hosts: config.server.allowed_hosts.clone(),
        allowed_origins: config.server.allowed_origins.clone(),
    };
    let launcher = Arc::new(RouterLauncher {
        chosen: args.executor,
        config,
        envs: settings.python_envs(),
        workers: settings.warm_workers(),
        home: settings.home.path().to_owned(),
        pipeline_dir: std::env::current_dir().unwrap_or_default(),
        printer: printer.clone(),
    });
    let lab_board = LabBoard::default();
    let options = ServerOptions {
        listen,
        token: token.clone(),
        runs_dir: settings.home.runs_dir(),
        namespace: settings.home.namespace(),
        parallelism: parallelism(args.parallelism),
        gpus,
        reuse_cache: settings.cache,
        browser,
        lab: lab_board.clone(),
    };
    fs_err::create_dir_all(&options.runs_dir).context("cannot create the runs directory")?;
    let bound = Bound::bind(options, store, launcher).await?;
    let url = client_url(bound.local_addr());
    let info = ServerInfo {
        pid: std::process::id(),
        identity: ProcessIdentity::current().to_string(),
        url: url.clone(),
        started_at: Utc::now().to_rfc3339(),
        log: args.background.then(|| settings.home.server_log()),
        token: token.clone(),
        lab_url: None,
    };
    write_info(&settings.home.server_info(), &info)?;
    let terminal = if args.background {
        None
    } else {
        crate::env_progress::terminal(settings)
    };
    if !args.background {
        print_addresses(printer, &url, token.as_deref(), generated);
        if !args.no_lab {
            printer
                .data("  JupyterLab: starting (the first start installs it; its address follows)");
        }
        printer.note("Press Ctrl-C to stop (running steps are canceled and recorded).");
    }
    let lab = (!args.no_lab).then(|| {
        let path = settings.home.server_info();
        let info = info.clone();
        let block_printer = printer.clone();
        let terminal_for_block = terminal.clone();
        let url = url.clone();
        let token = token.clone();
        super::lab::BackgroundLab::start(
            settings,
            printer,
            terminal.clone(),
            lab_board,
            url.clone(),
            args.lab_port,
            move |lab_url| {
                // All the addresses again, together, now that everything answers.
                let printer = &block_printer;
                let block = || {
                    printer.data("");
                    print_addresses(printer, &url, token.as_deref(), false);
                    printer.data(&format!("  JupyterLab: {lab_url}"));
                };
                match &terminal_for_block {
                    Some(terminal) => terminal.suspend(block),
                    None => block(),
                }
                let info = ServerInfo {
                    lab_url: Some(lab_url.to_owned()),
                    ..info
                };
                if let Err(e) = write_info(&path, &info) {
                    printer.warning(&format!(
                        "cannot note the lab's address in server.json: {e:#}"
                    ));
                }
            },
        )
    });
    let counts = bound.counts();
    let status_line = (settings.interactive && !args.background)
        .then(|| tokio::spawn(show_status(terminal.clone(), counts)));
    let stopped = bound
        .serve(
            crate::signals::stop_requested(!args.background),
            SHUTDOWN_GRACE,
        )
        .await;
    if let Some(line) = status_line {
        line.abort();
    }
    if let Some(lab) = lab {
        lab.stop();
    }
    let _ = fs_err::remove_file(settings.home.server_info());
    let stopped = stopped?;
    printer.note(&format!(
        "kfbox stopped{}",
        match stopped.canceled {
            0 => String::new(),
            n => format!(": {n} running run(s) canceled"),
        }
    ));
    Ok(ExitStatus::Success)
}

fn already_running(settings: &GlobalSettings, info: &ServerInfo) -> anyhow::Error {
    anyhow::anyhow!(
        "kfbox is already serving {} at {} (pid {}); `kfbox down` stops it, or set KFBOX_HOME to start another",
        settings.home.display(),
        info.url,
        info.pid
    )
}

fn print_addresses(printer: &Printer, url: &str, token: Option<&str>, generated: bool) {
    printer.data(&format!(
        "kfbox is serving the Kubeflow Pipelines API at {url}"
    ));
    printer.data(&format!("  web UI: {url}/"));
    printer.data(&format!("  export KF_PIPELINES_ENDPOINT={url}"));
    if let Some(token) = token {
        if generated {
            printer.data(&format!(
                "  token (shown once; requests need `Authorization: Bearer TOKEN`): {token}"
            ));
        }
        printer.data("  python: kfp.Client(host=..., existing_token=TOKEN)");
    }
}

/// `server.json`, readable by its owner only (it holds the token).
fn write_info(path: &Path, info: &ServerInfo) -> anyhow::Result<()> {
    kfbox_paths::write_private_file(path, serde_json::to_string_pretty(info)?.as_bytes())?;
    Ok(())
}

/// A live line on the terminal: how many runs are running and how the others ended.
async fn show_status(
    terminal: Option<indicatif::MultiProgress>,
    counts: impl Fn() -> kfbox_server::Counts,
) {
    let bar = indicatif::ProgressBar::new_spinner();
    let bar = match terminal {
        Some(terminal) => terminal.add(bar),
        None => bar,
    };
    bar.enable_steady_tick(Duration::from_millis(120));
    loop {
        let c = counts();
        bar.set_message(format!(
            "runs: {} running · {} succeeded · {} failed · {} canceled",
            c.running, c.succeeded, c.failed, c.canceled
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Start this same command as a background server, wait until it answers, and return.
async fn detach(
    settings: &GlobalSettings,
    printer: &Printer,
    args: &UpArgs,
    listen: SocketAddr,
    token: Option<String>,
    generated: bool,
) -> anyhow::Result<ExitStatus> {
    use std::os::unix::process::CommandExt;
    settings.home.create()?;
    let log = settings.home.server_log();
    let log_file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?
        .into_parts()
        .0;
    let start_of_log = log_file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut command = std::process::Command::new(
        std::env::current_exe().context("cannot find the kfbox executable")?,
    );
    command
        .arg("--home")
        .arg(settings.home.path())
        .arg("up")
        .arg("--background")
        .arg("--listen")
        .arg(listen.to_string());
    if settings.config.1 {
        command.arg("--config").arg(&settings.config.0);
    }
    if args.no_lab {
        command.arg("--no-lab");
    }
    if let Some(port) = args.lab_port {
        command.arg("--lab-port").arg(port.to_string());
    }
    if let Some(wheelhouses) = &settings.offline {
        command.arg("--offline");
        for dir in wheelhouses {
            command.arg("--wheels").arg(dir);
        }
    }
    if let Some(python) = &settings.python {
        command.arg("--python").arg(python);
    }
    if let Some(n) = args.parallelism {
        command.arg("--parallelism").arg(n.to_string());
    }
    if let Some(value) = args.executor.and_then(|kind| kind.to_possible_value()) {
        command.arg("--executor").arg(value.get_name());
    }
    // The token travels in the environment, not on a command line others can list.
    match &token {
        Some(token) => command.env(kfbox_cli::env_vars::KFBOX_TOKEN, token),
        None => command.env_remove(kfbox_cli::env_vars::KFBOX_TOKEN),
    };
    command
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0);
    let mut child = command
        .spawn()
        .context("cannot start the background server")?;
    let started = Instant::now();
    loop {
        if let Some(info) = running_server(settings) {
            if health(&info).await.is_ok() {
                print_addresses(printer, &info.url, token.as_deref(), generated);
                if !args.no_lab {
                    printer.data(
                        "  JupyterLab: starting (the first start installs it); `kfbox status` shows its address",
                    );
                }
                printer.note(&format!(
                    "Running in the background (pid {}, log {}); `kfbox down` stops it.",
                    info.pid,
                    log.display()
                ));
                return Ok(ExitStatus::Success);
            }
        }
        if let Some(status) = child.try_wait()? {
            let text = fs_err::read_to_string(&log).unwrap_or_default();
            let tail = text.get(start_of_log as usize..).unwrap_or_default().trim();
            return Err(anyhow::anyhow!(
                "the background server exited ({status}):\n{tail}"
            ));
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(anyhow::anyhow!(
                "the background server did not answer within 60 s; see {}",
                log.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Ask the server's health endpoint; the body on success.
async fn health(info: &ServerInfo) -> anyhow::Result<String> {
    api_get(info, "/apis/v2beta1/healthz").await
}

/// JupyterLab's state as the server knows it (off when it cannot tell).
async fn lab_status(info: &ServerInfo) -> LabStatus {
    api_get(info, "/apis/v1alpha1/lab")
        .await
        .ok()
        .and_then(|body| serde_json::from_str(&body).ok())
        .unwrap_or_default()
}

/// GET one of the running server's routes: the body of a 200 answer.
async fn api_get(info: &ServerInfo, path: &str) -> anyhow::Result<String> {
    let address = info
        .url
        .strip_prefix("http://")
        .context("server.json holds no http URL")?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
        if let Some(token) = &info.token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .context("no answer within 5 s")??;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if head.starts_with("HTTP/1.1 200") {
        Ok(body.to_owned())
    } else {
        anyhow::bail!("{}", head.lines().next().unwrap_or_default())
    }
}

pub async fn status(
    settings: &GlobalSettings,
    printer: &Printer,
    args: StatusArgs,
) -> anyhow::Result<ExitStatus> {
    let Some(info) = running_server(settings) else {
        if args.json {
            let report = StatusReport::Stopped(Stopped {
                running: false,
                home: settings.home.display().to_string(),
            });
            printer.data(&serde_json::to_string(&report)?);
        } else {
            printer.data(&format!(
                "kfbox is not serving {} (`kfbox up` starts it)",
                settings.home.display()
            ));
        }
        return Ok(ExitStatus::Failure);
    };
    let health = health(&info).await;
    let lab = lab_status(&info).await;
    let running_runs = settings
        .open_store(printer)
        .ok()
        .and_then(|store| {
            let filter = kfbox_store::RunFilter {
                state: Some("RUNNING".into()),
                ..Default::default()
            };
            store.list_runs(&filter, None, 10_000).ok()
        })
        .map_or(0, |page| page.runs.len());
    if args.json {
        let report = StatusReport::Serving(Box::new(Serving {
            running: true,
            healthy: health.is_ok(),
            problem: health.as_ref().err().map(ToString::to_string),
            url: info.url.clone(),
            pid: info.pid,
            started_at: info.started_at.clone(),
            log: info.log.as_ref().map(|l| l.display().to_string()),
            lab_url: info.lab_url.clone(),
            lab: lab.clone(),
            runs_running: running_runs,
            home: settings.home.display().to_string(),
        }));
        printer.data(&serde_json::to_string_pretty(&report)?);
    } else {
        let up_for = chrono::DateTime::parse_from_rfc3339(&info.started_at)
            .map(|t| {
                crate::human::duration((Utc::now() - t.with_timezone(&Utc)).num_milliseconds())
            })
            .unwrap_or_default();
        printer.data(&format!(
            "kfbox is serving {} at {} (pid {}, up {up_for}): {}; {running_runs} run(s) running",
            settings.home.display(),
            info.url,
            info.pid,
            match &health {
                Ok(_) => "healthy".to_owned(),
                Err(e) => format!("not answering ({e})"),
            }
        ));
        match lab.state {
            LabState::Off => {}
            LabState::Starting => printer.data(&format!(
                "  JupyterLab: starting{}",
                if lab.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", lab.detail)
                }
            )),
            LabState::Ready => printer.data(&format!(
                "  JupyterLab: {}",
                lab.url
                    .as_deref()
                    .or(info.lab_url.as_deref())
                    .unwrap_or_default()
            )),
            LabState::Failed => printer.data(&format!(
                "  JupyterLab: failed: {}{}",
                lab.error.as_deref().unwrap_or_default(),
                lab.log
                    .map(|log| format!("\n  its log: {log}"))
                    .unwrap_or_default()
            )),
        }
        if let Some(log) = &info.log {
            printer.data(&format!("  log: {}", log.display()));
        }
    }
    Ok(if health.is_ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

pub async fn down(
    settings: &GlobalSettings,
    printer: &Printer,
    args: DownArgs,
) -> anyhow::Result<ExitStatus> {
    let Some(info) = running_server(settings) else {
        printer.note(&format!(
            "kfbox is not serving {}; nothing to stop",
            settings.home.display()
        ));
        return Ok(ExitStatus::Success);
    };
    let pid = nix::unistd::Pid::from_raw(info.pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .with_context(|| format!("cannot signal the server (pid {})", info.pid))?;
    printer.note(&format!(
        "stopping kfbox (pid {}): canceling running steps...",
        info.pid
    ));
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    // The kernel drops the lock while the process is still exiting: stopped means the
    // process itself has ended (a zombie counts, its reaping is its parent's business).
    while ProcessIdentity::parse(&info.identity).is_some_and(|p| p.is_alive()) {
        if Instant::now() > deadline {
            return Err(anyhow::anyhow!(
                "the server (pid {}) is still stopping after {} s; see {}",
                info.pid,
                args.timeout,
                info.log
                    .as_deref()
                    .unwrap_or(Path::new("its terminal"))
                    .display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    printer.note("kfbox stopped");
    Ok(ExitStatus::Success)
}

/// Executors for the server's runs, chosen per pipeline as for `kfbox run`.
struct RouterLauncher {
    chosen: Option<ExecutorKind>,
    config: Config,
    envs: PythonEnvs,
    /// Shared by all runs: a worker started for one run's steps serves the next run's.
    workers: WarmWorkers,
    home: PathBuf,
    /// Where relative `wasm:` paths resolve: the directory `kfbox up` started in.
    pipeline_dir: PathBuf,
    printer: Printer,
}

#[async_trait]
impl Launcher for RouterLauncher {
    async fn executor(&self, pipeline: &LoadedPipeline) -> Result<Arc<dyn Executor>, String> {
        StepRouter::prepare(
            self.chosen,
            self.config.clone(),
            ProcessExecutor::new(self.envs.clone(), self.workers.clone()),
            &pipeline.spec,
            &self.home,
            self.pipeline_dir.clone(),
            &self.printer,
        )
        .await
        .map(|router| Arc::new(router) as Arc<dyn Executor>)
        .map_err(|e| format!("{e:#}"))
    }
}
