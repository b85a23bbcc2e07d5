//! The `command` kind: runs `with.run` through `/bin/sh -c` in the project root, in a fixed
//! environment (`TZ=UTC`, `LC_ALL=C`, a fixed `PATH`, `SOURCE_DATE_EPOCH` derived from the cache
//! key); other variables pass through only when listed in `with.env`, and their values then
//! join the cache key.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use super::kind::{Kind, Problem, StageCtx, StageError, params};
use crate::spec::StageSpec;

/// Process groups of the commands running now, so that an abrupt exit can stop them.
static RUNNING: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Sends SIGTERM to every running command's process group (for an exit that cannot wait for
/// the stages to notice the interrupt, e.g. a second Ctrl-C).
pub fn kill_running_commands() {
    let groups: Vec<u32> = RUNNING
        .lock()
        .map(|g| g.iter().copied().collect())
        .unwrap_or_default();
    for pgid in groups {
        kill_group(pgid);
    }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// `PATH` given to commands unless `with.env` lists `PATH`.
pub const FIXED_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    run: String,
    #[serde(default)]
    env: Vec<String>,
}

/// See the module docs.
pub struct CommandKind;

impl Kind for CommandKind {
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
    fn check(&self, stage: &StageSpec) -> Vec<Problem> {
        match params::<Params>(stage) {
            Ok(p) => {
                let mut v = Vec::new();
                if p.run.trim().is_empty() {
                    v.push(Problem::new(None, "`run` is empty"));
                }
                for e in &p.env {
                    if e.is_empty() || e.contains('=') {
                        v.push(Problem::new(
                            None,
                            format!("invalid variable name {e:?} in `env`"),
                        ));
                    }
                }
                v
            }
            Err(e) => e,
        }
    }
    fn extra_key(&self, stage: &StageSpec) -> BTreeMap<String, String> {
        let Ok(p) = params::<Params>(stage) else {
            return BTreeMap::new();
        };
        p.env
            .iter()
            .map(|k| (format!("env.{k}"), std::env::var(k).unwrap_or_default()))
            .collect()
    }
    fn run(&self, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let p: Params = ctx.params()?;
        // An absolute path: with a PATH of its own in the child, a bare `sh` would make std fall
        // back from posix_spawn to fork + exec, which copies this (large) process every time.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(&p.run)
            .current_dir(ctx.root)
            .env_clear()
            .env("PATH", FIXED_PATH)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("SOURCE_DATE_EPOCH", ctx.source_date_epoch().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for k in &p.env {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        // Its own process group, so that an interrupt can stop the command and everything it
        // started (`kill -- -PGID`).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start sh: {e}"))?;
        let pid = child.id();
        if let Ok(mut g) = RUNNING.lock() {
            g.insert(pid);
        }
        // One helper thread reads stderr to its end and then reaps the child, so the command's
        // end is seen at once; this thread only watches for Ctrl-C meanwhile.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = tx.send(child.wait().map(|st| (st, err)));
        });
        let res = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(res) => break res,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if ctx.cancelled() => {
                    kill_group(pid);
                    let _ = rx.recv();
                    forget_running(pid);
                    return Err("interrupted".into());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    forget_running(pid);
                    return Err("lost track of the command".into());
                }
            }
        };
        forget_running(pid);
        let (status, err) = res?;
        if status.success() {
            return Ok(());
        }
        let tail: Vec<&str> = err
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let code = status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| format!("exit code {c}"));
        if tail.is_empty() {
            Err(format!("command failed with {code}").into())
        } else {
            Err(format!("command failed with {code}:\n{}", tail.join("\n")).into())
        }
    }
}

fn forget_running(pid: u32) {
    if let Ok(mut g) = RUNNING.lock() {
        g.remove(&pid);
    }
}
