//! WebAssembly steps: a container component whose image is `wasm:<path to a .wasm file>` runs
//! as a WASI (preview 1) command module inside kfbox, in wasmtime.
//!
//! The module sees what a container would see of the step and nothing else: its command and
//! args as argv, the container's env, and only the step's own directories (input artifacts
//! read-only, output directories read-write) preopened at their host paths, so the artifact
//! paths in its arguments work unchanged. No sockets, a memory cap and a wall-clock limit
//! (epoch interruption, which also serves cancellation).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use kfbox_step::events::{EventSink, RunEvent};
use kfbox_step::{Executor, ExecutorError, Step, StepExit};
use tokio_util::sync::CancellationToken;
use wasmtime::{
    Config, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The image prefix that marks a WebAssembly step.
pub const SCHEME: &str = "wasm:";

/// How often the epoch advances: the resolution of the time limit and of cancellation.
const TICK: Duration = Duration::from_millis(10);

/// Limits for modules that set none in the IR.
#[derive(Debug, Clone, Copy)]
pub struct WasiLimits {
    /// Linear memory per module, unless the component sets a memory limit.
    pub memory_bytes: u64,
    pub time_limit: Duration,
}

impl Default for WasiLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 * 1024 * 1024,
            time_limit: Duration::from_secs(600),
        }
    }
}

/// The module file an image names: `wasm:/abs/path.wasm`, or a path relative to `base`
/// (the pipeline file's directory). `None` for images that are not WebAssembly.
pub fn module_path(image: &str, base: &Path) -> Option<PathBuf> {
    let path = Path::new(image.strip_prefix(SCHEME)?.trim_start_matches("//"));
    Some(if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    })
}

pub struct WasiExecutor {
    engine: Engine,
    base: PathBuf,
    limits: WasiLimits,
    /// Compiled modules by path and modification time: a loop over one module compiles once.
    modules: ModuleCache,
}

type ModuleCache = Arc<Mutex<HashMap<(PathBuf, SystemTime), Module>>>;

impl WasiExecutor {
    pub fn new(base: PathBuf, limits: WasiLimits) -> Result<Self, ExecutorError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(|e| ExecutorError::Environment(format!("cannot start wasmtime: {e}")))?;
        Ok(Self {
            engine,
            base,
            limits,
            modules: ModuleCache::default(),
        })
    }
}

/// The compiled module at `path`, from `cache` when the file has not changed. Compiling takes
/// milliseconds to seconds, so it runs on a blocking thread, never on the async workers.
fn load_module(engine: &Engine, cache: &ModuleCache, path: &Path) -> Result<Module, ExecutorError> {
    let unrunnable = |what: String| ExecutorError::Unrunnable(what);
    let modified = fs_err::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| unrunnable(format!("cannot read WebAssembly module: {e}")))?;
    let key = (path.to_owned(), modified);
    if let Some(module) = cache.lock().expect("module cache lock").get(&key) {
        return Ok(module.clone());
    }
    let module = Module::from_file(engine, path).map_err(|e| {
        unrunnable(format!(
            "{} is not a WebAssembly module wasmtime can compile: {e}",
            path.display()
        ))
    })?;
    cache
        .lock()
        .expect("module cache lock")
        .insert(key, module.clone());
    Ok(module)
}

#[async_trait]
impl Executor for WasiExecutor {
    fn shares_host_files(&self, _step: &Step) -> bool {
        false
    }

    async fn run(
        &self,
        step: &Step,
        events: &EventSink,
        cancel: &CancellationToken,
    ) -> Result<StepExit, ExecutorError> {
        let path = module_path(&step.image, &self.base).ok_or_else(|| {
            ExecutorError::Unrunnable(format!("image `{}` is not a `{SCHEME}` image", step.image))
        })?;
        if !step.masked.is_empty() {
            // A module writes straight to the log file, where nothing could mask them.
            return Err(ExecutorError::Unrunnable(
                "WebAssembly steps cannot read Secrets: kfbox could not keep their values out of the step's log; use a container step".into(),
            ));
        }
        let limits = WasiLimits {
            memory_bytes: step
                .resources
                .memory_limit
                .unwrap_or(self.limits.memory_bytes),
            ..self.limits
        };
        let canceled = Arc::new(AtomicBool::new(false));
        let done = CancellationToken::new();
        // The epoch ticks only while a module runs; cancellation is seen at the next tick.
        let ticker = tokio::spawn({
            let engine = self.engine.clone();
            let canceled = canceled.clone();
            let cancel = cancel.clone();
            let done = done.clone();
            async move {
                let mut interval = tokio::time::interval(TICK);
                loop {
                    tokio::select! {
                        _ = interval.tick() => engine.increment_epoch(),
                        _ = cancel.cancelled() => {
                            canceled.store(true, Ordering::SeqCst);
                            engine.increment_epoch();
                            done.cancelled().await;
                            return;
                        }
                        _ = done.cancelled() => return,
                    }
                }
            }
        });
        // What the module prints goes straight to the log file; the lines are passed on to
        // the terminal when it ends (most modules run in milliseconds).
        let logged_before = fs_err::metadata(&step.log_path).map_or(0, |m| m.len());
        let engine = self.engine.clone();
        let cache = self.modules.clone();
        let task_path = step.task_path.clone();
        let log_path = step.log_path.clone();
        let step = step.clone();
        let outcome = tokio::task::spawn_blocking({
            let canceled = canceled.clone();
            move || {
                let module = load_module(&engine, &cache, &path)?;
                run_module(&engine, &module, &step, limits, canceled)
            }
        })
        .await;
        done.cancel();
        let _ = ticker.await;
        if let Ok(log) = fs_err::read(&log_path) {
            let printed =
                String::from_utf8_lossy(log.get(logged_before as usize..).unwrap_or_default());
            for line in printed.lines() {
                events.send(RunEvent::Log {
                    path: task_path.clone(),
                    line: line.to_owned(),
                });
            }
        }
        match outcome {
            Ok(result) => result,
            Err(e) => Err(ExecutorError::Environment(format!(
                "the WebAssembly step panicked: {e}"
            ))),
        }
    }
}

struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

fn run_module(
    engine: &Engine,
    module: &Module,
    step: &Step,
    limits: WasiLimits,
    canceled: Arc<AtomicBool>,
) -> Result<StepExit, ExecutorError> {
    let log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&step.log_path)
        .map_err(|source| ExecutorError::Io {
            path: step.log_path.clone(),
            source,
        })?;
    let note = |line: &str| {
        use std::io::Write;
        let _ = writeln!(&log, "kfbox: {line}");
    };
    let log_file = log.file().try_clone().map_err(|source| ExecutorError::Io {
        path: step.log_path.clone(),
        source,
    })?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(&step.argv())
        .envs(&step.env)
        .stdout(wasmtime_wasi::cli::OutputFile::new(
            log_file.try_clone().map_err(|source| ExecutorError::Io {
                path: step.log_path.clone(),
                source,
            })?,
        ))
        .stderr(wasmtime_wasi::cli::OutputFile::new(log_file));
    let mut preopened: Vec<(PathBuf, bool)> = Vec::new();
    for mount in &step.mounts {
        // Directories are opened as themselves; a file artifact through its directory,
        // read-only (WASI preopens only directories).
        let (dir, writable) = if mount.path.is_dir() {
            (mount.path.clone(), mount.writable)
        } else {
            match mount.path.parent() {
                Some(parent) => (parent.to_owned(), false),
                None => continue,
            }
        };
        if preopened.iter().any(|(d, _)| *d == dir) || !dir.is_dir() {
            continue;
        }
        let perms = if writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        let guest = dir.display().to_string();
        wasi.preopened_dir(&dir, &guest, perms).map_err(|e| {
            ExecutorError::Environment(format!("cannot open {guest} for the module: {e}"))
        })?;
        preopened.push((dir, writable));
    }
    // The pod's volumes at their mount paths (a memory-backed one as its directory).
    for volume in &step.volumes {
        let perms = if volume.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        let guest = volume.target.display().to_string();
        wasi.preopened_dir(volume.source.dir(), &guest, perms)
            .map_err(|e| {
                ExecutorError::Environment(format!(
                    "cannot open volume {guest} for the module: {e}"
                ))
            })?;
    }
    let memory = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
    let mut store = Store::new(
        engine,
        State {
            wasi: wasi.build_p1(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory)
                .trap_on_grow_failure(true)
                .build(),
        },
    );
    store.limiter(|state| &mut state.limits);
    let started = Instant::now();
    let timed_out = Arc::new(AtomicBool::new(false));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback({
        let canceled = canceled.clone();
        let timed_out = timed_out.clone();
        move |_| {
            if canceled.load(Ordering::SeqCst) {
                return Ok(UpdateDeadline::Interrupt);
            }
            if started.elapsed() > limits.time_limit {
                timed_out.store(true, Ordering::SeqCst);
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(1))
        }
    });
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut State| &mut state.wasi)
        .map_err(|e| ExecutorError::Environment(format!("cannot link WASI: {e}")))?;
    let result = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    let exit = match result {
        Ok(()) => StepExit::Exited(0),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                StepExit::Exited(exit.0)
            } else if canceled.load(Ordering::SeqCst) {
                return Ok(StepExit::Canceled);
            } else if timed_out.load(Ordering::SeqCst) {
                note(&format!(
                    "the module ran past its time limit of {:.1}s and was stopped",
                    limits.time_limit.as_secs_f64()
                ));
                StepExit::Exited(124)
            } else if format!("{e:?}").contains("forcing trap when growing memory") {
                note(&format!(
                    "the module asked for more than its memory limit of {} MiB and was stopped",
                    limits.memory_bytes / (1024 * 1024)
                ));
                StepExit::Exited(137)
            } else {
                note(&format!("the module trapped: {e:?}"));
                StepExit::Exited(1)
            }
        }
    };
    if exit != StepExit::Exited(0) {
        let reach: Vec<String> = preopened
            .iter()
            .map(|(dir, writable)| {
                format!(
                    "{} ({})",
                    dir.display(),
                    if *writable { "read-write" } else { "read-only" }
                )
            })
            .collect();
        note(&format!(
            "this WebAssembly step can open only: {}; no other files, no network",
            if reach.is_empty() {
                "nothing".to_owned()
            } else {
                reach.join(", ")
            }
        ));
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_images_name_module_files() {
        let base = Path::new("/pipelines");
        assert_eq!(
            module_path("wasm:/opt/steps/count.wasm", base),
            Some(PathBuf::from("/opt/steps/count.wasm"))
        );
        assert_eq!(
            module_path("wasm:steps/count.wasm", base),
            Some(PathBuf::from("/pipelines/steps/count.wasm"))
        );
        assert_eq!(
            module_path("wasm:///opt/count.wasm", base),
            Some(PathBuf::from("/opt/count.wasm"))
        );
        assert_eq!(module_path("python:3.11", base), None);
    }
}
