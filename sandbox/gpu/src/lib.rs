//! GPUs on this machine and who may use them.
//!
//! Discovery asks `nvidia-smi` (the one tool every NVIDIA driver ships); the slots hand whole
//! GPUs to steps, first come first served, as a Kubernetes device plugin does: a step asking
//! for two GPUs waits until two are free rather than sharing one with a running step.

mod detect;
mod product;
mod slots;

pub use detect::{cuda_version, detect, Gpu, Inventory};
pub use product::{ProductSelector, PRODUCT_LABELS};
pub use slots::{Admission, GpuLease, GpuPlan, GpuPolicy, GpuSlots};
