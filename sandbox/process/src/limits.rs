//! `set_memory_limit` and `set_cpu_limit` for host processes, enforced on the step's process
//! group the way a container's cgroup enforces them: past its memory limit the group is
//! killed (what a cluster reports as OOMKilled); past its CPU share it is stopped until its
//! budget refills, as the kernel throttles a container that used its quota for the period.
//!
//! Why a watch and not a cgroup: an unprivileged user gets a cgroup of their own only through
//! cgroup v2 delegation by a systemd user session, which containers, CI machines and cgroup v1
//! hosts lack. Reading `/proc` works wherever kfbox does, so every machine enforces the same
//! limits, at the cost of the watch's granularity (one [`TICK`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{sysconf, Pid, SysconfVar};

/// How often the group is measured.
const TICK: Duration = Duration::from_millis(50);

/// How many ticks pass between searches of `/proc` for the group's members (each tick reads
/// only the members known, so that a watch costs little on a machine of many processes).
const SEARCH_EVERY: u32 = 5;

/// CPU time a step may bank while idle: one period of its quota, as with the kernel's
/// 100 ms CFS period.
const PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
}

impl Limits {
    /// The limits of a step, when it has any.
    pub fn of(step: &kfbox_step::Step) -> Option<Self> {
        let limits = Self {
            memory_bytes: step.resources.memory_limit,
            cpus: step.resources.cpu_limit.filter(|cpus| *cpus > 0.0),
        };
        (limits.memory_bytes.is_some() || limits.cpus.is_some()).then_some(limits)
    }
}

/// Watch the process group led by `group`, throttling it to its CPU share, until it goes over
/// its memory limit: then it is killed and the limit (bytes) returned. An error says why the
/// group cannot be watched here. The caller races this against the step's end and drops it
/// then (a stopped group is continued when it is dropped).
pub(crate) async fn enforce(group: Pid, limits: Limits) -> Result<u64, String> {
    let clock = Clock::new()?;
    let mut throttle = Throttle {
        group,
        stopped: false,
    };
    let mut seen: HashMap<i32, u64> = HashMap::new();
    let mut members: Vec<i32> = Vec::new();
    let mut tick: u32 = 0;
    let mut budget = limits.cpus.map(|cpus| cpus * PERIOD.as_secs_f64());
    let mut last = Instant::now();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if tick.is_multiple_of(SEARCH_EVERY) {
            members = find_members(group)?;
        }
        tick = tick.wrapping_add(1);
        let usage = measure(group, &mut members, &clock, &mut seen);
        if let Some(limit) = limits.memory_bytes {
            // Resident sets count pages that forked processes share once per process; the
            // proportional set size counts them as a cgroup does, and is read only when needed.
            if usage.resident_bytes > limit && proportional_bytes(&members) > limit {
                let _ = killpg(group, Signal::SIGKILL);
                throttle.resume();
                return Ok(limit);
            }
        }
        if let (Some(cpus), Some(budget)) = (limits.cpus, budget.as_mut()) {
            let now = Instant::now();
            let earned = cpus * now.duration_since(last).as_secs_f64();
            last = now;
            *budget = (*budget + earned).min(cpus * PERIOD.as_secs_f64()) - usage.cpu_seconds;
            if *budget < 0.0 {
                throttle.stop();
            } else {
                throttle.resume();
            }
        }
    }
}

/// Stops and continues the group, and never leaves it stopped.
struct Throttle {
    group: Pid,
    stopped: bool,
}

impl Throttle {
    fn stop(&mut self) {
        if !self.stopped && killpg(self.group, Signal::SIGSTOP).is_ok() {
            self.stopped = true;
        }
    }

    fn resume(&mut self) {
        if self.stopped {
            let _ = killpg(self.group, Signal::SIGCONT);
            self.stopped = false;
        }
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        self.resume();
    }
}

struct Clock {
    ticks_per_second: f64,
    page_bytes: u64,
}

impl Clock {
    fn new() -> Result<Self, String> {
        let read = |var| match sysconf(var) {
            Ok(Some(value)) if value > 0 => Ok(value as u64),
            _ => Err(format!("the system does not say its {var:?}")),
        };
        fs_err::metadata("/proc/self/stat").map_err(|e| e.to_string())?;
        Ok(Self {
            ticks_per_second: read(SysconfVar::CLK_TCK)? as f64,
            page_bytes: read(SysconfVar::PAGE_SIZE)?,
        })
    }
}

struct Usage {
    resident_bytes: u64,
    /// CPU time the group used since the previous measurement.
    cpu_seconds: f64,
}

/// The resident memory of the group's `members` now, and their CPU time since the last call
/// (`seen` holds each member's CPU ticks as last read; a process that left between two reads
/// loses at most one tick's use). Members that ended, or left the group, are dropped.
fn measure(
    group: Pid,
    members: &mut Vec<i32>,
    clock: &Clock,
    seen: &mut HashMap<i32, u64>,
) -> Usage {
    let mut usage = Usage {
        resident_bytes: 0,
        cpu_seconds: 0.0,
    };
    let mut now: HashMap<i32, u64> = HashMap::new();
    members.retain(|pid| {
        let Some(stat) = read_stat(*pid).filter(|stat| stat.group == group.as_raw()) else {
            return false;
        };
        usage.resident_bytes += stat.resident_pages * clock.page_bytes;
        let before = seen.get(pid).copied().unwrap_or(0);
        usage.cpu_seconds += stat.cpu_ticks.saturating_sub(before) as f64 / clock.ticks_per_second;
        now.insert(*pid, stat.cpu_ticks);
        true
    });
    *seen = now;
    usage
}

/// The proportional set size of the group (`Pss` of each member's `smaps_rollup`).
fn proportional_bytes(members: &[i32]) -> u64 {
    members
        .iter()
        .filter_map(|pid| fs_err::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|rollup| {
            let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .sum()
}

/// The processes of the group (their group id is the leader's pid), from all of `/proc`.
fn find_members(group: Pid) -> Result<Vec<i32>, String> {
    let entries = fs_err::read_dir("/proc").map_err(|e| e.to_string())?;
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| read_stat(*pid).is_some_and(|stat| stat.group == group.as_raw()))
        .collect())
}

struct Stat {
    group: i32,
    cpu_ticks: u64,
    resident_pages: u64,
}

fn read_stat(pid: i32) -> Option<Stat> {
    let text = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields are counted after the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    let number = |index: usize| fields.get(index)?.parse::<u64>().ok();
    Some(Stat {
        group: fields.get(2)?.parse().ok()?,
        cpu_ticks: number(11)? + number(12)?,
        resident_pages: number(21)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        let clock = Clock::new().unwrap();
        let me = Pid::from_raw(std::process::id() as i32);
        let stat = read_stat(me.as_raw()).unwrap();
        assert!(stat.resident_pages * clock.page_bytes > 1024 * 1024);
        assert_eq!(stat.group, nix::unistd::getpgrp().as_raw());
    }
}
