//! The kfbox engine: executes a validated PipelineSpec with the semantics of the Kubeflow
//! Pipelines v2 backend. It knows nothing of how a step runs (see `kfbox_step::Executor`)
//! nor of how progress is shown (see `kfbox_step::events`).

mod cache;
mod launch;
mod ledger;
pub mod model;
mod params;
pub mod recorded;
mod scheduler;

pub use launch::{launch, Launch, LaunchError, LaunchedRun, Runtime};
pub use params::{
    parse_assignments, resolve_root_artifacts, resolve_root_parameters, GivenValue, ParamError,
};
