//! `kfbox run --watch`: file events (inotify, through `notify`) on the pipeline file and the
//! local modules its compile loaded. Their directories are watched, not the files, so that an
//! editor that saves by writing a new file and renaming it over the old one is seen; a burst
//! of events (one save) is one change.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

/// How long a burst of events must have been quiet to be one change.
const QUIET: Duration = Duration::from_millis(100);

pub struct FileWatch {
    watcher: notify::RecommendedWatcher,
    events: UnboundedReceiver<PathBuf>,
    /// The files watched, by real path.
    files: BTreeSet<PathBuf>,
    /// Their directories, watched.
    dirs: BTreeSet<PathBuf>,
}

impl FileWatch {
    pub fn new() -> anyhow::Result<Self> {
        let (sender, events) = unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else {
                return;
            };
            if matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            ) {
                for path in event.paths {
                    let _ = sender.send(path);
                }
            }
        })
        .context("cannot watch files for changes")?;
        Ok(Self {
            watcher,
            events,
            files: BTreeSet::new(),
            dirs: BTreeSet::new(),
        })
    }

    /// Watch exactly `files` from now on (those that exist).
    pub fn set_files(&mut self, files: &[PathBuf]) -> anyhow::Result<()> {
        let files: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| fs_err::canonicalize(f).ok())
            .collect();
        let dirs: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_owned))
            .collect();
        for gone in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for new in dirs.difference(&self.dirs) {
            self.watcher
                .watch(new, RecursiveMode::NonRecursive)
                .with_context(|| format!("cannot watch {} for changes", new.display()))?;
        }
        self.files = files;
        self.dirs = dirs;
        Ok(())
    }

    /// The files watched.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(PathBuf::as_path)
    }

    /// The next change to a watched file, once its burst of events is quiet; the file.
    pub async fn changed(&mut self) -> PathBuf {
        loop {
            let Some(path) = self.events.recv().await else {
                return std::future::pending().await;
            };
            if !self.files.contains(&path) {
                continue;
            }
            while let Ok(Some(_)) = tokio::time::timeout(QUIET, self.events.recv()).await {}
            return path;
        }
    }
}
