//! The seam between the engine and stage kinds: the typed [`Kind`] trait a kind implements,
//! its object-safe face [`DynKind`] (a blanket implementation) that the [`Registry`] and the
//! engine use, and the context a running stage gets.
//!
//! The engine parses a stage's `with:` into the kind's [`Kind::Params`] once, when the pipeline
//! is validated: unknown keys, wrong types, and path parameters ([`InputPath`], [`OutputPath`])
//! that are not among the stage's declared inputs or outputs are reported there, each at its
//! key. The kind then only checks what types cannot say ([`Kind::validate`]) and runs with the
//! typed value.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;

use crate::diag::Loc;
pub use crate::spec::{InputPath, Located, OutputPath, Parsed};
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

    /// A problem at `loc` (e.g. a [`Located`] value's).
    pub fn at(loc: Loc, message: impl Into<String>) -> Self {
        Problem::new(Some(loc), message)
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

/// What a stage's `run` returns on failure: any error, shown to the user as is. (A trait
/// object, not an enum: each kind, outside this crate, has failures of its own.)
pub type StageError = Box<dyn std::error::Error + Send + Sync>;

/// A stage built by hand (not through `spec::parse`) whose `with:` does not pass its kind's
/// checks when it is about to run: every problem, joined with `; `.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
pub struct InvalidParams(pub Vec<Problem>);

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
    /// Absolute path of a project-relative input: an [`InputPath`] parameter (checked against
    /// the declared inputs when the pipeline was validated) or a declared input's path.
    pub fn input(&self, rel: impl AsRef<str>) -> PathBuf {
        self.root.join(rel.as_ref())
    }

    /// Absolute path where a declared output must be written; its parent folder exists.
    pub fn output(&self, rel: &str) -> std::io::Result<PathBuf> {
        let p = self.out_root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Ok(p)
    }

    /// Absolute path of `rel`, a path named at run time (e.g. in a data file rather than in
    /// `with:`), after checking it is one of the stage's declared inputs (so that it is
    /// fingerprinted); the same normalisation and wording as an [`InputPath`].
    pub fn declared_input(&self, rel: &str) -> Result<PathBuf, StageError> {
        let path = crate::spec::typed::check_path(rel, false, Some(self.stage.declared()))?;
        Ok(self.root.join(path))
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
}

/// A stage kind: its typed parameters, their checks, and how it produces its declared outputs.
/// The engine uses it through [`DynKind`].
pub trait Kind: Send + Sync + 'static {
    /// The `with:` parameters. Read with `#[serde(deny_unknown_fields)]`; use [`InputPath`] and
    /// [`OutputPath`] for paths and [`Located`] for values a check may need to point at.
    type Params: DeserializeOwned + Send + Sync + 'static;
    /// The name used as `kind:` in `pipeline.yaml`.
    fn name(&self) -> &'static str;
    /// Implementation version; bump it whenever the same inputs would give different bytes.
    fn version(&self) -> u32;
    /// One-line description for `--help` and docs.
    fn about(&self) -> &'static str {
        ""
    }
    /// What types cannot say: checks of parsed parameters against each other and the stage,
    /// returning every problem.
    fn validate(&self, _params: &Self::Params, _stage: &StageSpec) -> Vec<Problem> {
        Vec::new()
    }
    /// Checks of the stage that do not need its parameters (e.g. the kinds of files it
    /// declares as outputs); they run even when `with:` does not parse, so that every problem
    /// is reported at once.
    fn validate_stage(&self, _stage: &StageSpec) -> Vec<Problem> {
        Vec::new()
    }
    /// Produces every declared output under `ctx.out_root`.
    fn run(&self, params: &Self::Params, ctx: &StageCtx<'_>) -> Result<(), StageError>;
    /// True when the kind writes outputs at their final paths (e.g. a shell command); the engine
    /// then restores the previous outputs itself if the stage fails.
    fn in_place(&self) -> bool {
        false
    }
    /// Extra material for the cache key (e.g. values of environment variables the stage
    /// passes through).
    fn extra_key(&self, _params: &Self::Params) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    /// The stage's parameters if it is a validated stage of this kind (typed access for callers
    /// such as the report, instead of matching kind names and reading raw YAML).
    fn params_of(stage: &StageSpec) -> Option<&Self::Params>
    where
        Self: Sized,
    {
        stage.params.as_ref()?.get::<Self::Params>()
    }
    /// Whether `stage` is a validated stage of this kind.
    fn matches(stage: &StageSpec) -> bool
    where
        Self: Sized,
    {
        Self::params_of(stage).is_some()
    }
}

/// The object-safe face of a [`Kind`], implemented for every kind: what the engine and the
/// [`Registry`] call.
pub trait DynKind: Send + Sync + Any {
    fn name(&self) -> &'static str;
    fn version(&self) -> u32;
    fn about(&self) -> &'static str;
    fn in_place(&self) -> bool;
    /// Parses `stage.with` (paths checked against the stage's declared ones) and validates it:
    /// the typed parameters, or every problem.
    fn check(&self, stage: &StageSpec) -> Result<Parsed, Vec<Problem>>;
    /// Extra material for the cache key.
    fn extra_key(&self, stage: &StageSpec) -> BTreeMap<String, String>;
    /// Produces every declared output under `ctx.out_root`.
    fn run(&self, ctx: &StageCtx<'_>) -> Result<(), StageError>;
}

impl<K: Kind> DynKind for K {
    fn name(&self) -> &'static str {
        Kind::name(self)
    }
    fn version(&self) -> u32 {
        Kind::version(self)
    }
    fn about(&self) -> &'static str {
        Kind::about(self)
    }
    fn in_place(&self) -> bool {
        Kind::in_place(self)
    }
    fn check(&self, stage: &StageSpec) -> Result<Parsed, Vec<Problem>> {
        let (p, errors) =
            crate::spec::from_node_all::<K::Params>(&stage.with, Some(stage.declared()));
        let mut problems: Vec<Problem> = errors.into_iter().map(Problem::from).collect();
        problems.extend(Kind::validate_stage(self, stage));
        let Some(p) = p else {
            return Err(problems);
        };
        problems.extend(Kind::validate(self, &p, stage));
        if problems.is_empty() {
            Ok(Parsed::new(p))
        } else {
            Err(problems)
        }
    }
    fn extra_key(&self, stage: &StageSpec) -> BTreeMap<String, String> {
        match K::params_of(stage) {
            Some(p) => Kind::extra_key(self, p),
            // A stage rebuilt from a snapshot (no declared paths): its `with` as recorded.
            None => crate::spec::from_node::<K::Params>(&stage.with)
                .map(|p| Kind::extra_key(self, &p))
                .unwrap_or_default(),
        }
    }
    fn run(&self, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        if let Some(p) = K::params_of(ctx.stage) {
            return Kind::run(self, p, ctx);
        }
        // A stage built by hand rather than by `spec::parse`: parse and validate it now.
        let parsed = DynKind::check(self, ctx.stage).map_err(InvalidParams)?;
        let p = parsed
            .get::<K::Params>()
            .expect("the kind's own parameters");
        Kind::run(self, p, ctx)
    }
}

/// The kinds a binary offers, by name.
#[derive(Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn DynKind>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, k: impl DynKind) -> Self {
        self.add(Box::new(k));
        self
    }
    pub fn add(&mut self, k: Box<dyn DynKind>) {
        self.kinds.insert(k.name(), k);
    }
    pub fn get(&self, name: &str) -> Option<&dyn DynKind> {
        self.kinds.get(name).map(|b| b.as_ref())
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = &dyn DynKind> {
        self.kinds.values().map(|b| b.as_ref())
    }
}
