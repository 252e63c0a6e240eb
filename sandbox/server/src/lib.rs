//! kfbox's API server: the Kubeflow Pipelines REST API (v2beta1) over the local engine and
//! store, so that the real `kfp.Client` and `kfp` CLI work against it unchanged.
//!
//! One process serves the API, executes submitted runs in-process (all runs share one pool of
//! step slots and the machine's GPU slots), and fires recurring runs. How steps execute is not
//! its business: the [`Launcher`] it is given chooses executors per pipeline.
//!
//! [`router`] is the whole HTTP surface over a [`Server`]; [`Bound`] listens and serves it.

mod error;
mod experiments;
mod files;
mod filter;
mod graph;
mod guard;
mod lab;
mod model;
pub mod openapi;
mod pipelines;
mod recurring;
mod request;
mod router;
mod routes;
mod runs;
mod serve;
mod state;
mod ui;
mod views;

pub use error::{ApiError, Code};
pub use guard::BrowserPolicy;
pub use lab::{LabBoard, LabState, LabStatus};
pub use router::router;
pub use routes::ROUTES;
pub use serve::{Bound, Stopped};
pub use state::{Counts, Launcher, Server, ServerError, ServerOptions};
