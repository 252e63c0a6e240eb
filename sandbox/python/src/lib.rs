//! Python environments that kfbox manages under its data directory.
//!
//! One base environment holds the `kfp` SDK. A component with `packages_to_install` gets an
//! environment of its own per distinct requirement set, layered on the base one through a `.pth`
//! file, so it never reinstalls the SDK and a task whose requirements are met never installs
//! anything. Environments are built under a file lock and marked ready last, so concurrent kfbox
//! processes share one build and an interrupted build (kill -9) is detected and redone.
//!
//! Environments are made and filled by uv (see `installer`), with whatever Python the user has
//! (a distribution's, python.org's, pyenv's, conda's): uv needs neither pip nor `venv` from it,
//! builds source-only packages with current build tools, and fetches in parallel. Its cache
//! (`<root>/uv-cache`) is what makes an environment built once rebuildable offline; wheelhouses
//! from `kfbox env bundle` set up a machine that never had a network.

mod compile;
mod envs;
mod error;
mod installer;
mod inventory;
mod lightweight;
mod progress;
mod uv;

pub use compile::{compile_file, Choice, CompileError, CompiledFile, FunctionSource, WarmCompiler};
pub use envs::{find_program, Env, EnvInfo, PythonEnvs, SDK_REQUIREMENT, SEED_PACKAGES};
pub use error::PythonError;
pub use installer::UV_VERSION;
pub use lightweight::{LightweightStep, Requirements};
pub use progress::{Progress, Update};
