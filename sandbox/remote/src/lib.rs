//! A client of the Kubeflow Pipelines v2beta1 REST API, for `kfbox run --target`: it sends a
//! compiled pipeline to any KFP endpoint (a cluster's, a shared one, or `kfbox up`'s own) and
//! follows the run. Only the few calls a run needs, in the API's own JSON shape.

mod client;
mod error;
mod model;
mod target;

pub use client::Client;
pub use error::RemoteError;
pub use model::{NewRun, RemoteRun, RemoteTask, RuntimeConfig, RuntimeState, Status};
pub use target::{ClientTls, Target};
