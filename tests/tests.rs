//! End-to-end tests: the real `kfbox` binary, the real `kfp` SDK compiling pipelines, the
//! shared conformance corpus compiled by the SDK upstream.

mod common;

mod check;
mod cli;
mod cluster;
mod conformance;
mod debugging;
mod docker;
mod gpu;
mod install;
mod kubernetes;
mod lab;
mod prelude;
mod registry;
mod safety;
mod semantics;
mod server;
mod store;
mod structure;
mod target;
mod ui;
mod warm;
mod wasi;
