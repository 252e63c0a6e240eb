//! One function per command, taking resolved settings.

mod artifacts;
mod check;
mod cluster;
mod debug;
mod doctor;
mod env;
mod images;
mod lab;
mod namespace;
mod remote_run;
mod run;
mod runs;
mod server;

pub use artifacts::{artifacts, lineage};
pub use check::check;
pub use cluster::cluster;
pub use debug::debug;
pub use doctor::doctor;
pub use env::env;
pub use images::images;
pub use lab::lab;
pub use namespace::{objects, volumes};
pub use run::run;
pub use runs::{logs, runs};
pub use server::{down, status, up};
