//! The kfbox engine: executes a validated PipelineSpec with the semantics of the Kubeflow
//! Pipelines v2 backend. It knows nothing of how a step runs (see [`Executor`]) nor of how
//! progress is shown (see [`events`]).

mod cache;
pub mod events;
mod executor;
mod ledger;
pub mod model;
mod params;
mod run;

pub use executor::{Executor, ExecutorError, Mount, OncePerKey, Step, StepExit};
pub use params::{
    parse_assignments, resolve_root_artifacts, resolve_root_parameters, GivenValue, ParamError,
};
pub use run::{execute, resource_name, RunOptions};

/// An error and its causes on one line, for task records and logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
