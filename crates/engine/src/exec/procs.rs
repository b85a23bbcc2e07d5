//! Process groups of running `command` stages: signalled with `killpg` (rustix, no `kill`
//! process), tied to the runner's life by a guard (see [`GUARD_SCRIPT`]), and recorded in
//! `.artifact/running.log` so that a run started after a killed one stops whatever the killed
//! run (and its guard) left behind before it starts any stage.
//!
//! The record is a journal, one JSON line per event: a started group (its id, the start time of
//! its leader, so that a reused process id is never mistaken for ours, and the stage) and an
//! ended one (`{"ended": pgid}`). Each event is one `write` in append mode on a file opened once
//! per run, so a started or ended command costs no file creation and no rename (a rewrite of the
//! whole record through a temporary file and `rename`, twice per command, was most of the
//! per-stage cost of a forced run; BENCHMARKS.md). A line cut short by a kill is ignored when
//! read. Only a process that holds the project lock writes it; the run removes it when it ends.
//! It is written right after the spawn and before the shell may start the command (the shell
//! waits behind a gate, see [`super::command`]), so every process a stage starts is in a
//! recorded group.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{Scope, Thread};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

/// How long a command may take to end after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// File name of the journal of running groups, in the cache folder.
pub const RECORD: &str = "running.log";

/// The whole-file record that versions before the journal wrote (read, never written, so that
/// a run killed under such a version is still cleaned up after).
const LEGACY_RECORD: &str = "running.json";

/// One recorded process group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub pgid: i32,
    /// Start time of the leader in clock ticks since boot (`/proc/PID/stat` field 22); 0 if
    /// unknown.
    pub start: u64,
    pub stage: String,
}

/// One line of the journal.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Started(Group),
    Ended { ended: i32 },
}

/// Groups running in this process, and the journals they are recorded in (open for appending).
struct Running {
    groups: BTreeMap<i32, (PathBuf, Group)>,
    journals: BTreeMap<PathBuf, std::fs::File>,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    groups: BTreeMap::new(),
    journals: BTreeMap::new(),
});

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
        .map(|r| r.groups.keys().copied().collect())
        .unwrap_or_default();
    for pgid in groups {
        killpg(pgid, sig);
    }
}

/// Stops the commands of one run on Ctrl-C, until dropped: a thread that looks at `cancel`
/// every 20 ms and, once it is set, sends SIGTERM to each group recorded in the journal
/// `record` (groups of other engines in this process are left alone), then SIGKILL to a group
/// still running [`GRACE`] later. One watcher per run, not one per command, so that a command
/// needs no thread but its stage's own, which streams its stderr (BENCHMARKS.md, forced run).
pub struct Watcher {
    stop: std::sync::Arc<AtomicBool>,
    thread: Thread,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Also on unwinding, so that the enclosing scope never waits for the watcher.
        self.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Starts a [`Watcher`] of the groups recorded in the journal `record`, in `scope`.
pub fn watch<'scope>(
    scope: &'scope Scope<'scope, '_>,
    cancel: &'scope AtomicBool,
    record: &'scope Path,
) -> Watcher {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let handle = scope.spawn(move || {
        let mut termed: BTreeMap<i32, Instant> = BTreeMap::new();
        while !stopped.load(Ordering::SeqCst) {
            std::thread::park_timeout(Duration::from_millis(20));
            if !cancel.load(Ordering::SeqCst) || stopped.load(Ordering::SeqCst) {
                continue;
            }
            let groups: Vec<i32> = RUNNING
                .lock()
                .map(|r| {
                    (r.groups.iter())
                        .filter(|(_, (p, _))| p == record)
                        .map(|(pgid, _)| *pgid)
                        .collect()
                })
                .unwrap_or_default();
            for pgid in groups {
                match termed.get(&pgid) {
                    // First SIGTERM, so that the command can clean up; SIGKILL if it ignores it.
                    None => {
                        killpg(pgid, Signal::TERM);
                        termed.insert(pgid, Instant::now());
                    }
                    Some(t) if t.elapsed() >= GRACE => killpg(pgid, Signal::KILL),
                    Some(_) => {}
                }
            }
        }
    });
    Watcher {
        stop,
        thread: handle.thread().clone(),
    }
}

/// Remembers a started group (in memory, in the journal `record` and with the guard).
pub fn register(record: &Path, g: Group) {
    if let Ok(mut r) = RUNNING.lock() {
        append(&mut r, record, &Event::Started(g.clone()));
        tell_guard(&format!("+ {}\n", g.pgid));
        r.groups.insert(g.pgid, (record.to_path_buf(), g));
    }
}

/// Forgets an ended group.
pub fn unregister(pgid: i32) {
    if let Ok(mut r) = RUNNING.lock()
        && let Some((record, _)) = r.groups.remove(&pgid)
    {
        append(&mut r, &record, &Event::Ended { ended: pgid });
        tell_guard(&format!("- {pgid}\n"));
    }
}

/// The guard: a small shell, one per runner process, started with the first command. The
/// runner tells it each group it starts (`+ PGID`) and ends (`- PGID`) on a pipe that only the
/// runner holds; when the runner is gone, however it died (`kill -9` included), the pipe ends,
/// and the guard stops the groups still open: SIGTERM, then SIGKILL after 3 s. So a killed run
/// leaves no command writing after it, the commands' children included, even when no run
/// follows. It ignores the signals a terminal or a `kill` of the runner sends (it is in a
/// process group of its own) and runs in `/`, outside the project.
///
/// A shell, not a mode of our binary: the engine is also driven by test harnesses and other
/// programs whose executable has no such mode. `PR_SET_PDEATHSIG`, which this replaces, took
/// only the shell with the runner (not what it started), and needed a `fork` of the whole runner
/// per command, the main cost of a forced run (BENCHMARKS.md).
pub const GUARD_SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
live=
while read -r op g; do
  case $op in
    +) live="$live $g" ;;
    -) n=; for x in $live; do [ "$x" = "$g" ] || n="$n $x"; done; live=$n ;;
  esac
done
for g in $live; do kill -s TERM -- "-$g" 2>/dev/null; done
i=0
while [ -n "$live" ] && [ $i -lt 30 ]; do
  sleep 0.1; i=$((i + 1)); a=
  for g in $live; do kill -s 0 -- "-$g" 2>/dev/null && a="$a $g"; done
  live=$a
done
for g in $live; do kill -s KILL -- "-$g" 2>/dev/null; done
"#;

/// The guard's state in this process.
enum Guard {
    NotStarted,
    Running(std::io::PipeWriter),
    /// It could not be started, or its pipe broke: the journal alone is left.
    Gone,
}

static GUARD: Mutex<Guard> = Mutex::new(Guard::NotStarted);

/// Sends one line to the guard, starting it first if needed. Errors are ignored: the guard only
/// helps after a killed run, and the journal covers that too (at the next run).
fn tell_guard(line: &str) {
    let Ok(mut g) = GUARD.lock() else {
        return;
    };
    if matches!(*g, Guard::NotStarted) {
        *g = start_guard().map_or(Guard::Gone, Guard::Running);
    }
    if let Guard::Running(w) = &mut *g
        && w.write_all(line.as_bytes()).is_err()
    {
        *g = Guard::Gone;
    }
}

fn start_guard() -> std::io::Result<std::io::PipeWriter> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    // The reading end goes to the guard only; the writing end is close-on-exec, so no command
    // holds it and it ends exactly when this process does.
    let (r, w) = std::io::pipe()?;
    Command::new("/bin/sh")
        .arg("-c")
        .arg(GUARD_SCRIPT)
        .current_dir("/")
        .env_clear()
        .env("PATH", super::command::FIXED_PATH)
        .stdin(r)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    // Not waited for: it outlives this process by design, and is reaped by whoever adopts it
    // (it exits on its own once the pipe ends).
    Ok(w)
}

/// At the end of a run: removes the journal `record` unless a group of this process is still
/// recorded in it (it then stays for the next run to stop that group).
pub fn close_journal(record: &Path) {
    if let Ok(mut r) = RUNNING.lock()
        && r.journals.remove(record).is_some()
        && !r.groups.values().any(|(p, _)| p == record)
    {
        let _ = std::fs::remove_file(record);
    }
}

/// Appends one event line to `record` in a single `write` (under the lock of [`RUNNING`], so
/// lines never interleave), opening the journal on first use. Errors are ignored: the journal
/// only helps a later run clean up after a killed one.
fn append(r: &mut Running, record: &Path, e: &Event) {
    let Ok(mut line) = serde_json::to_vec(e) else {
        return;
    };
    line.push(b'\n');
    if !r.journals.contains_key(record) {
        let opened = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(record);
        match opened {
            Ok(f) => {
                r.journals.insert(record.to_path_buf(), f);
            }
            Err(_) => return,
        }
    }
    if let Some(f) = r.journals.get_mut(record) {
        let _ = f.write_all(&line);
    }
}

/// The groups `bytes` (a journal) records as started and not ended; lines that do not parse
/// (cut short by a kill) are skipped.
pub fn replay(bytes: &[u8]) -> Vec<Group> {
    let mut open: BTreeMap<i32, Group> = BTreeMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        match serde_json::from_slice::<Event>(line) {
            Ok(Event::Started(g)) => {
                open.insert(g.pgid, g);
            }
            Ok(Event::Ended { ended }) => {
                open.remove(&ended);
            }
            Err(_) => {}
        }
    }
    open.into_values().collect()
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
    let legacy = cache_dir.join(LEGACY_RECORD);
    let mut groups = std::fs::read(&record).map_or_else(|_| Vec::new(), |b| replay(&b));
    if let Ok(b) = std::fs::read(&legacy) {
        groups.extend(serde_json::from_slice::<Vec<Group>>(&b).unwrap_or_default());
    }
    // Groups this process runs itself for this project (never the case at the start of a run,
    // but an engine may be driven twice in one process).
    let mine: Vec<i32> = RUNNING
        .lock()
        .map(|r| {
            r.groups
                .iter()
                .filter(|(_, (p, _))| *p == record)
                .map(|(pgid, _)| *pgid)
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
    let _ = std::fs::remove_file(&legacy);
    if mine.is_empty() {
        // Closed first: a journal this process still holds open would outlive its file.
        if let Ok(mut r) = RUNNING.lock() {
            r.journals.remove(&record);
        }
        let _ = std::fs::remove_file(&record);
    }
    msgs
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
