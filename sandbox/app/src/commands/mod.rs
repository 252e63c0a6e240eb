//! One function per command, taking resolved settings.

mod artifacts;
mod env;
mod run;
mod runs;

pub use artifacts::{artifacts, lineage};
pub use env::env;
pub use run::run;
pub use runs::{logs, runs};
