//! The kfbox server running for a home, as other commands find it: `server.json` says where
//! it listens, and the lock it holds while it lives tells a live server from a stale file.

use std::fs::File;

use kfbox_step::process::ProcessIdentity;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::settings::GlobalSettings;

/// What `server.json` says about the running server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerInfo {
    pub(crate) pid: u32,
    /// `<pid> <start time>`: tells a live server from a reused pid.
    pub(crate) identity: String,
    pub(crate) url: String,
    pub(crate) started_at: String,
    pub(crate) log: Option<PathBuf>,
    pub(crate) token: Option<String>,
    /// JupyterLab's address with its token, once the lab answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) lab_url: Option<String>,
}

/// The server lock, or `None` when another process holds it.
pub(crate) fn try_lock(settings: &GlobalSettings) -> anyhow::Result<Option<Flock<File>>> {
    settings.home.create()?;
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(settings.home.server_lock())?
        .into_parts()
        .0;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(anyhow::anyhow!(e).context("cannot lock server.lock")),
    }
}

/// The server serving this home, if one is alive.
pub(crate) fn running_server(settings: &GlobalSettings) -> Option<ServerInfo> {
    let text = fs_err::read_to_string(settings.home.server_info()).ok()?;
    let info: ServerInfo = serde_json::from_str(&text).ok()?;
    // A server holds the lock while it lives; a killed one that nobody reaped yet does not.
    let holds_lock = matches!(try_lock(settings), Ok(None));
    (holds_lock && ProcessIdentity::parse(&info.identity).is_some_and(|p| p.is_alive()))
        .then_some(info)
}

/// What the server running for this home listens on: (what, URL) for the API and the lab.
pub(crate) fn running_addresses(settings: &GlobalSettings) -> Vec<(String, String)> {
    let Some(info) = running_server(settings) else {
        return Vec::new();
    };
    let mut addresses = vec![(format!("this kfbox's API (pid {})", info.pid), info.url)];
    if let Some(lab) = info.lab_url {
        addresses.push((format!("this kfbox's JupyterLab (pid {})", info.pid), lab));
    }
    addresses
}

/// The URL of the server running for this home, if one is.
pub(crate) fn running_url(settings: &GlobalSettings) -> Option<String> {
    running_server(settings).map(|info| info.url)
}

/// A fresh bearer token (API or lab).
pub(crate) fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}
