//! The seam between the engine and stage kinds: the [`Kind`] trait, the context a running stage
//! gets, and the [`Registry`] of kinds a binary provides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::diag::Loc;
use crate::spec::{NodeError, StageSpec};

/// A problem in a stage's `with:` parameters found at validation time.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Where; `None` means the `with:` mapping as a whole.
    pub loc: Option<Loc>,
    pub message: String,
}

impl Problem {
    pub fn new(loc: Option<Loc>, message: impl Into<String>) -> Self {
        Problem {
            loc,
            message: message.into(),
        }
    }
}

impl From<NodeError> for Problem {
    fn from(e: NodeError) -> Self {
        Problem {
            loc: e.loc,
            message: e.message,
        }
    }
}

/// What a stage's `run` returns on failure: any error, shown to the user as is.
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// Settings of a run that kinds may read (never part of a stage's cache key unless the kind
/// puts them there).
#[derive(Clone, Debug, Default)]
pub struct RunEnv {
    /// Folders searched for pinned inputs before any download (`--mirror`, `ARTIFACT_MIRROR`).
    pub mirrors: Vec<PathBuf>,
    /// Whether kinds may use the network.
    pub offline: bool,
}

/// Everything a running stage may touch.
pub struct StageCtx<'a> {
    pub stage: &'a StageSpec,
    /// Where inputs are read: the project root (or an audit copy of it).
    pub root: &'a Path,
    /// Where outputs are written: a scratch folder the engine moves into place atomically, or
    /// the project root itself for [`Kind::in_place`] kinds.
    pub out_root: &'a Path,
    pub env: &'a RunEnv,
    /// Hex SHA-256 of the stage's cache key.
    pub key_digest: &'a str,
    pub cancel: &'a AtomicBool,
}

impl StageCtx<'_> {
    /// Absolute path of a project-relative input.
    pub fn input(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Absolute path where a declared output must be written; its parent folder exists.
    pub fn output(&self, rel: &str) -> std::io::Result<PathBuf> {
        let p = self.out_root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(p)
    }

    /// Checks that `rel` is one of the stage's declared inputs (so that it is fingerprinted).
    pub fn declared_input(&self, rel: &str) -> Result<PathBuf, StageError> {
        if self.stage.inputs.iter().any(|i| i.path == rel) {
            Ok(self.input(rel))
        } else {
            Err(format!("{rel:?} is used but not listed in the stage's `inputs`").into())
        }
    }

    /// A reproducible `SOURCE_DATE_EPOCH` derived from the cache key (so it changes only when
    /// the key does), within 2000-01-01 .. 2030-01-01.
    pub fn source_date_epoch(&self) -> u64 {
        let n =
            u64::from_str_radix(&self.key_digest[..12.min(self.key_digest.len())], 16).unwrap_or(0);
        946_684_800 + n % 946_684_800
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The stage's typed `with:` parameters. `check` has validated them before any run, so an
    /// error here means the kind's `check` and `run` disagree; it lists every problem.
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T, StageError> {
        params(self.stage).map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|p| p.message).collect();
            msgs.join("; ").into()
        })
    }
}

/// A stage kind: validates its parameters and produces its declared outputs.
pub trait Kind: Send + Sync {
    /// The name used as `kind:` in `pipeline.yaml`.
    fn name(&self) -> &'static str;
    /// Implementation version; bump it whenever the same inputs would give different bytes.
    fn version(&self) -> u32;
    /// One-line description for `--help` and docs.
    fn about(&self) -> &'static str {
        ""
    }
    /// Validates `stage.with` (and anything else about the stage), returning every problem.
    fn check(&self, stage: &StageSpec) -> Vec<Problem>;
    /// Produces every declared output under `ctx.out_root`.
    fn run(&self, ctx: &StageCtx<'_>) -> Result<(), StageError>;
    /// True when the kind writes outputs at their final paths (e.g. a shell command); the engine
    /// then restores the previous outputs itself if the stage fails.
    fn in_place(&self) -> bool {
        false
    }
    /// Extra material for the cache key (e.g. values of environment variables the stage
    /// passes through).
    fn extra_key(&self, _stage: &StageSpec) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// The kinds a binary offers, by name.
#[derive(Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn Kind>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, k: impl Kind + 'static) -> Self {
        self.add(Box::new(k));
        self
    }
    pub fn add(&mut self, k: Box<dyn Kind>) {
        self.kinds.insert(k.name(), k);
    }
    pub fn get(&self, name: &str) -> Option<&dyn Kind> {
        self.kinds.get(name).map(|b| b.as_ref())
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = &dyn Kind> {
        self.kinds.values().map(|b| b.as_ref())
    }
}

/// Parses a kind's typed parameters from `stage.with`, turning errors into [`Problem`]s.
pub fn params<T: serde::de::DeserializeOwned>(stage: &StageSpec) -> Result<T, Vec<Problem>> {
    crate::spec::from_node(&stage.with).map_err(|v| v.into_iter().map(Problem::from).collect())
}
