//! Running a pipeline: decide per stage (fresh / restore / run) from its cache key, schedule
//! ready stages (a thread each, at most `-j` at once) as soon as their inputs exist, store
//! outputs, report events.
//!
//! Guarantees: outputs appear atomically; a failing stage leaves its previous good outputs in
//! place, its independent siblings finish and its dependents are skipped; a stage whose rerun
//! gives byte-identical outputs leaves its dependents cached (early cutoff, which follows from
//! keys being built over input *contents*).

mod command;
pub mod procs;
mod run;
pub mod slurm;

/// The settings an [`Engine`] runs with (defined with the kinds, which may read them).
pub use crate::kind::RunEnv;
pub use command::{CommandKind, STDERR_TAIL, env_digest, kill_running_commands};
pub use run::{
    AuditResult, Decision, Engine, Event, InputError, Options, Reason, StageResult, Status, Warning,
};

/// Process-wide peak resident memory in KiB (Linux `VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets the peak-memory mark (Linux), so the next [`peak_rss_kib`] measures from now.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
