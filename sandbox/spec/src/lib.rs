//! The Kubeflow Pipelines v2 PipelineSpec IR: the model, loading, static validation, command
//! placeholders, parameter values and CEL expressions. Pure: no I/O beyond reading the file.

pub mod condition_text;
pub mod expr;
pub mod ir;
pub mod limits;
mod load;
pub mod placeholder;
pub mod platform;
pub mod pod_volumes;
mod validate;
pub mod value;

pub use load::{
    load_pipeline, parse_documents, parse_pipeline, pipeline_from_documents, LoadError,
    LoadedPipeline,
};
pub use validate::Problem;
