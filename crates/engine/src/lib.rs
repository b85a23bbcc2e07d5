//! The pipeline engine: reads `pipeline.yaml`, validates it into a DAG, fingerprints every stage
//! (SHA-256 over a printable cache key), and runs what is stale in parallel with a
//! content-addressed cache.
//!
//! Data flow: [`spec`] (YAML -> validated [`spec::Pipeline`]) -> [`plan`] (DAG, order, closures)
//! -> [`hash`] (file digests, stat cache, cache keys) -> [`cache`] (object store, stage records,
//! lock) -> [`exec`] (scheduler, events).
//!
//! This crate knows nothing of papers, dataframes, plots or templates: stage kinds plug in
//! through [`kind::Kind`] and a [`kind::Registry`].

pub mod cache;
pub mod diag;
pub mod exec;
pub mod fsutil;
pub mod hash;
pub mod kind;
pub mod lockfile;
pub mod noop;
pub mod plan;
pub mod remote;
pub mod spec;

/// A hook the caller gives to hear, as they happen, messages for the user from parts that run
/// on worker threads (remote-cache warnings, SLURM notes): the engine never prints.
pub type Notify = Box<dyn Fn(&str) + Send + Sync>;

/// Version of the engine, recorded in every cache key.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Named exit codes, shared by the CLI and documented in `--help`.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Internal error (a bug, or an I/O failure outside any stage).
    pub const INTERNAL: i32 = 1;
    /// Command-line usage error.
    pub const USAGE: i32 = 2;
    /// `pipeline.yaml` could not be parsed or failed validation.
    pub const INVALID: i32 = 3;
    /// The stage graph is not a DAG, or a requested stage does not exist.
    pub const PLAN: i32 = 4;
    /// At least one stage failed.
    pub const STAGE_FAILED: i32 = 5;
    /// `verify` found altered outputs, `check` an unexpected claim mismatch, or `run --check`
    /// a non-deterministic stage.
    pub const MISMATCH: i32 = 6;
    /// Another run holds the project's lock (`run --no-wait`, `clean`, `gc`).
    pub const BUSY: i32 = 7;
    /// Interrupted by Ctrl-C (SIGINT).
    pub const INTERRUPTED: i32 = 130;
}

#[cfg(test)]
mod tests;
