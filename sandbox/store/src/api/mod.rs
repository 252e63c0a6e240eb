//! What the API server keeps beside ML Metadata, as the backend keeps it in its own database:
//! one module per resource.

mod experiments;
mod pipelines;
mod recurring;
mod runs;
#[cfg(test)]
mod tests;
mod versions;

pub(crate) use experiments::default_experiment_id;
pub use experiments::{ExperimentRow, DEFAULT_EXPERIMENT};
pub use pipelines::PipelineRow;
pub use recurring::RecurringRunRow;
pub use runs::{ApiRunFields, ApiRunRow};
pub use versions::PipelineVersionRow;
