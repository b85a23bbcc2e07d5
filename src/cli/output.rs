//! How progress and results are shown: a progress bar on a terminal, one plain line per stage
//! otherwise, JSON lines with `--json`, nothing with `--quiet`. Colours only on a terminal and
//! never when `NO_COLOR` is set.

use std::io::{IsTerminal, Write};

use engine::exec::{Event, StageResult, Status};

pub enum Mode {
    Bar(indicatif::ProgressBar),
    Plain { color: bool },
    Json,
    Quiet,
}

pub struct Reporter {
    pub mode: Mode,
}

pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

pub fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn status_color(s: &Status) -> &'static str {
    match s {
        Status::Ran => "32",
        Status::Restored => "36",
        Status::Fresh => "2",
        Status::Failed(_) => "31;1",
        Status::Skipped(_) | Status::Cancelled => "33",
    }
}

/// One line for a finished stage.
pub fn stage_line(r: &StageResult, color: bool) -> String {
    let label = paint(
        color,
        status_color(&r.status),
        &format!("{:<9}", r.status.label()),
    );
    let mut line = format!("{label} {}", r.stage);
    if matches!(r.status, Status::Ran | Status::Restored) {
        line.push_str(&format!(" ({:.3} s)", r.millis as f64 / 1000.0));
    }
    match (&r.status, &r.reason) {
        (Status::Failed(msg), _) => {
            line.push_str(": ");
            line.push_str(&msg.replace('\n', "\n    "));
        }
        (Status::Skipped(why), _) => line.push_str(&format!(": {why}")),
        (_, Some(reason)) => line.push_str(&format!(": {reason}")),
        _ => {}
    }
    if r.fetched {
        line.push_str("; fetched from remote");
    }
    line
}

/// The `--json` line of a finished stage.
pub fn json_result(r: &StageResult) -> String {
    let run = super::records::StageRun::from(r);
    serde_json::to_string(&super::records::Finished::new(&run)).unwrap_or_default()
}

impl Reporter {
    pub fn new(quiet: bool, json: bool) -> Reporter {
        let mode = if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
                    .expect("valid template"),
            );
            Mode::Bar(bar)
        } else {
            Mode::Plain {
                color: color_enabled(),
            }
        };
        Reporter { mode }
    }

    pub fn event(&mut self, e: Event<'_>) {
        let mut out = std::io::stdout().lock();
        match (&self.mode, e) {
            (Mode::Bar(b), Event::Begin { total }) => b.set_length(total as u64),
            (Mode::Bar(b), Event::Started { stage, .. }) => b.set_message(stage.to_string()),
            (Mode::Bar(b), Event::Finished(r)) => {
                b.inc(1);
                if !matches!(r.status, Status::Fresh) {
                    b.println(stage_line(r, color_enabled()));
                }
            }
            (Mode::Plain { color }, Event::Finished(r)) => {
                let _ = writeln!(out, "{}", stage_line(r, *color));
            }
            (Mode::Json, Event::Begin { total }) => {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({"event": "begin", "stages": total})
                );
            }
            (Mode::Json, Event::Started { stage, reason }) => {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({"event": "started", "stage": stage, "reason": reason.to_string()})
                );
            }
            (Mode::Json, Event::Finished(r)) => {
                let _ = writeln!(out, "{}", json_result(r));
            }
            // On stderr in every mode, above the progress bar when there is one.
            (Mode::Bar(b), Event::Warning(w)) => b.suspend(|| warn(w)),
            (_, Event::Warning(w)) => warn(w),
            _ => {}
        }
    }

    pub fn finish(&mut self) {
        if let Mode::Bar(b) = &self.mode {
            b.finish_and_clear();
        }
    }
}

/// Prints a warning of the engine (or of the CLI) on stderr: the one place that says
/// `warning:`, as the engine itself prints nothing.
pub fn warn(w: impl std::fmt::Display) {
    eprintln!("warning: {w}");
}

/// A hook that prints each warning as it happens (the remote cache's, from worker threads).
pub fn warning_printer() -> engine::Notify {
    Box::new(|m| warn(m))
}

/// Writes one line to stdout, for every command's output (through [`outln!`]). When the reader
/// has gone (`artifact status | head` closes the pipe), the write fails with `EPIPE` (Rust
/// ignores SIGPIPE): the process then ends quietly with exit 0, as a shell pipeline expects. Any
/// other write error is reported and ends the process with exit 1.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    write_out(args, true);
}

/// [`write_line`] without the line break (through [`out!`]).
pub fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let end: &[u8] = if newline { b"\n" } else { b"" };
    if let Err(e) = out
        .write_fmt(args)
        .and_then(|()| out.write_all(end))
        .and_then(|()| out.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(engine::exit::OK);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(engine::exit::INTERNAL);
    }
}
