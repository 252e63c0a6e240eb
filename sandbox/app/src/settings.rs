//! Arguments, environment and defaults resolved once, into plain settings.

use std::path::PathBuf;

use kfbox_cli::{env_vars, ColorChoice, GlobalArgs};

use crate::home::Home;
use crate::printer::Printer;

#[derive(Debug, Clone)]
pub struct GlobalSettings {
    pub home: Home,
    pub python: Option<String>,
    pub quiet: bool,
    pub color: bool,
    /// Reuse cached executions (`KFBOX_CACHE=off` turns it off for every command).
    pub cache: bool,
    /// Fork Python steps from warm workers (`KFBOX_WARM=off` turns it off).
    pub warm: bool,
    /// stderr is a terminal: live progress and streamed logs.
    pub interactive: bool,
    /// `kfbox.toml`, and whether it was named (`--config`), so that its absence is an error.
    pub config: (PathBuf, bool),
    /// `Some` offline: Python packages come only from the wheel cache and these wheelhouses.
    pub offline: Option<Vec<PathBuf>>,
}

impl GlobalSettings {
    pub fn resolve(args: &GlobalArgs) -> Self {
        use std::io::IsTerminal;
        let interactive = std::io::stderr().is_terminal();
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => interactive && std::env::var_os(env_vars::NO_COLOR).is_none(),
        };
        console::set_colors_enabled_stderr(color);
        console::set_colors_enabled(color);
        let home = args.home.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("kfbox")
        });
        // Artifact URIs and the paths steps name are checked against the run directory, which
        // must not depend on where a command was started.
        let home = std::path::absolute(&home).unwrap_or(home);
        let switched_off = |name: &str| {
            std::env::var(name).is_ok_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "off" | "0" | "false" | "no"
                )
            })
        };
        let cache = !switched_off(env_vars::KFBOX_CACHE);
        let warm = !switched_off(env_vars::KFBOX_WARM);
        let home = Home::new(home);
        let config = match &args.config {
            Some(path) => (path.clone(), true),
            None => (home.config_file(), false),
        };
        Self {
            config,
            offline: args.offline.then(|| args.wheels.iter().cloned().collect()),
            home,
            python: args.python.clone(),
            quiet: args.quiet,
            color,
            interactive,
            cache,
            warm,
        }
    }

    /// The managed Python environments, offline when asked.
    pub fn python_envs(&self) -> kfbox_python::PythonEnvs {
        let envs = kfbox_python::PythonEnvs::new(self.home.python_dir(), self.python.clone());
        match &self.offline {
            Some(wheelhouses) => envs.offline(wheelhouses.clone()),
            None => envs,
        }
    }

    /// Warm Python workers for the executors of one command (`kfbox up`: of all its runs).
    pub fn warm_workers(&self) -> kfbox_process::WarmWorkers {
        if self.warm {
            kfbox_process::WarmWorkers::on()
        } else {
            kfbox_process::WarmWorkers::off()
        }
    }

    pub fn load_config(&self) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::Config::load(&self.config.0, self.config.1)
    }

    /// Open the store (creating `KFBOX_HOME` and the file on first use), and say which runs
    /// were found abandoned by a dead kfbox.
    pub fn open_store(&self, printer: &Printer) -> anyhow::Result<kfbox_store::Store> {
        self.open_store_with(printer, kfbox_store::Store::open)
    }

    /// Open the store for commands that only read: these work read-only when the store cannot
    /// be written (a full disk, a read-only home).
    pub fn open_store_for_reading(&self, printer: &Printer) -> anyhow::Result<kfbox_store::Store> {
        self.open_store_with(printer, kfbox_store::Store::open_for_reading)
    }

    fn open_store_with(
        &self,
        printer: &Printer,
        open: fn(&std::path::Path) -> Result<kfbox_store::Store, kfbox_store::StoreError>,
    ) -> anyhow::Result<kfbox_store::Store> {
        use anyhow::Context;
        self.home.create()?;
        let path = self.home.store_file();
        let store =
            open(&path).with_context(|| format!("cannot open the run store {}", path.display()))?;
        for message in store.recovered() {
            printer.warning(message);
        }
        Ok(store)
    }
}

// What each command is given: a flag, else `kfbox.toml`, else the default, decided here.

/// Where `kfbox up` listens without `--listen` or `server.listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8888";

/// Steps at once: `--parallelism`, else as many as [`default_parallelism`] allows.
pub fn parallelism(flag: Option<u32>) -> usize {
    flag.map_or_else(default_parallelism, |n| n as usize).max(1)
}

/// The address `kfbox up` listens on: `--listen`, else `server.listen`, else loopback.
pub fn listen_address(flag: Option<&str>, config: &crate::config::Config) -> String {
    flag.map(str::to_owned)
        .or(config.server.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned())
}

/// Steps mostly wait (on imports, I/O, sleeps, the network), so more of them than cores can
/// usefully overlap; four per core, at least eight, keeps a 2-core laptop busy without
/// thrashing it.
fn default_parallelism() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 4).max(8)
}

pub fn init_tracing(settings: &GlobalSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env_vars::KFBOX_LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(settings.color)
        .without_time()
        .try_init();
}

/// The machine's GPUs and what requests do without them (`--gpu`, else `gpu.policy`).
pub(crate) async fn plan_gpus(
    config: &crate::config::Config,
    choice: Option<kfbox_cli::GpuChoice>,
    printer: &Printer,
) -> kfbox_gpu::GpuPlan {
    let policy = match choice.or(config.gpu.policy) {
        Some(kfbox_cli::GpuChoice::Require) => kfbox_gpu::GpuPolicy::Require,
        Some(kfbox_cli::GpuChoice::Prefer) | None => kfbox_gpu::GpuPolicy::Prefer,
        Some(kfbox_cli::GpuChoice::Ignore) => kfbox_gpu::GpuPolicy::Ignore,
    };
    let inventory = tokio::task::spawn_blocking(kfbox_gpu::detect)
        .await
        .unwrap_or_default();
    if let Some(problem) = &inventory.problem {
        printer.warning(&format!("no GPU will be used: {problem}"));
    }
    let models = inventory.gpus.into_iter().map(|gpu| gpu.name).collect();
    kfbox_gpu::GpuPlan::new(models, config.gpu.share, policy)
}
