//! The kfbox engine: executes a validated PipelineSpec with the semantics of the Kubeflow
//! Pipelines v2 backend. It knows nothing of how a step runs (see [`Executor`]) nor of how
//! progress is shown (see [`events`]).

pub mod events;
mod executor;
pub mod model;
mod params;
mod run;

pub use executor::{Executor, ExecutorError, Step, StepExit};
pub use params::{parse_assignments, resolve_root_parameters, ParamError};
pub use run::{execute, RunOptions};
