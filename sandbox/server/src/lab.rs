//! JupyterLab's state as the process that starts it reports it (`kfbox up` starts the lab on a
//! thread of its own while the API answers), for the UI's sidebar and `kfbox status`.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LabState {
    /// Not started with this server (`--no-lab`).
    #[default]
    Off,
    Starting,
    Ready,
    Failed,
}

/// JupyterLab beside this server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LabStatus {
    pub state: LabState,
    /// What the start is busy with, e.g. `Python environment with jupyterlab==4.6.6: 12/79
    /// packages, 30.2 MiB`.
    #[serde(default)]
    pub detail: String,
    /// How far the install has come (0 to 1), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// The lab's address with its token, once it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Why it did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The log that tells the whole story: the installer's while installing, the lab's after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// Where the lab's starter writes its state and the API reads it; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct LabBoard(Arc<RwLock<LabStatus>>);

impl LabBoard {
    pub fn set(&self, status: LabStatus) {
        *self.0.write().expect("lab board lock") = status;
    }

    pub fn get(&self) -> LabStatus {
        self.0.read().expect("lab board lock").clone()
    }
}
