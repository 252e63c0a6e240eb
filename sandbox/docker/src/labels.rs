//! Labels kfbox puts on its containers.

/// The `KFBOX_HOME` whose run started the container.
pub const HOME: &str = "io.kfbox.home";
/// `<pid> <start time>` of the kfbox process that started it.
pub const OWNER: &str = "io.kfbox.owner";
pub const RUN: &str = "io.kfbox.run";
pub const TASK: &str = "io.kfbox.task";
