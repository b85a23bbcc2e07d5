//! The scheduler and the per-stage decision procedure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use crate::cache::{Cache, Record, RestoreError};
use crate::hash::{CacheKey, KEY_VERSION, KeyChange, StatCache};
use crate::kind::{DynKind, Registry, RunEnv, StageCtx};
use crate::lockfile::{LockError, LockFile, LockedStage};
use crate::plan::Plan;
use crate::spec::Pipeline;

/// Why a stage has to do something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Never ran successfully.
    New,
    /// `--force`.
    Forced,
    /// The key differs from the last successful run's.
    Changed(Vec<KeyChange>),
    OutputMissing(String),
    OutputAltered(String),
    /// The stored copy of an output was missing or corrupt, so the stage must run.
    CacheDamaged(String),
    /// An upstream stage will run first; this one reruns unless its inputs come out identical.
    Upstream(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::New => f.write_str("new (never ran)"),
            Reason::Forced => f.write_str("forced"),
            Reason::Changed(v) => {
                let parts: Vec<String> = v.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join("; "))
            }
            Reason::OutputMissing(p) => write!(f, "output {p} missing"),
            Reason::OutputAltered(p) => write!(f, "output {p} altered"),
            Reason::CacheDamaged(p) => write!(f, "cached copy of {p} missing or corrupt"),
            Reason::Upstream(s) => write!(f, "upstream stage {s} runs first"),
        }
    }
}

/// Why outputs could not be restored from the store.
enum RestoreFailure {
    /// The stored copy is missing or corrupt: the stage must run.
    Damaged(String),
    /// Writing the output failed: the stage fails with this message.
    Io(String),
}

/// What a stage needs, decided without side effects.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Up to date: outputs on disk match the last run with this key.
    Fresh(Record),
    /// Outputs can be restored from the store (key seen before, or outputs missing/altered).
    Restore(Record, Reason),
    /// Must run.
    Run(Reason),
}

/// How a stage ended in this run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Fresh,
    Restored,
    Ran,
    Failed(String),
    /// Not run because an upstream stage failed or was skipped.
    Skipped(String),
    /// Not run because the run was interrupted.
    Cancelled,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Fresh => "cached",
            Status::Restored => "restored",
            Status::Ran => "ran",
            Status::Failed(_) => "FAILED",
            Status::Skipped(_) => "skipped",
            Status::Cancelled => "interrupted",
        }
    }
    pub fn ok(&self) -> bool {
        matches!(self, Status::Fresh | Status::Restored | Status::Ran)
    }
}

/// One stage's result.
#[derive(Clone, Debug)]
pub struct StageResult {
    pub stage: String,
    pub kind: String,
    pub status: Status,
    pub reason: Option<Reason>,
    pub millis: u64,
    pub peak_rss_kib: Option<u64>,
    /// Key digest and outputs, for successful stages.
    pub record: Option<Record>,
    /// Restored from the remote cache (not from the local one).
    pub fetched: bool,
}

impl StageResult {
    /// A fresh stage with nothing recorded yet (the base the other results are built on).
    pub fn fresh(stage: &str, kind: &str) -> StageResult {
        StageResult {
            stage: stage.to_string(),
            kind: kind.to_string(),
            status: Status::Fresh,
            reason: None,
            millis: 0,
            peak_rss_kib: None,
            record: None,
            fetched: false,
        }
    }
}

/// Progress events, in the order they happen.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    Begin {
        total: usize,
    },
    Started {
        stage: &'a str,
        reason: &'a Reason,
    },
    Finished(&'a StageResult),
    /// Something the user should know that does not stop the run (the caller shows it).
    Warning(&'a Warning),
}

/// The scheduling state of a run, shared by its workers.
struct Sched {
    /// Unfinished upstream stages of each selected stage.
    indeg: BTreeMap<usize, usize>,
    ready: BTreeSet<usize>,
    results: BTreeMap<usize, StageResult>,
    /// Digests of the outputs made so far (the inputs of later keys).
    known: BTreeMap<String, String>,
    running: usize,
}

/// A worker's event for [`Engine::run`]'s caller.
enum Msg {
    Started(usize, Reason),
    Finished(Box<StageResult>),
}

/// A problem that does not stop the work; the engine never prints, its caller shows these.
#[derive(Debug, thiserror::Error)]
pub enum Warning {
    /// A command left running by a killed earlier run was stopped (what, and which group).
    #[error("{0}")]
    LeftoverReaped(String),
    #[error("cannot write the stage index (the run records keep the results): {0}")]
    IndexNotWritten(std::io::Error),
    /// The lock file could not be used and was rebuilt from the recorded runs.
    #[error("{0}; regenerating it from the recorded runs")]
    LockRegenerated(LockError),
    /// A file at an output path that this pipeline did not make (or that was edited since, or
    /// that a killed run half wrote) was replaced; a copy stays in `.artifact/kept/`.
    #[error("{0}")]
    Kept(crate::cache::Kept),
}

/// Why a stage's inputs cannot be fingerprinted (so its key, and its decision, are unknown).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("input {0} is missing")]
    Missing(String),
    #[error("cannot read input {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    /// An upstream stage must run before the input's digest is known.
    #[error("upstream stage {0} runs first")]
    UpstreamRuns(String),
}

/// Run options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Worker threads (0 = all cores).
    pub jobs: usize,
    /// Rerun the selected stages whatever the cache says.
    pub force: bool,
}

/// One stage's determinism audit.
#[derive(Clone, Debug)]
pub struct AuditResult {
    pub stage: String,
    /// Outputs whose rerun bytes differ: (path, cached digest, rerun digest).
    pub differences: Vec<(String, String, String)>,
    pub error: Option<String>,
}

/// A pipeline bound to its plan, kinds and cache.
pub struct Engine<'a> {
    pub pipeline: &'a Pipeline,
    pub plan: &'a Plan,
    pub registry: &'a Registry,
    pub cache: Cache,
    pub stat: StatCache,
    pub env: RunEnv,
    pub cancel: &'a AtomicBool,
    /// The project root, for writes checked at the moment they happen.
    pub proj: crate::fsutil::Confined,
    /// The shared remote cache, if one is configured (see [`crate::remote`]).
    pub remote: Option<crate::remote::RemoteCache>,
    /// Where `executor: slurm` stages go, if SLURM is used in this run (see [`super::slurm`]).
    pub slurm: Option<super::slurm::Slurm>,
    /// The run's aside folder ([`Cache::aside`]), once an in-place stage needed it: one folder
    /// per run, not per stage (its `mkdir` and `rmdir` were 4 % of a forced run's CPU).
    aside: std::sync::Mutex<Option<PathBuf>>,
}

/// An in-place stage's existing outputs, moved into the run's folder in `.artifact/tmp/` while
/// it runs.
struct Aside {
    /// The run's folder, created when the first output of any stage moves there (a run whose
    /// outputs do not exist yet costs no folder).
    dir: PathBuf,
    /// Outputs that existed (and now wait in `dir`, see [`Aside::slot`]).
    moved: BTreeSet<String>,
    /// Those of them that the stage's last run did not make (a user's file, a hand edit): kept
    /// in `.artifact/kept/` if the stage succeeds with other content.
    foreign: BTreeSet<String>,
}

impl Aside {
    /// Where the previous `rel` waits: one file named by [`crate::cache::aside_name`] (no
    /// subfolders to make), or under `%nested/` at its own path when that name would be too
    /// long for the file system (a path of two 130-character folders failed every rerun).
    fn slot(&self, rel: &str) -> PathBuf {
        match crate::cache::aside_name(rel) {
            name if name.len() <= 240 => self.dir.join(name),
            _ => self.dir.join(crate::cache::ASIDE_NESTED).join(rel),
        }
    }

    /// Removes the stage's files once they are not needed; the folder goes at the end of the
    /// run ([`Engine::run`]) if it is empty then.
    fn remove(&self) {
        for rel in &self.moved {
            let _ = std::fs::remove_file(self.slot(rel));
        }
    }
}

impl<'a> Engine<'a> {
    pub fn new(
        pipeline: &'a Pipeline,
        plan: &'a Plan,
        registry: &'a Registry,
        env: RunEnv,
        cancel: &'a AtomicBool,
    ) -> Engine<'a> {
        let cache = Cache::new(&pipeline.root);
        let stat = StatCache::load(&cache.stat_path());
        Engine {
            proj: crate::fsutil::Confined::new(&pipeline.root),
            pipeline,
            plan,
            registry,
            cache,
            stat,
            env,
            cancel,
            remote: None,
            slurm: None,
            aside: std::sync::Mutex::new(None),
        }
    }

    fn root(&self) -> &Path {
        &self.pipeline.root
    }

    /// The stages a command acts on: all, or the targets and everything upstream of them.
    pub fn selected(&self, targets: &[usize]) -> BTreeSet<usize> {
        if targets.is_empty() {
            (0..self.pipeline.stages.len()).collect()
        } else {
            self.plan.upstream(targets)
        }
    }

    /// The output digests of everything upstream of stage `i`, as a run would see them: from
    /// the records of up-to-date (or restorable) stages. `Err` names an upstream stage that
    /// would have to run first, or a missing input.
    pub fn upstream_known(&self, i: usize) -> Result<BTreeMap<String, String>, InputError> {
        let mut known = BTreeMap::new();
        for (j, v) in self.plan_decisions(&[i]) {
            if j == i {
                continue;
            }
            match v {
                Ok(Decision::Fresh(rec)) | Ok(Decision::Restore(rec, _)) => {
                    known.extend(rec.outputs)
                }
                Ok(Decision::Run(_)) => {
                    return Err(InputError::UpstreamRuns(
                        self.pipeline.stages[j].name.clone(),
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(known)
    }

    /// Builds stage `i`'s cache key from its input digests.
    pub fn key(&self, i: usize, inputs: BTreeMap<String, String>) -> CacheKey {
        let s = &self.pipeline.stages[i];
        let kind = self.registry.get(&s.kind).expect("validated kind");
        CacheKey {
            key_version: KEY_VERSION,
            tool_version: crate::TOOL_VERSION.to_string(),
            kind: s.kind.clone(),
            kind_version: kind.version(),
            params: s.with.to_json(),
            extra: kind.extra_key(s),
            inputs,
            names: s
                .inputs
                .iter()
                .filter_map(|p| Some((p.name.clone()?, p.path.clone())))
                .collect(),
            outputs: s.outputs.iter().map(|o| o.path.clone()).collect(),
        }
    }

    /// Digests of stage `i`'s inputs: upstream outputs from `known`, source files from disk.
    /// `Err` names an input that is missing.
    pub fn input_digests(
        &self,
        i: usize,
        known: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, InputError> {
        let mut m = BTreeMap::new();
        for inp in &self.pipeline.stages[i].inputs {
            // An input may name an upstream output through a symlinked folder.
            let upstream = known.get(&inp.path).or_else(|| {
                if self.pipeline.aliases.is_empty() {
                    return None;
                }
                self.pipeline
                    .output_named(&inp.path)
                    .and_then(|o| known.get(o))
            });
            let d = match upstream {
                Some(d) => d.clone(),
                None => match self.stat.digest(self.root(), &inp.path) {
                    Ok(Some(d)) => d,
                    Ok(None) => return Err(InputError::Missing(inp.path.clone())),
                    Err(source) => {
                        return Err(InputError::Unreadable {
                            path: inp.path.clone(),
                            source,
                        });
                    }
                },
            };
            m.insert(inp.path.clone(), d);
        }
        Ok(m)
    }

    /// Stage `i`'s key, its digest and its decision, given the output digests of the stages
    /// upstream (`known`); `Err` names a missing input.
    pub fn evaluate(
        &self,
        i: usize,
        known: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<(CacheKey, String, Decision), InputError> {
        let key = self.key(i, self.input_digests(i, known)?);
        let kd = key.digest();
        let decision = self.assess(i, &key, &kd, force);
        Ok((key, kd, decision))
    }

    /// Decides what stage `i` needs, without touching anything.
    pub fn assess(&self, i: usize, key: &CacheKey, kd: &str, force: bool) -> Decision {
        let s = &self.pipeline.stages[i];
        if force {
            return Decision::Run(Reason::Forced);
        }
        let last = self.cache.last(&s.name);
        // The record must also list exactly the declared outputs: it is read from disk and
        // may be damaged, and restoring writes to the paths it names.
        let declared: BTreeSet<&String> = key.outputs.iter().collect();
        if let Some(rec) = last
            .as_ref()
            .filter(|r| r.key_digest == kd && r.outputs.keys().eq(declared.iter().copied()))
        {
            for (p, d) in &rec.outputs {
                match self.stat.digest(self.root(), p) {
                    Ok(Some(cur)) if &cur == d => {}
                    Ok(None) => {
                        return Decision::Restore(rec.clone(), Reason::OutputMissing(p.clone()));
                    }
                    _ => return Decision::Restore(rec.clone(), Reason::OutputAltered(p.clone())),
                }
            }
            return Decision::Fresh(rec.clone());
        }
        let reason = match &last {
            Some(old) => Reason::Changed(key.diff(&old.key)),
            None => Reason::New,
        };
        if let Some(rec) = self.cache.by_key(kd)
            && rec
                .outputs
                .keys()
                .eq(key.outputs.iter().collect::<BTreeSet<_>>())
        {
            return Decision::Restore(rec, reason);
        }
        Decision::Run(reason)
    }

    /// Runs the selected stages (all when `targets` is empty) and their upstream stages.
    /// `on_event` is called from the scheduling thread only.
    pub fn run(
        &self,
        targets: &[usize],
        opts: &Options,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Vec<StageResult> {
        let selected = self.selected(targets);
        // A killed earlier run may have left commands running: stop them before anything here
        // could run the same stage at the same time.
        for m in super::procs::reap_leftovers(&self.cache.dir) {
            on_event(Event::Warning(&Warning::LeftoverReaped(m)));
        }
        on_event(Event::Begin {
            total: selected.len(),
        });
        self.sweep_temps();
        let kept = |on_event: &mut dyn FnMut(Event<'_>)| {
            for k in self.cache.take_kept() {
                on_event(Event::Warning(&Warning::Kept(k)));
            }
        };
        kept(on_event);
        if !opts.force
            && let Some(fresh) = self.all_fresh(&selected)
        {
            // Fast path (the common no-op): no thread pool, no cache writes.
            for r in &fresh {
                on_event(Event::Finished(r));
            }
            let _ = self.stat.save(&self.cache.stat_path());
            return fresh;
        }
        let jobs = threads(opts.jobs);
        if let Err(e) = self.cache.init() {
            let r: Vec<StageResult> = selected
                .iter()
                .map(|&i| self.failed(i, format!("cannot create the cache folder: {e}")))
                .collect();
            return r;
        }
        let indeg: BTreeMap<usize, usize> = selected
            .iter()
            .map(|&i| {
                (
                    i,
                    self.plan.deps[i]
                        .iter()
                        .filter(|d| selected.contains(d))
                        .count(),
                )
            })
            .collect();
        let ready: BTreeSet<usize> = indeg
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(i, _)| *i)
            .collect();
        let sched = std::sync::Mutex::new(Sched {
            indeg,
            ready,
            results: BTreeMap::new(),
            known: BTreeMap::new(),
            running: 0,
        });
        let (wake, (tx, rx)) = (std::sync::Condvar::new(), mpsc::channel::<Msg>());
        let record = self.cache.dir.join(super::procs::RECORD);
        // `jobs` workers, plain threads (not rayon workers: a worker waiting for rayon work
        // inside a stage, as polars does, may steal and run another stage on top of it, and a
        // stage that then waits for a lock or a result the first one holds never returns; a
        // kind may block). A worker that ends a stage settles it and takes the next ready one
        // itself: no thread started per stage, and no hand-over through a scheduling thread
        // (BENCHMARKS.md, forced run). This thread only passes the workers' events to
        // `on_event`, in the order they happened.
        std::thread::scope(|scope| {
            let _watcher = super::procs::watch(scope, self.cancel, &record);
            for _ in 0..jobs.clamp(1, selected.len().max(1)) {
                let tx = tx.clone();
                let (sched, wake, selected) = (&sched, &wake, &selected);
                scope.spawn(move || self.work(sched, wake, selected, opts.force, jobs == 1, &tx));
            }
            drop(tx);
            for msg in rx {
                match msg {
                    Msg::Started(i, reason) => on_event(Event::Started {
                        stage: &self.pipeline.stages[i].name,
                        reason: &reason,
                    }),
                    Msg::Finished(res) => {
                        kept(on_event);
                        on_event(Event::Finished(&res));
                    }
                }
            }
        });
        let results = sched
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .results;
        // Empty unless an output could not be put back (the next run's sweep recovers it then).
        if let Some(d) = self.aside.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = std::fs::remove_dir(d);
        }
        super::procs::close_journal(&record);
        let _ = self.stat.save(&self.cache.stat_path());
        if let Err(e) = self.cache.flush() {
            on_event(Event::Warning(&Warning::IndexNotWritten(e)));
        }
        let mut out: Vec<StageResult> = results.into_values().collect();
        // Keep the order of execution readable: topological order.
        let pos: BTreeMap<&str, usize> = self
            .plan
            .order
            .iter()
            .enumerate()
            .map(|(k, &i)| (self.pipeline.stages[i].name.as_str(), k))
            .collect();
        out.sort_by_key(|r| pos.get(r.stage.as_str()).copied().unwrap_or(usize::MAX));
        out
    }

    /// One worker of [`Engine::run`]: takes ready stages until none is ready and none runs.
    /// Stages that need no thread (fresh, skipped, interrupted, or whose key cannot be made)
    /// are settled under the lock; a stage that runs or restores runs outside it.
    fn work(
        &self,
        sched: &std::sync::Mutex<Sched>,
        wake: &std::sync::Condvar,
        selected: &BTreeSet<usize>,
        force: bool,
        single: bool,
        tx: &mpsc::Sender<Msg>,
    ) {
        let lock = || sched.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = lock();
        loop {
            let Some(i) = st.ready.pop_first() else {
                if st.running == 0 {
                    // Nothing ready and nothing running: the run is over for every worker.
                    wake.notify_all();
                    return;
                }
                st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let (key, kd, decision) = match self.settle(i, &st.results, &st.known, force) {
                Ok(job) => job,
                Err(res) => {
                    self.finish(&mut st, selected, i, *res, tx);
                    continue;
                }
            };
            if let Decision::Restore(_, r) | Decision::Run(r) = &decision {
                let _ = tx.send(Msg::Started(i, r.clone()));
            }
            st.running += 1;
            if !st.ready.is_empty() {
                wake.notify_one();
            }
            drop(st);
            if single {
                super::reset_peak_rss();
            }
            // A panic of the engine itself (kinds' own are caught inside) fails the stage
            // instead of leaving the other workers waiting for it.
            let run = std::panic::AssertUnwindSafe(|| self.execute(i, key, kd, decision));
            let res = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                self.failed(
                    i,
                    "internal error: the engine panicked running this stage".into(),
                )
            });
            st = lock();
            st.running -= 1;
            self.finish(&mut st, selected, i, res, tx);
            if !st.ready.is_empty() || st.running == 0 {
                wake.notify_all();
            }
        }
    }

    /// What to do with ready stage `i`: the job to run (key, key digest, decision), or its
    /// result when there is nothing to run.
    fn settle(
        &self,
        i: usize,
        results: &BTreeMap<usize, StageResult>,
        known: &BTreeMap<String, String>,
        force: bool,
    ) -> Result<(CacheKey, String, Decision), Box<StageResult>> {
        // An interrupt first: a stage after an interrupted one is interrupted too, not
        // "skipped because an upstream stage failed".
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Box::new(StageResult {
                status: Status::Cancelled,
                ..self.blank(i)
            }));
        }
        let blocked = self.plan.deps[i]
            .iter()
            .find(|d| results.get(d).is_some_and(|r| !r.status.ok()));
        if let Some(&d) = blocked {
            let why = format!(
                "upstream stage {} did not succeed",
                self.pipeline.stages[d].name
            );
            return Err(Box::new(StageResult {
                status: Status::Skipped(why),
                ..self.blank(i)
            }));
        }
        match self.evaluate(i, known, force) {
            Err(e) => Err(Box::new(self.failed(i, e.to_string()))),
            // Nothing to do, on no thread of its own.
            Ok((_, _, Decision::Fresh(rec))) => Err(Box::new(StageResult {
                status: Status::Fresh,
                record: Some(rec),
                ..self.blank(i)
            })),
            Ok(job) => Ok(job),
        }
    }

    /// Records the result of stage `i`, tells the caller, and readies its dependents.
    fn finish(
        &self,
        st: &mut Sched,
        selected: &BTreeSet<usize>,
        i: usize,
        res: StageResult,
        tx: &mpsc::Sender<Msg>,
    ) {
        if let Some(rec) = &res.record {
            st.known.extend(rec.outputs.clone());
        }
        let _ = tx.send(Msg::Finished(Box::new(res.clone())));
        self.release(i, selected, &mut st.indeg, &mut st.ready);
        st.results.insert(i, res);
    }

    /// Results for `selected` in plan order if every one of them is fresh, else `None`.
    fn all_fresh(&self, selected: &BTreeSet<usize>) -> Option<Vec<StageResult>> {
        let mut known = BTreeMap::new();
        let mut out = Vec::with_capacity(selected.len());
        for &i in self.plan.order.iter().filter(|i| selected.contains(i)) {
            let Ok((_, _, Decision::Fresh(rec))) = self.evaluate(i, &known, false) else {
                return None;
            };
            known.extend(rec.outputs.clone());
            out.push(StageResult {
                status: Status::Fresh,
                record: Some(rec),
                ..self.blank(i)
            });
        }
        Some(out)
    }

    fn release(
        &self,
        i: usize,
        selected: &BTreeSet<usize>,
        indeg: &mut BTreeMap<usize, usize>,
        ready: &mut BTreeSet<usize>,
    ) {
        for d in &self.plan.dependents[i] {
            if selected.contains(d) {
                let e = indeg.get_mut(d).expect("selected");
                *e -= 1;
                if *e == 0 {
                    ready.insert(*d);
                }
            }
        }
    }

    fn blank(&self, i: usize) -> StageResult {
        let s = &self.pipeline.stages[i];
        StageResult::fresh(&s.name, &s.kind)
    }

    fn failed(&self, i: usize, msg: String) -> StageResult {
        StageResult {
            status: Status::Failed(msg),
            ..self.blank(i)
        }
    }

    /// Carries out a Restore or Run decision on a worker thread.
    fn execute(&self, i: usize, key: CacheKey, kd: String, decision: Decision) -> StageResult {
        let start = Instant::now();
        // A local miss may be a remote hit: then it restores like a local one.
        let (decision, fetched) = match decision {
            Decision::Run(reason) if reason != Reason::Forced => {
                match self.remote_fetch(i, &key, &kd) {
                    Some(rec) => (Decision::Restore(rec, reason), true),
                    None => (Decision::Run(reason), false),
                }
            }
            v => (v, false),
        };
        let mut res = match decision {
            Decision::Fresh(_) => unreachable!("fresh stages are handled by the scheduler"),
            Decision::Restore(rec, reason) => match self.restore(&rec) {
                Ok(()) => {
                    let rec = Record {
                        stage: self.pipeline.stages[i].name.clone(),
                        key_digest: kd.clone(),
                        key: key.clone(),
                        ..rec
                    };
                    match self.cache.save(&rec) {
                        Ok(()) => StageResult {
                            status: Status::Restored,
                            reason: Some(reason),
                            record: Some(rec),
                            ..self.blank(i)
                        },
                        Err(e) => self.failed(i, format!("cannot write the stage record: {e}")),
                    }
                }
                Err(RestoreFailure::Damaged(p)) => {
                    self.run_stage(i, key, kd, Reason::CacheDamaged(p))
                }
                Err(RestoreFailure::Io(msg)) => self.failed(i, msg),
            },
            Decision::Run(reason) => self.run_stage(i, key, kd, reason),
        };
        res.fetched = fetched && res.status == Status::Restored;
        // A stage that ran over the SLURM cache transport published its result itself.
        let published = self
            .slurm_for(i)
            .is_some_and(|(s, _)| s.settings.transport == super::slurm::Transport::Cache);
        if let (Status::Ran, Some(rec), false) = (&res.status, &res.record, published) {
            self.remote_upload(i, rec);
        }
        res.millis = start.elapsed().as_millis() as u64;
        // A stage that ran measured its peak into its record already; read it only otherwise,
        // and never for an in-place kind (a command): the runner's peak says nothing of it.
        let in_place =
            (self.registry.get(&self.pipeline.stages[i].kind)).is_some_and(|k| k.in_place());
        res.peak_rss_kib = match (&res.status, &res.record) {
            (Status::Ran, Some(rec)) => rec.peak_rss_kib,
            _ if in_place => None,
            _ => super::peak_rss_kib(),
        };
        res
    }

    /// Restores every output of `rec` that is missing or differs.
    fn restore(&self, rec: &Record) -> Result<(), RestoreFailure> {
        for (p, d) in &rec.outputs {
            let cur = self.stat.digest(self.root(), p).ok().flatten();
            if cur.as_ref() == Some(d) {
                continue;
            }
            // What is there now is about to be replaced: keep a copy first.
            if let Some(cur) = &cur {
                self.secure(&rec.stage, p, cur, d)
                    .map_err(RestoreFailure::Io)?;
            }
            match self.cache.restore_to(d, &self.proj, p) {
                Ok(()) => self.stat.record(self.root(), p, d),
                Err(RestoreError::Missing | RestoreError::Corrupt) => {
                    return Err(RestoreFailure::Damaged(p.clone()));
                }
                Err(RestoreError::Io(e)) => {
                    return Err(RestoreFailure::Io(format!("cannot restore {p}: {e}")));
                }
            }
        }
        Ok(())
    }

    fn run_stage(&self, i: usize, key: CacheKey, kd: String, reason: Reason) -> StageResult {
        let s = &self.pipeline.stages[i];
        let kind = self.registry.get(&s.kind).expect("validated kind");
        let start = Instant::now();
        let in_place = kind.in_place();
        let scratch = if in_place {
            None
        } else {
            match self.cache.scratch(&s.name) {
                Ok(p) => Some(p),
                Err(e) => return self.failed(i, format!("cannot create a scratch folder: {e}")),
            }
        };
        // An in-place stage writes at the final paths: what is there moves aside first, so that
        // an output the command does not rewrite cannot pass for fresh, and so that a failure
        // or an interrupt puts exactly the previous files back.
        let aside = if in_place {
            match self.move_aside(s) {
                Ok(a) => Some(a),
                Err(e) => return self.failed(i, e),
            }
        } else {
            None
        };
        let out_root: PathBuf = scratch.clone().unwrap_or_else(|| self.root().to_path_buf());
        let ctx = StageCtx {
            stage: s,
            root: self.root(),
            out_root: &out_root,
            env: &self.env,
            key_digest: &kd,
            cancel: self.cancel,
        };
        let ran = match self.slurm_for(i) {
            Some((slurm, res)) => self.run_on_slurm(slurm, res, &ctx, &key),
            None => run_guarded(kind, &ctx),
        };
        let outcome = ran.and_then(|()| {
            if self.cancel.load(Ordering::SeqCst) {
                Err("interrupted".to_string())
            } else {
                self.inputs_unchanged(&key)?;
                self.commit(s, &out_root, in_place)
            }
        });
        if let Some(dir) = &scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
        // Previous outputs that could not be put back: said even when interrupted.
        let mut stranded = false;
        let outcome = match (outcome, &aside) {
            // A foreign file that cannot be kept stays aside (the next run's sweep puts it
            // back), as the message says.
            (Ok(outputs), Some(a)) => self.keep_foreign(a, &outputs).map(|()| {
                a.remove();
                outputs
            }),
            (Err(mut msg), Some(a)) => {
                if let Err(e) = self.put_back(s, a) {
                    msg.push_str(&format!(
                        "\n(and the previous outputs could not all be put back: {e}; they are kept in {})",
                        a.dir.display()
                    ));
                    stranded = true;
                }
                Err(msg)
            }
            (o, None) => o,
        };
        match outcome {
            Ok(outputs) => {
                let rec = Record {
                    stage: s.name.clone(),
                    key_digest: kd,
                    key,
                    outputs,
                    millis: start.elapsed().as_millis() as u64,
                    // An in-place kind runs a command in a child process: the runner's own peak
                    // says nothing of it (and reading /proc/self/status per stage was 1.6 % of
                    // a forced run's CPU at 61 stages).
                    peak_rss_kib: if in_place {
                        None
                    } else {
                        super::peak_rss_kib()
                    },
                };
                if let Err(e) = self.cache.save(&rec) {
                    return self.failed(i, format!("cannot write the stage record: {e}"));
                }
                StageResult {
                    status: Status::Ran,
                    reason: Some(reason),
                    record: Some(rec),
                    ..self.blank(i)
                }
            }
            Err(msg) => {
                let status = if self.cancel.load(Ordering::SeqCst) && !stranded {
                    Status::Cancelled
                } else {
                    Status::Failed(msg)
                };
                StageResult {
                    status,
                    reason: Some(reason),
                    ..self.blank(i)
                }
            }
        }
    }

    /// Hashes the outputs a stage wrote under `out_root`, stores them and moves them into place.
    fn commit(
        &self,
        s: &crate::spec::StageSpec,
        out_root: &Path,
        in_place: bool,
    ) -> Result<BTreeMap<String, String>, String> {
        let missing: Vec<&str> = s
            .outputs
            .iter()
            .filter(|o| !out_root.join(&o.path).is_file())
            .map(|o| o.path.as_str())
            .collect();
        if !missing.is_empty() {
            let what = if in_place {
                "the command did not write"
            } else {
                "the stage did not write"
            };
            return Err(if missing.len() == 1 {
                format!("{what} its declared output {}", missing[0])
            } else {
                format!("{what} its declared outputs {}", missing.join(", "))
            });
        }
        let mut outputs = BTreeMap::new();
        for o in &s.outputs {
            let src = out_root.join(&o.path);
            let d = crate::hash::sha256_file(&src)
                .map_err(|e| format!("cannot read {}: {e}", o.path))?;
            self.cache
                .put(&src, &d)
                .map_err(|e| format!("cannot store {} in the cache: {e}", o.path))?;
            outputs.insert(o.path.clone(), d);
        }
        if !in_place {
            for o in &s.outputs {
                let dest = std::fs::symlink_metadata(self.root().join(&o.path));
                if dest.is_ok_and(|m| m.is_dir()) {
                    return Err(format!("output {} is a folder; outputs are files", o.path));
                }
                // A file there that the stage's last run did not make (one made by hand before
                // the stage ever ran, an edit) is kept before it is replaced; see `secure`.
                if let Ok(Some(cur)) = self.stat.digest(self.root(), &o.path) {
                    self.secure(&s.name, &o.path, &cur, &outputs[&o.path])?;
                }
                self.proj
                    .move_in(&out_root.join(&o.path), &o.path)
                    .map_err(|e| format!("cannot move {} into place: {e}", o.path))?;
            }
        }
        for (p, d) in &outputs {
            self.stat.record(self.root(), p, d);
        }
        Ok(outputs)
    }

    /// Fails when an input no longer has the content the stage's key was built from: edited
    /// while the stage ran, its outputs may come from either version, and recording them under
    /// the key of the first would restore them for it later (an adversarial helper found it).
    pub(crate) fn inputs_unchanged(&self, key: &CacheKey) -> Result<(), String> {
        for (p, d) in &key.inputs {
            if self.stat.recheck(self.root(), p).ok().flatten().as_ref() != Some(d) {
                return Err(format!(
                    "input {p} changed while the stage ran, so its outputs may come from either version; run again"
                ));
            }
        }
        Ok(())
    }

    /// After an in-place stage succeeded: each output it replaced that its last run had not made
    /// is kept in `.artifact/kept/` unless the stage wrote the same content.
    fn keep_foreign(&self, a: &Aside, outputs: &BTreeMap<String, String>) -> Result<(), String> {
        for rel in &a.foreign {
            let slot = a.slot(rel);
            let same = crate::hash::sha256_file(&slot).is_ok_and(|d| outputs.get(rel) == Some(&d));
            if !same && let Err(e) = self.cache.keep(&slot, rel, false) {
                return Err(format!(
                    "cannot keep the previous {rel} (this pipeline did not make it) in .artifact/kept/: {e}; it waits in {}",
                    a.dir.display()
                ));
            }
        }
        Ok(())
    }

    /// Before the project file `rel` (content `digest`), an output of `stage`, is replaced by
    /// content `new`, so that doing so loses nothing: the same content needs
    /// nothing, what the stage's last run made needs only be in the store (which rebuilds it),
    /// and anything else (a file the user put there, a hand edit) is copied to
    /// `.artifact/kept/`, which `gc` never empties, and reported.
    fn secure(&self, stage: &str, rel: &str, digest: &str, new: &str) -> Result<(), String> {
        let full = self.root().join(rel);
        if !full.is_file() || new == digest {
            return Ok(());
        }
        if self.cache.made(stage, rel, digest) {
            return self.store(rel, digest);
        }
        match self.cache.keep(&full, rel, false) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "refusing to replace {rel}: this pipeline did not make it, and a copy cannot be kept in .artifact/kept/: {e}"
            )),
        }
    }

    /// Stores the project file `rel` (content `digest`), made by a stage, unless the store holds
    /// it.
    fn store(&self, rel: &str, digest: &str) -> Result<(), String> {
        if self.cache.has_object(digest) {
            return Ok(());
        }
        self.cache.put(&self.root().join(rel), digest).map_err(|e| {
            format!("refusing to replace {rel}: cannot first store a copy of it in the cache: {e}")
        })
    }

    /// Moves an in-place stage's existing outputs into a folder in `.artifact/tmp/` (a rename
    /// on the same file system), each first stored in the cache unless it holds it already.
    fn move_aside(&self, s: &crate::spec::StageSpec) -> Result<Aside, String> {
        let mut aside = Aside {
            dir: PathBuf::new(),
            moved: BTreeSet::new(),
            foreign: BTreeSet::new(),
        };
        for o in &s.outputs {
            let meta = match std::fs::symlink_metadata(self.root().join(&o.path)) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(self.undo_aside(&aside, format!("cannot look at {}: {e}", o.path)));
                }
            };
            if meta.is_dir() {
                let msg = format!("output {} is a folder; outputs are files", o.path);
                return Err(self.undo_aside(&aside, msg));
            }
            if meta.is_file() {
                // What the stage made goes to the store; anything else waits aside and is kept
                // if the stage replaces it with other content.
                let stored = match self.stat.digest(self.root(), &o.path) {
                    Ok(Some(d)) if self.cache.made(&s.name, &o.path, &d) => self.store(&o.path, &d),
                    Ok(Some(_)) => {
                        aside.foreign.insert(o.path.clone());
                        Ok(())
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(format!("cannot read {}: {e}", o.path)),
                };
                if let Err(e) = stored {
                    return Err(self.undo_aside(&aside, e));
                }
            }
            if aside.moved.is_empty() {
                aside.dir = match self.aside_dir() {
                    Ok(d) => d,
                    Err(e) => return Err(format!("cannot create a folder in .artifact/tmp: {e}")),
                };
            }
            let slot = aside.slot(&o.path);
            let moved = std::fs::create_dir_all(slot.parent().unwrap_or(&aside.dir))
                .and_then(|()| self.proj.move_out(&o.path, &slot));
            if let Err(e) = moved {
                let msg = format!(
                    "cannot move the existing {} aside before running: {e}",
                    o.path
                );
                return Err(self.undo_aside(&aside, msg));
            }
            self.stat.forget(&o.path);
            aside.moved.insert(o.path.clone());
        }
        Ok(aside)
    }

    /// The run's aside folder, created on first use.
    fn aside_dir(&self) -> std::io::Result<PathBuf> {
        let mut dir = self.aside.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = &*dir {
            return Ok(d.clone());
        }
        let d = self.cache.aside();
        std::fs::create_dir_all(&d)?;
        Ok(dir.insert(d).clone())
    }

    /// Undoes a partial [`Engine::move_aside`] (only the files it moved go back) and returns
    /// `msg`, completed if that failed too.
    fn undo_aside(&self, aside: &Aside, mut msg: String) -> String {
        let mut errors = Vec::new();
        for p in &aside.moved {
            if let Err(e) = self.proj.move_in(&aside.slot(p), p) {
                errors.push(format!("{p}: {e}"));
            }
        }
        if errors.is_empty() {
            aside.remove();
        } else {
            msg.push_str(&format!(
                "\n(and the outputs already moved could not all be put back: {}; they are kept in {})",
                errors.join("; "),
                aside.dir.display()
            ));
        }
        msg
    }

    /// After an in-place stage failed or was interrupted: removes what it wrote at its output
    /// paths and puts the files that were there before back; the aside folder goes only when
    /// everything is back.
    fn put_back(&self, s: &crate::spec::StageSpec, aside: &Aside) -> Result<(), String> {
        let mut errors = Vec::new();
        for o in &s.outputs {
            self.stat.forget(&o.path);
            let res = if aside.moved.contains(&o.path) {
                self.proj.move_in(&aside.slot(&o.path), &o.path)
            } else {
                match self.proj.remove(&o.path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    r => r,
                }
            };
            if let Err(e) = res {
                errors.push(format!("{}: {e}", o.path));
            }
        }
        if errors.is_empty() {
            aside.remove();
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The files copied to `.artifact/kept/` since the last call (see [`Warning::Kept`]).
    pub fn take_kept(&self) -> Vec<crate::cache::Kept> {
        self.cache.take_kept()
    }

    /// Deletes stale temporary files of this tool (their process is gone) in the folders of
    /// declared outputs and in `.artifact/tmp/`, first putting back outputs a killed run had
    /// moved aside. Returns how many entries went.
    pub fn sweep_temps(&self) -> usize {
        let dirs: BTreeSet<&str> = self
            .pipeline
            .stages
            .iter()
            .flat_map(|s| &s.outputs)
            .map(|o| o.path.rsplit_once('/').map_or("", |(d, _)| d))
            .collect();
        let mut n: usize = dirs.iter().map(|d| self.proj.sweep_temps(d)).sum();
        if self.cache.dir.join("tmp").is_dir() {
            n += self.cache.clean_tmp(&self.proj);
        }
        // The cache's own state files (stat.json, stages.json, run records, noop.json) are
        // written through temporary siblings too; a kill -9 mid-write leaves one behind.
        for d in [self.cache.dir.clone(), self.cache.dir.join("runs")] {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_file())
                    && crate::fsutil::is_stale_temp(&e.file_name().to_string_lossy())
                    && std::fs::remove_file(e.path()).is_ok()
                {
                    n += 1;
                }
            }
        }
        n
    }

    /// Updates the lock file with the successful results and drops stages no longer in the
    /// pipeline. Returns whether the file changed, and a warning when the old lock could not be
    /// used and every entry was regenerated from the recorded runs.
    pub fn update_lock(
        &self,
        lock_path: &Path,
        results: &[StageResult],
    ) -> Result<(bool, Option<Warning>), LockError> {
        let (mut lock, unreadable) = LockFile::read_or_regenerate(lock_path)?;
        let warning = unreadable.map(Warning::LockRegenerated);
        if warning.is_some() {
            // Every stage's entry comes back from its last successful run, not only the ones
            // this run touched.
            for s in &self.pipeline.stages {
                if let Some(rec) = self.cache.last(&s.name) {
                    lock.stages.insert(
                        s.name.clone(),
                        LockedStage {
                            kind: s.kind.clone(),
                            key: rec.key_digest,
                            outputs: rec.outputs,
                        },
                    );
                }
            }
        }
        lock.version = 1;
        let names: BTreeSet<&str> = self
            .pipeline
            .stages
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        lock.stages.retain(|k, _| names.contains(k.as_str()));
        for r in results {
            if let Some(rec) = &r.record {
                lock.stages.insert(
                    r.stage.clone(),
                    LockedStage {
                        kind: r.kind.clone(),
                        key: rec.key_digest.clone(),
                        outputs: rec.outputs.clone(),
                    },
                );
            }
        }
        Ok((lock.write(lock_path)?, warning))
    }

    /// Dry run: the decision for every selected stage, in topological order, without running
    /// anything. Stages downstream of one that must run get [`Reason::Upstream`].
    pub fn plan_decisions(&self, targets: &[usize]) -> Vec<(usize, Result<Decision, InputError>)> {
        let selected = self.selected(targets);
        let mut known = BTreeMap::new();
        let mut pending: BTreeMap<usize, String> = BTreeMap::new();
        let mut out = Vec::new();
        for &i in self.plan.order.iter().filter(|i| selected.contains(i)) {
            if let Some(up) = self.plan.deps[i].iter().find_map(|d| pending.get(d)) {
                let up = up.clone();
                out.push((i, Ok(Decision::Run(Reason::Upstream(up.clone())))));
                pending.insert(i, up);
                continue;
            }
            let v = self.evaluate(i, &known, false).map(|(_, _, v)| v);
            match &v {
                Ok(Decision::Fresh(rec)) | Ok(Decision::Restore(rec, _)) => {
                    known.extend(rec.outputs.clone())
                }
                _ => {
                    pending.insert(i, self.pipeline.stages[i].name.clone());
                }
            }
            out.push((i, v));
        }
        let _ = self.stat.save(&self.cache.stat_path());
        out
    }

    /// Determinism audit: reruns each selected stage (all of whose inputs are current) in a
    /// scratch copy of its inputs, ignoring the cache, and compares output bytes with the
    /// last recorded run.
    pub fn audit(&self, targets: &[usize], jobs: usize) -> Vec<AuditResult> {
        let selected: Vec<usize> = self.selected(targets).into_iter().collect();
        // Plain threads, as in `run` (a stage may block).
        let jobs = threads(jobs);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(Vec::new());
        let record = self.cache.dir.join(super::procs::RECORD);
        std::thread::scope(|scope| {
            let _watcher = super::procs::watch(scope, self.cancel, &record);
            for _ in 0..jobs.clamp(1, selected.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&i) = selected.get(k) else { break };
                        let r = self.audit_one(i);
                        done.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                    }
                });
            }
        });
        let mut res: Vec<AuditResult> = done.into_inner().unwrap_or_else(|p| p.into_inner());
        res.sort_by(|a, b| a.stage.cmp(&b.stage));
        res
    }

    fn audit_one(&self, i: usize) -> AuditResult {
        let s = &self.pipeline.stages[i];
        let mut r = AuditResult {
            stage: s.name.clone(),
            differences: Vec::new(),
            error: None,
        };
        if self.cancel.load(Ordering::SeqCst) {
            r.error = Some("interrupted".into());
            return r;
        }
        let Some(rec) = self.cache.last(&s.name) else {
            r.error = Some("no recorded run to compare with (run the pipeline first)".into());
            return r;
        };
        let scratch = match self.cache.scratch(&format!("audit-{}", s.name)) {
            Ok(p) => p,
            Err(e) => {
                r.error = Some(format!("cannot create a scratch folder: {e}"));
                return r;
            }
        };
        let result = (|| -> Result<(), String> {
            for inp in &s.inputs {
                let dst = scratch.join(&inp.path);
                if let Some(parent) = dst.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                std::fs::copy(self.root().join(&inp.path), &dst)
                    .map_err(|e| format!("cannot copy input {}: {e}", inp.path))?;
            }
            let kind = self.registry.get(&s.kind).expect("validated kind");
            let ctx = StageCtx {
                stage: s,
                root: &scratch,
                out_root: &scratch,
                env: &self.env,
                key_digest: &rec.key_digest,
                cancel: self.cancel,
            };
            run_guarded(kind, &ctx)?;
            for (p, d) in &rec.outputs {
                let got = crate::hash::sha256_file(&scratch.join(p))
                    .map_err(|e| format!("rerun did not write {p}: {e}"))?;
                if &got != d {
                    r.differences.push((p.clone(), d.clone(), got));
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            r.error = Some(e);
        }
        let _ = std::fs::remove_dir_all(&scratch);
        r
    }
}

/// How many stages may run at once for `-j jobs`: 0 means one per core.
fn threads(jobs: usize) -> usize {
    match jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Runs a kind, turning a panic into an error so that one broken stage cannot take the whole
/// run down.
fn run_guarded(kind: &dyn DynKind, ctx: &StageCtx<'_>) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kind.run(ctx)))
        .unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("the stage panicked: {msg}").into())
        })
        .map_err(|e| e.to_string())
}
