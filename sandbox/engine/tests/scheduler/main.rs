//! The scheduler's semantics, pinned with a fake executor: every case runs in milliseconds
//! (tokio's paused clock stands in for backoff and slow steps), without Python or processes.

mod cache;
mod dag;
mod lifecycle;
mod loops;
mod retries;
mod support;
