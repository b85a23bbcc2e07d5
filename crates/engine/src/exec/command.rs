//! The `command` kind: runs `with.run` through `/bin/sh -c` in the project root, in a fixed
//! environment (`TZ=UTC`, `LC_ALL=C`, a fixed `PATH`, `SOURCE_DATE_EPOCH` derived from the cache
//! key); other variables pass through only when listed in `with.env`, and a keyed digest of
//! each value (never the value) then joins the cache key.
//!
//! The shell runs in a process group of its own, tied to the run (see [`super::procs`]): it is
//! started through `posix_spawn` (no copy of the runner's memory) behind a gate, and runs
//! nothing of the command until the runner has recorded its group and opened the gate, so no
//! process of a stage can escape the record; a runner that dies first closes the gate and the
//! shell exits unrun. On Ctrl-C the run's watcher ([`super::procs::watch`]) gives the group
//! SIGTERM, then SIGKILL after a grace period. Its stderr streams to `.artifact/logs/STAGE.log`;
//! a failure keeps the last 64 KiB of it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::process::Signal;
use serde::Deserialize;

use super::procs::{self, Group};
use crate::kind::{Kind, Located, Problem, StageCtx, StageError};
use crate::spec::StageSpec;

/// Stops every running command's process group at once with SIGKILL (for an exit that cannot
/// wait for the stages to notice the interrupt, e.g. a second Ctrl-C).
pub fn kill_running_commands() {
    procs::signal_all(Signal::KILL);
}

/// How much of a failing command's stderr the error message keeps (its end); the whole stream
/// goes to `.artifact/logs/STAGE.log`.
pub const STDERR_TAIL: usize = 64 * 1024;

/// Domain separation for the digests of passed-through environment variables.
const ENV_DIGEST_PREFIX: &str = "artifact command env v1\0";

/// What the cache key records for a variable listed in `with.env`: a digest of its name and
/// value (never the value: it may be a secret), or `unset`.
pub fn env_digest(name: &str, value: Option<&str>) -> String {
    match value {
        None => "unset".into(),
        Some(v) => {
            let mut b = Vec::with_capacity(ENV_DIGEST_PREFIX.len() + name.len() + v.len() + 1);
            b.extend_from_slice(ENV_DIGEST_PREFIX.as_bytes());
            b.extend_from_slice(name.as_bytes());
            b.push(0);
            b.extend_from_slice(v.as_bytes());
            format!("sha256:{}", crate::hash::sha256_bytes(&b))
        }
    }
}

/// The cache folder a command of `root` reports to: `root/.artifact`, or, for a determinism
/// audit running in a scratch copy inside the cache folder, that enclosing cache folder.
fn cache_dir(root: &Path) -> (PathBuf, bool) {
    let tmp = root
        .parent()
        .filter(|t| t.file_name().is_some_and(|n| n == "tmp"));
    match tmp.and_then(Path::parent) {
        Some(c) if c.file_name().is_some_and(|n| n == crate::spec::CACHE_DIR) => {
            (c.to_path_buf(), true)
        }
        _ => (root.join(crate::spec::CACHE_DIR), false),
    }
}

/// What the shell runs before the command: wait for the runner's go (one line on stdin, written
/// once the group is recorded; end of file, when the runner died before that, exits 125 with
/// nothing run), then give the command the empty stdin it always had. On the command's first
/// line, so that the shell's messages keep the command's line numbers. A `pre_exec` hook cannot
/// do this wait: `Command::spawn` returns only after `exec`, and it would force a `fork` of the
/// whole runner instead of `posix_spawn` (BENCHMARKS.md, forced run).
const GATE: &str = "read -r _ || exit 125; exec </dev/null; ";

/// The `/bin/sh -c` for `run`, gated: it waits for a line on the returned writer (see [`GATE`]).
pub fn gated_shell(run: &str) -> std::io::Result<(Command, std::io::PipeWriter)> {
    let (gate, go) = std::io::pipe()?;
    // Absolute path: with a PATH of its own in the child, a bare name would make std search
    // for it in the parent's PATH first.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(format!("{GATE}{run}")).stdin(gate);
    // Its own process group, so that an interrupt can stop the command and everything it
    // started (killpg).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Ok((cmd, go))
}

/// `PATH` given to commands unless `with.env` lists `PATH`.
pub const FIXED_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// `with:` of a `command` stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub(crate) run: Located<String>,
    #[serde(default)]
    pub(crate) env: Vec<Located<String>>,
}

/// See the module docs.
pub struct CommandKind;

impl Kind for CommandKind {
    type Params = Params;
    fn name(&self) -> &'static str {
        "command"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "run a shell command (/bin/sh -c) in the project root with a fixed environment"
    }
    fn in_place(&self) -> bool {
        true
    }
    fn validate(&self, p: &Params, _stage: &StageSpec) -> Vec<Problem> {
        let mut v = Vec::new();
        if p.run.trim().is_empty() {
            v.push(Problem::at(p.run.loc, "`run` is empty"));
        }
        for e in &p.env {
            if e.is_empty() || e.contains('=') {
                v.push(Problem::at(
                    e.loc,
                    format!("invalid variable name {:?} in `env`", e.value),
                ));
            }
        }
        v
    }
    fn extra_key(&self, p: &Params) -> BTreeMap<String, String> {
        p.env
            .iter()
            .map(|k| {
                let v = std::env::var(&k.value).ok();
                (format!("env.{}", k.value), env_digest(k, v.as_deref()))
            })
            .collect()
    }
    fn run(&self, p: &Params, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let (mut cmd, go) =
            gated_shell(&p.run.value).map_err(|e| format!("cannot start sh: {e}"))?;
        cmd.current_dir(ctx.root)
            .env_clear()
            .env("PATH", FIXED_PATH)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("SOURCE_DATE_EPOCH", ctx.source_date_epoch().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for k in &p.env {
            if let Ok(v) = std::env::var(&k.value) {
                cmd.env(&k.value, v);
            }
        }
        let (cache, audit) = cache_dir(ctx.root);
        let name = &ctx.stage.name;
        let log_path = cache
            .join("logs")
            .join(format!("{name}{}.log", if audit { ".audit" } else { "" }));
        // The log is created when the first stderr byte arrives (most commands write none, and
        // a file per stage costs a create in the journal); a previous run's log goes now.
        let _ = std::fs::remove_file(&log_path);
        let log = LazyLog {
            path: log_path.clone(),
            file: None,
        };
        let mut child = cmd.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
        drop(cmd); // its copy of the gate's reading end
        let pgid = child.id() as i32;
        let record = cache.join(procs::RECORD);
        procs::register(
            &record,
            Group {
                pgid,
                start: procs::start_time(pgid),
                stage: name.clone(),
            },
        );
        // Recorded: the command may start. A shell that already ended (it could not parse the
        // command) makes this write fail; its status says why.
        let mut go = go;
        let _ = go.write_all(b"go\n");
        drop(go);
        // This thread streams stderr to the log (keeping its end) until the command and
        // everything it started have closed it, then reaps the shell. On Ctrl-C, the run's
        // watcher (`procs::watch`) stops the group, which ends both.
        let tail = (child.stderr.take()).map_or_else(Vec::new, |e| drain(e, log));
        let status = child.wait();
        // The shell is gone; stop what it left running in its group (e.g. `cmd &`).
        procs::killpg(pgid, Signal::KILL);
        procs::unregister(pgid);
        if ctx.cancelled() {
            return Err("interrupted".into());
        }
        let status = status.map_err(|e| format!("lost track of the command: {e}"))?;
        if status.success() {
            return Ok(());
        }
        let how = match (status.code(), status_signal(&status)) {
            (Some(c), _) if c > 128 && c - 128 < 65 => format!(
                "exit code {c} (128 + {}: a process it ran was killed by {})",
                c - 128,
                procs::signal_name(c - 128)
            ),
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => format!("killed by signal {sig} ({})", procs::signal_name(sig)),
            (None, None) => "an unknown status".into(),
        };
        let shown = log_path
            .strip_prefix(ctx.root)
            .unwrap_or(&log_path)
            .display()
            .to_string();
        let text = String::from_utf8_lossy(&tail);
        let lines: Vec<&str> = text.lines().collect();
        let shown_lines = &lines[lines.len().saturating_sub(20)..];
        let mut msg = format!("command failed with {how}");
        if shown_lines.is_empty() {
            msg.push_str(" (no stderr)");
        } else {
            msg.push_str(&format!(
                "; end of its stderr (all of it in {shown}):\n{}",
                shown_lines.join("\n")
            ));
        }
        Err(msg.into())
    }
}

fn status_signal(st: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(st)
}

/// A log file created on the first write (with its folder).
struct LazyLog {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl LazyLog {
    /// Appends `chunk`; after a write error the rest is dropped (the tail is still kept).
    fn write(&mut self, chunk: &[u8]) {
        if self.file.is_none() {
            let f = self
                .path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::File::create(&self.path));
            match f {
                Ok(f) => self.file = Some(std::io::BufWriter::new(f)),
                Err(_) => self.path = PathBuf::new(),
            }
        }
        if let Some(f) = self.file.as_mut()
            && f.write_all(chunk).is_err()
        {
            self.file = None;
            self.path = PathBuf::new();
        }
    }
}

/// Copies a command's stderr to its log as it comes and returns its last [`STDERR_TAIL`] bytes.
fn drain(mut from: impl Read, mut log: LazyLog) -> Vec<u8> {
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = buf.get(..n).unwrap_or_default();
        if !log.path.as_os_str().is_empty() {
            log.write(chunk);
        }
        tail.extend(chunk);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
    }
    if let Some(mut f) = log.file {
        let _ = f.flush();
    }
    tail.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell whose runner never opens the gate (it died first) runs nothing of the command.
    #[test]
    fn a_closed_gate_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cmd, go) = gated_shell("touch ran").unwrap();
        cmd.current_dir(dir.path());
        let mut child = cmd.spawn().unwrap();
        drop(go);
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(125), "the gate's exit code");
        assert!(!dir.path().join("ran").exists());
    }

    /// Once the gate opens, the command runs with an empty stdin, and the shell's messages keep
    /// the command's line numbers.
    #[test]
    fn an_open_gate_runs_the_command_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut cmd, mut go) = gated_shell("wc -c > n\n( ").unwrap();
        cmd.current_dir(dir.path()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        go.write_all(b"go\n").unwrap();
        drop(go);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(": 2: "), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("n"))
                .unwrap()
                .trim(),
            "0"
        );
    }
}
