//! `kfbox volumes`, `kfbox secrets` and `kfbox configmaps`: the objects `kfp.kubernetes`
//! settings refer to, kept in KFBOX_HOME as a cluster keeps them in a namespace.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct VolumesArgs {
    #[command(subcommand)]
    pub command: VolumesCommand,
}

#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// List volumes: what each claim asked for, what it holds, the run that made it.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make a volume, for pipelines that mount an existing claim
    /// (`mount_pvc(task, pvc_name='NAME', ...)`).
    Create {
        name: String,
        /// Recorded as the claim's size, not enforced.
        #[arg(long, default_value = "1Gi", value_name = "QUANTITY")]
        size: String,
        /// Recorded, not enforced; repeat for several.
        #[arg(
            long = "access-mode",
            default_value = "ReadWriteOnce",
            value_name = "MODE"
        )]
        access_modes: Vec<String>,
        #[arg(long, value_name = "NAME")]
        storage_class: Option<String>,
    },
    /// Delete volumes and the files in them.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `kfbox secrets` or `kfbox configmaps`.
#[derive(Debug, Args)]
pub struct ObjectsArgs {
    #[command(subcommand)]
    pub command: ObjectsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ObjectsCommand {
    /// Add keys to NAME (made when missing); a key given again gets the new value.
    Set {
        name: String,
        /// KEY=VALUE pairs. Values on a command line are seen by other local users and kept
        /// in shell history: prefer --from-file for credentials.
        entries: Vec<String>,
        /// KEY=PATH, or PATH (the file's name is the key): the file's contents as the value.
        #[arg(long = "from-file", value_name = "[KEY=]PATH")]
        from_file: Vec<String>,
    },
    /// List names and keys (never values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete whole objects.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// A `--from-file` argument: the key and the file.
pub fn from_file_entry(text: &str) -> (String, PathBuf) {
    match text.split_once('=') {
        Some((key, path)) => (key.to_owned(), PathBuf::from(path)),
        None => {
            let path = PathBuf::from(text);
            let key = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (key, path)
        }
    }
}
