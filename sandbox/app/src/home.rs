//! `KFBOX_HOME`'s layout: the one place that knows where each file lives.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A kfbox home (`KFBOX_HOME`, by default the user's data directory's `kfbox`).
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn display(&self) -> std::path::Display<'_> {
        self.root.display()
    }

    /// Create the home (owner-only) when it does not exist yet.
    pub fn create(&self) -> anyhow::Result<()> {
        kfbox_paths::create_private_dir_all(&self.root).context("cannot create KFBOX_HOME")
    }

    /// The run store, which ML Metadata reads too.
    pub fn store_file(&self) -> PathBuf {
        self.root.join(kfbox_store::STORE_FILE)
    }

    /// One directory per run: artifacts, logs, step scratch space, `summary.json`.
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Managed Python environments, uv and its cache, installer logs.
    pub fn python_dir(&self) -> PathBuf {
        self.root.join("python")
    }

    /// The local stand-in for the cluster namespace: volumes, secrets and config maps.
    pub fn namespace(&self) -> kfbox_namespace::Namespace {
        kfbox_namespace::Namespace::new(&self.root)
    }

    /// `kfbox.toml`, unless `--config` names another.
    pub fn config_file(&self) -> PathBuf {
        self.root.join("kfbox.toml")
    }

    /// What the server running for this home says about itself (see `instance`).
    pub fn server_info(&self) -> PathBuf {
        self.root.join("server.json")
    }

    /// Held by the server while it runs: one server per home.
    pub fn server_lock(&self) -> PathBuf {
        self.root.join("server.lock")
    }

    /// The log of a server started with `--detach`.
    pub fn server_log(&self) -> PathBuf {
        self.root.join("server.log")
    }

    pub fn lab_log(&self) -> PathBuf {
        self.root.join("lab.log")
    }

    /// The lab's notebooks and codelabs.
    /// A cluster's kubeconfig, as `kfbox cluster up` last wrote it (`name` is checked).
    pub fn cluster_kubeconfig(&self, name: &str) -> PathBuf {
        self.root
            .join("clusters")
            .join(name)
            .join("kubeconfig.yaml")
    }

    /// Where `kfbox debug` runs tasks again, one directory per debug run.
    pub fn debug_dir(&self) -> PathBuf {
        self.root.join("debug")
    }

    /// Where a Python pipeline file is compiled, one temporary directory per compile.
    pub fn compile_dir(&self) -> PathBuf {
        self.root.join("compile")
    }

    pub fn workspace(&self) -> PathBuf {
        kfbox_lab::workspace_dir(&self.root)
    }
}
