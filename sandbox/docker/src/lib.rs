//! Steps in Docker containers, as a cluster runs them: the component's image, its command as
//! the entrypoint and its args as the command, its env, CPU and memory limits and GPUs.
//!
//! Artifacts and output directories are bind-mounted at their host paths, so the URIs in the
//! ExecutorInput mean the same inside and outside; steps run as the invoking user, so what they
//! write is the user's, unless `set_security_context` names another. Every container carries labels naming the kfbox home and the process
//! that started it: a kfbox killed with -9 leaves containers that the next one removes.

mod daemon;
mod executor;
mod images;
pub mod labels;
mod user;

pub use executor::DockerExecutor;
pub use images::{build_image, has_image, load_images, save_images, tag_image, BuildContext};

pub use daemon::{connect, DockerError};
