//! Process identity: a process id with the process's start time, a name that survives pid
//! reuse. kfbox notes its own (in the run index, in `server.json`, on containers it starts) and
//! each step's process group leader (in the file a [`crate::Step`] names), so that a later
//! kfbox can tell whether they still run, and stop what a killed kfbox left running.

use std::fmt;
use std::path::Path;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// `<pid> <start time>`: the start time in clock ticks since boot (0 where the OS does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: i64,
    pub started: i64,
}

impl ProcessIdentity {
    /// This process.
    pub fn current() -> Self {
        Self::of(std::process::id())
    }

    /// The process with id `pid` as it is now.
    pub fn of(pid: u32) -> Self {
        let pid = i64::from(pid);
        Self {
            pid,
            started: proc_stat(pid).map_or(0, |(_, started)| started),
        }
    }

    /// The identity [`fmt::Display`] wrote.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().ok());
        match (fields.next(), fields.next()) {
            (Some(Some(pid)), Some(Some(started))) => Some(Self { pid, started }),
            _ => None,
        }
    }

    /// Whether the process still runs (a zombie has ended; only its parent's reaping is
    /// missing). Without a start time, a live pid is taken for the process.
    pub fn is_alive(&self) -> bool {
        if self.pid == 0 {
            return false;
        }
        if Path::new("/proc/self/stat").exists() {
            return proc_stat(self.pid).is_some_and(|(state, started)| {
                state != "Z" && (self.started == 0 || started == self.started)
            });
        }
        i32::try_from(self.pid).is_ok_and(|raw| kill(Pid::from_raw(raw), None).is_ok())
    }
}

impl fmt::Display for ProcessIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pid, self.started)
    }
}

/// State letter and start time of a process, from `/proc/<pid>/stat`.
fn proc_stat(pid: i64) -> Option<(String, i64)> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields are counted after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.to_owned();
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// Note a step's process group leader in `file`.
pub fn note_process(file: &Path, pid: u32) -> std::io::Result<()> {
    fs_err::write(file, format!("{}\n", ProcessIdentity::of(pid)))
}

/// Kill the process group a note names, if its leader is still the process that was noted.
/// Returns whether it did.
pub fn stop_noted_process(file: &Path) -> bool {
    let Some(noted) = fs_err::read_to_string(file)
        .ok()
        .and_then(|text| ProcessIdentity::parse(&text))
    else {
        return false;
    };
    let now = u32::try_from(noted.pid).map(ProcessIdentity::of);
    if noted.started == 0 || now != Ok(noted) {
        return false;
    }
    i32::try_from(noted.pid).is_ok_and(|raw| killpg(Pid::from_raw(raw), Signal::SIGKILL).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_ended_is_not_alive_even_before_it_is_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id());
        assert_ne!(identity.started, 0);
        assert!(identity.is_alive());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while identity.is_alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "still alive after it ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Not reaped until now: it was a zombie while the loop above saw it as ended.
        assert!(fs_err::metadata(format!("/proc/{}", child.id())).is_ok());
        child.wait().unwrap();
        let reused = ProcessIdentity {
            pid: identity.pid,
            started: 0,
        };
        assert!(!reused.is_alive());
    }

    #[test]
    fn identities_read_back_as_written() {
        let me = ProcessIdentity::current();
        assert_eq!(ProcessIdentity::parse(&me.to_string()), Some(me));
        assert!(me.is_alive());
        assert_eq!(ProcessIdentity::parse("12"), None);
    }
}
