//! Process groups of running `command` stages: signalled with `killpg` (rustix, no `kill`
//! process), tied to the runner's life (`PR_SET_PDEATHSIG`, see [`die_with_runner`]), and
//! recorded in `.artifact/running.json` so that a run started after
//! a killed one stops whatever the killed run left behind before it starts any stage.
//!
//! The record holds, per group: its id, the start time of its leader (so that a reused process
//! id is never mistaken for ours) and the stage. It is written atomically whenever a command
//! starts or ends, only by a process that holds the project lock. It is written right after the
//! spawn: a runner killed in the microseconds before that still takes the shell with it
//! (`PR_SET_PDEATHSIG`); only what the shell started in that window could outlive it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

/// How long a command may take to end after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// File name of the record of running groups, in the cache folder.
pub const RECORD: &str = "running.json";

/// One recorded process group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub pgid: i32,
    /// Start time of the leader in clock ticks since boot (`/proc/PID/stat` field 22); 0 if
    /// unknown.
    pub start: u64,
    pub stage: String,
}

/// Groups running in this process: pgid -> (record file, group).
static RUNNING: Mutex<BTreeMap<i32, (PathBuf, Group)>> = Mutex::new(BTreeMap::new());

/// Sends `sig` to a process group. Errors (the group is gone) are ignored.
pub fn killpg(pgid: i32, sig: Signal) {
    if let Some(pid) = Pid::from_raw(pgid)
        && pgid > 1
    {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// Sends `sig` to the group of every command running in this process.
pub fn signal_all(sig: Signal) {
    let groups: Vec<i32> = RUNNING
        .lock()
        .map(|g| g.keys().copied().collect())
        .unwrap_or_default();
    for pgid in groups {
        killpg(pgid, sig);
    }
}

/// Remembers a started group (in memory and in `record`).
pub fn register(record: &Path, g: Group) {
    if let Ok(mut m) = RUNNING.lock() {
        m.insert(g.pgid, (record.to_path_buf(), g));
        write_record(&m, record);
    }
}

/// Forgets an ended group.
pub fn unregister(pgid: i32) {
    if let Ok(mut m) = RUNNING.lock()
        && let Some((record, _)) = m.remove(&pgid)
    {
        write_record(&m, &record);
    }
}

/// Rewrites `record` with the groups of this process that belong to it (under the lock of
/// [`RUNNING`], so writes never interleave); removes it when there are none.
fn write_record(m: &BTreeMap<i32, (PathBuf, Group)>, record: &Path) {
    let groups: Vec<&Group> = m
        .values()
        .filter(|(r, _)| r == record)
        .map(|(_, g)| g)
        .collect();
    if groups.is_empty() {
        let _ = std::fs::remove_file(record);
    } else if let Ok(bytes) = serde_json::to_vec_pretty(&groups) {
        let _ = crate::fsutil::write_atomic(record, &bytes);
    }
}

/// `/proc/PID/stat` fields after the command name: (state, pgrp, start time).
fn proc_stat(pid: i32) -> Option<(char, i32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
    Some((
        f.first()?.chars().next()?,
        f.get(2)?.parse().ok()?,
        f.get(19)?.parse().ok()?,
    ))
}

/// Start time of process `pid` (clock ticks since boot), 0 when unknown.
pub fn start_time(pid: i32) -> u64 {
    proc_stat(pid).map_or(0, |(_, _, t)| t)
}

/// Whether the recorded group still has a live (not zombie) member, and is ours: a leader that
/// is alive must have the recorded start time (a process id reused by an unrelated process is
/// left alone).
pub fn alive(g: &Group) -> bool {
    if g.pgid <= 1 {
        return false;
    }
    if let Some((_, _, start)) = proc_stat(g.pgid)
        && g.start != 0
        && start != g.start
    {
        return false;
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // No /proc: ask the kernel whether any process is in the group.
        return Pid::from_raw(g.pgid)
            .is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok());
    };
    dir.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(proc_stat)
            .is_some_and(|(state, pgrp, _)| pgrp == g.pgid && state != 'Z' && state != 'X')
    })
}

/// Waits until `g` has no live member, at most `limit`. Returns whether it ended.
fn wait_gone(g: &Group, limit: Duration) -> bool {
    let t = Instant::now();
    loop {
        if !alive(g) {
            return true;
        }
        if t.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// At the start of a run (the project lock held): stops every group a previous run recorded
/// and left running (it was killed before its commands ended): SIGTERM, then SIGKILL after
/// [`GRACE`]. Clears the record. Returns one message per group stopped.
pub fn reap_leftovers(cache_dir: &Path) -> Vec<String> {
    let record = cache_dir.join(RECORD);
    let Ok(bytes) = std::fs::read(&record) else {
        return Vec::new();
    };
    let groups: Vec<Group> = serde_json::from_slice(&bytes).unwrap_or_default();
    // Groups this process runs itself for this project (never the case at the start of a run,
    // but an engine may be driven twice in one process).
    let mine: Vec<i32> = RUNNING
        .lock()
        .map(|m| {
            m.iter()
                .filter(|(_, (r, _))| *r == record)
                .map(|(p, _)| *p)
                .collect()
        })
        .unwrap_or_default();
    let mut msgs = Vec::new();
    for g in groups.iter().filter(|g| !mine.contains(&g.pgid)) {
        if !alive(g) {
            continue;
        }
        killpg(g.pgid, Signal::TERM);
        if !wait_gone(g, GRACE) {
            killpg(g.pgid, Signal::KILL);
            wait_gone(g, Duration::from_secs(2));
        }
        msgs.push(format!(
            "stopped the command of stage {} left running by an earlier run that was killed (process group {})",
            g.stage, g.pgid
        ));
    }
    if mine.is_empty() {
        let _ = std::fs::remove_file(&record);
    }
    msgs
}

/// Makes the command that `cmd` starts die with the thread that starts it
/// (`PR_SET_PDEATHSIG` = SIGKILL, set in the child between fork and exec), and not run at all
/// when the runner is already gone by then. No launcher process: an extra `setpriv` exec cost
/// 0.8 ms per stage (BENCHMARKS.md). Linux only; elsewhere the record of running groups still
/// lets the next run stop what is left.
#[allow(unsafe_code)]
pub fn die_with_runner(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let runner = rustix::process::getpid();
        // SAFETY: `pre_exec` runs the closure in the forked child before exec, where only
        // async-signal-safe work is allowed. It makes two raw system calls (prctl, getppid)
        // through rustix, which neither allocate nor take locks, and its error is built from
        // an errno without allocating.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // Reparented already (the runner died before the line above): do not run.
                if rustix::process::getppid() != Some(runner) {
                    return Err(rustix::io::Errno::SRCH.into());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// A readable name for a signal number.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => "a signal",
    }
}
