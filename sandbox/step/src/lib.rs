//! What runs one step, and nothing else: the [`Step`] an executor receives, the [`Executor`]
//! trait, the events a run reports, and process identity (so a later kfbox can stop what a
//! killed one left running). Executors depend on this crate only, never on the scheduler or
//! the store.

mod chain;
pub mod diagnostics;
pub mod events;
mod executor;
pub mod failure;
pub mod mask;
pub mod process;
pub mod record;
mod step;

pub use chain::error_chain;
pub use events::TaskState;
pub use executor::{Executor, ExecutorError, OncePerKey};
pub use step::{
    out_of_memory_note, Mount, PodSettings, PullPolicy, SecurityContext, Step, StepExit,
    VolumeMount, VolumeSource,
};
