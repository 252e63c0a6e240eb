//! One function per command, taking resolved settings.

mod env;
mod run;

pub use env::env;
pub use run::run;
