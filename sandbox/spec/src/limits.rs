//! What kfbox accepts, checked before anything runs. Chosen from what real pipelines use: of
//! the 150 pipelines in KFP's own test data the largest has 28 tasks, nests 6 DAGs deep and has
//! a 9.4 KiB command word, and compiled files stay under a few hundred KiB.

/// The largest pipeline file kfbox reads (`kfbox run`, uploads and inline specs alike).
pub const MAX_PIPELINE_BYTES: u64 = 64 << 20;

/// Tasks in one pipeline, counting a nested pipeline's tasks each time it is used; loop
/// iterations are not counted (they exist only at run time). kfbox's time per task stays
/// near flat as pipelines grow (`tests/bench/scale.py` runs a 30,000-step chain); the limit
/// bounds what a hostile file can make kfbox plan.
pub const MAX_TASKS: u64 = 50_000;

/// How deep DAGs nest: the root is one level, each nested pipeline, condition, loop or exit
/// handler inside it one more.
pub const MAX_NESTING: usize = 32;

/// One word of a container's `command` or `args` as written: Linux refuses to start a program
/// with a longer argument (`MAX_ARG_STRLEN`).
pub const MAX_WORD_BYTES: usize = 128 << 10;
