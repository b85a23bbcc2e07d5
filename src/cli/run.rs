//! `artifact run`: take the project lock, run what is stale, update `pipeline.lock`, record
//! the run for the report, and optionally audit determinism (`--check`).

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use engine::cache::Cache;
use engine::exec::{Engine, Event, Options, RunEnv, StageResult, Status};

use super::records::{Audit, LastRun};
use engine::exit;

use super::Global;
use super::error::{Error, Result};
use super::output::{Reporter, color_enabled, paint};
use super::project::Project;
use crate::stages::fetch::FetchKind;
use engine::kind::Kind as _;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Stages to run (with everything upstream of them); default: all.
    pub stages: Vec<String>,
    /// Worker threads (default: all cores; at most 256).
    #[arg(short = 'j', long = "jobs", default_value_t = 0, value_parser = parse_jobs)]
    pub jobs: usize,
    /// Rerun the selected stages even when cached.
    #[arg(long)]
    pub force: bool,
    /// After the run, rerun every selected stage ignoring the cache, in a scratch folder, and
    /// compare output bytes (determinism audit; exit 6 on any difference).
    #[arg(long)]
    pub check: bool,
    /// A folder holding pinned input files (tried before any download); repeatable.
    /// `ARTIFACT_MIRROR` adds more (colon-separated).
    #[arg(long = "mirror", value_name = "DIR")]
    pub mirror: Vec<PathBuf>,
    /// Never use the network.
    #[arg(long)]
    pub offline: bool,
    /// Fail at once if another run holds the project lock, instead of waiting.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub remote: super::remote::RemoteArgs,
    /// `local` runs every stage on this machine, ignoring `executor: slurm` hints.
    #[arg(long, value_name = "local", value_parser = ["local"])]
    pub executor: Option<String>,
}

/// Most worker threads `-j` accepts: each is an OS thread (and may run a command), so a typo
/// like `-j 30000` must not start thirty thousand of them.
pub const MAX_JOBS: usize = 256;

fn parse_jobs(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of worker threads"))?;
    if n > MAX_JOBS {
        return Err(format!(
            "{n} worker threads is too many: at most {MAX_JOBS} (0 means one per core)"
        ));
    }
    Ok(n)
}

/// Takes the project lock (waiting for another run unless `--no-wait`).
fn take_lock(cache: &Cache, a: &RunArgs, quiet: bool) -> Result<std::fs::File> {
    cache
        .lock(!a.no_wait, || {
            if !quiet {
                eprintln!("waiting for another artifact run on this project to finish...");
            }
        })
        .map_err(|e| Error::lock(e, "drop --no-wait to wait for it"))
}

/// The no-op fast path: when the snapshot of the last complete run still holds (see
/// `engine::noop`), every stage is fresh, and that is all there is to say. `None`: take the
/// full path (which validates the pipeline).
fn fast_noop(g: &Global, a: &RunArgs, started: Instant) -> Result<Option<i32>> {
    if a.force || a.check || !a.stages.is_empty() {
        return Ok(None);
    }
    let root = engine::spec::project_root(&g.file);
    if !root
        .join(engine::spec::CACHE_DIR)
        .join(engine::noop::FILE)
        .is_file()
    {
        return Ok(None);
    }
    let registry = crate::stages::registry();
    let cache = Cache::new(&root);
    let quiet = g.quiet || g.json;
    let _lock = take_lock(&cache, a, quiet)?;
    let lock_file = engine::lockfile::lock_path(&g.file);
    let Some(snap) = engine::noop::check(&root, &g.file, &lock_file, &registry) else {
        return Ok(None);
    };
    let mut rep = Reporter::new(g.quiet, g.json);
    if g.json {
        // `snapshot: true` tells scripts (and tests) that the no-op fast path answered.
        outln!(
            "{}",
            serde_json::json!({"event": "begin", "stages": snap.stages.len(), "snapshot": true})
        );
    } else {
        rep.event(Event::Begin {
            total: snap.stages.len(),
        });
    }
    for s in &snap.stages {
        let r = StageResult::fresh(&s.name, &s.kind);
        if g.json {
            let mut run = super::records::StageRun::from(&r);
            run.key = Some(s.key_digest.clone());
            outln!(
                "{}",
                serde_json::to_string(&super::records::Finished::new(&run)).unwrap_or_default()
            );
        } else {
            rep.event(Event::Finished(&r));
        }
    }
    rep.finish();
    if !quiet {
        let n = snap.stages.len();
        outln!(
            "{n} stages: 0 ran, 0 restored, {n} cached in {:.3} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Some(exit::OK))
}

pub fn run(g: &Global, a: &RunArgs) -> Result<i32> {
    let started = Instant::now();
    if let Some(code) = fast_noop(g, a, started)? {
        return Ok(code);
    }
    // Stamped before it is read: an edit during the run cannot be mistaken for this content.
    let pipeline_stamp = engine::noop::stamp_file(&g.file);
    let cfg = super::remote::load_config()?;
    let p = Project::load(g)?;
    let targets = p.resolve(&a.stages)?;
    super::interrupt::install();
    let env = RunEnv {
        mirrors: crate::stages::fetch::mirrors(&a.mirror),
        offline: a.offline,
    };
    let mut engine = p.engine(env);
    engine.remote = super::remote::remote_cache(&a.remote, &cfg, false)?;
    if let Some(r) = engine.remote.as_mut() {
        r.on_warning = Some(super::output::warning_printer());
    }
    let quiet = g.quiet || g.json;
    let _lock = take_lock(&engine.cache, a, quiet)?;
    engine.slurm = super::remote::slurm(
        &cfg,
        a.executor.is_some(),
        &p.pipeline,
        &engine.cache.dir,
        engine.remote.as_ref(),
    )?;
    engine::noop::invalidate(&p.pipeline.root);
    let mut rep = Reporter::new(g.quiet, g.json);
    let opts = Options {
        jobs: a.jobs,
        force: a.force,
    };
    let results = engine.run(&targets, &opts, &mut |e| rep.event(e));
    rep.finish();
    if let Some(s) = &engine.slurm
        && !super::interrupt::cancelled()
    {
        for m in s.cancel_leftovers() {
            super::output::warn(m);
        }
    }
    let wall = started.elapsed();
    let (_, warning) = engine
        .update_lock(&p.lock_path(), &results)
        .map_err(|e| Error::internal(format!("cannot write the lock file: {e}")))?;
    if let Some(w) = warning {
        super::output::warn(w);
    }
    record_last_run(&engine, &results, wall, a.jobs);
    if targets.is_empty() && !super::interrupt::cancelled() {
        // Only a complete, successful run may vouch for the next no-op (`write` checks too).
        let _ = engine::noop::write(&engine, &results, pipeline_stamp, &p.lock_path());
    }

    let count = |f: fn(&Status) -> bool| results.iter().filter(|r| f(&r.status)).count();
    let (ran, restored, cached) = (
        count(|s| matches!(s, Status::Ran)),
        count(|s| matches!(s, Status::Restored)),
        count(|s| matches!(s, Status::Fresh)),
    );
    let failed: Vec<&StageResult> = results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed(_)))
        .collect();
    let skipped: Vec<&StageResult> = results
        .iter()
        .filter(|r| matches!(r.status, Status::Skipped(_)))
        .collect();
    let interrupted = count(|s| matches!(s, Status::Cancelled));
    let cancelled = super::interrupt::cancelled();
    if !quiet {
        let color = color_enabled();
        let fetched = results.iter().filter(|r| r.fetched).count();
        let mut line = format!("{} stages: {ran} ran, {restored} restored", results.len());
        if fetched > 0 {
            line.push_str(&format!(" ({fetched} fetched from remote)"));
        }
        line.push_str(&format!(", {cached} cached"));
        if !failed.is_empty() {
            line.push_str(&paint(color, "31;1", &format!(", {} failed", failed.len())));
        }
        if !skipped.is_empty() {
            line.push_str(&format!(", {} skipped", skipped.len()));
        }
        if interrupted > 0 {
            line.push_str(&format!(", {interrupted} interrupted"));
        }
        line.push_str(&format!(" in {:.3} s", wall.as_secs_f64()));
        outln!("{line}");
        if !skipped.is_empty() {
            let names: Vec<&str> = skipped.iter().map(|r| r.stage.as_str()).collect();
            outln!(
                "skipped because an upstream stage failed: {}",
                names.join(", ")
            );
        }
        for r in &results {
            if let (Status::Restored, Some(engine::exec::Reason::OutputAltered(path))) =
                (&r.status, &r.reason)
            {
                let fetched = p
                    .pipeline
                    .stages
                    .iter()
                    .find(|s| s.name == r.stage)
                    .is_some_and(FetchKind::matches);
                eprintln!("{}", edited_output_note(path, r, fetched));
            }
        }
    }
    for r in &failed {
        if let Status::Failed(m) = &r.status {
            eprintln!("error: stage {} failed: {m}", r.stage);
        }
    }
    if cancelled {
        eprintln!("interrupted");
        return Ok(exit::INTERRUPTED);
    }
    if !failed.is_empty() || !skipped.is_empty() {
        return Ok(exit::STAGE_FAILED);
    }
    if a.check {
        return audit(&engine, &targets, a.jobs, g);
    }
    Ok(exit::OK)
}

/// Says why a hand edit of an output was undone, and how to make such an edit stick.
fn edited_output_note(path: &str, r: &StageResult, fetched: bool) -> String {
    format!(
        "note: {path} had been edited by hand, but it is an output of stage {} ({}), so the run put back the version that stage made (the edit is kept in .artifact/kept/). To change it for good, edit what the stage reads (its inputs or its `with:` in pipeline.yaml), or make the file a source by removing it from the stage's outputs.{}",
        r.stage,
        r.kind,
        if fetched {
            " A fetched file is pinned by its sha256: to correct its data, list the edits in a corrections file of the `validate` stage that reads it (docs/kinds.md, \"Corrections\")."
        } else {
            ""
        }
    )
}

fn audit(engine: &Engine<'_>, targets: &[usize], jobs: usize, g: &Global) -> Result<i32> {
    let res = engine.audit(targets, jobs);
    if super::interrupt::cancelled() {
        eprintln!("interrupted");
        return Ok(exit::INTERRUPTED);
    }
    let mut bad = 0;
    for r in &res {
        let ok = r.differences.is_empty() && r.error.is_none();
        if !ok {
            bad += 1;
        }
        if g.json {
            outln!(
                "{}",
                serde_json::json!({"event": "audit", "stage": r.stage, "ok": ok,
                    "differences": r.differences.iter().map(|(p, a, b)| serde_json::json!({"path": p, "cached": a, "rerun": b})).collect::<Vec<_>>(),
                    "error": r.error})
            );
            continue;
        }
        if let Some(e) = &r.error {
            outln!("audit ERROR     {}: {e}", r.stage);
        } else if !r.differences.is_empty() {
            for (p, a, b) in &r.differences {
                outln!(
                    "audit DIFFERS   {}: {p} (cached {}, rerun {})",
                    r.stage,
                    a.get(..12).unwrap_or(a),
                    b.get(..12).unwrap_or(b)
                );
            }
        } else if !g.quiet {
            outln!("audit identical {}", r.stage);
        }
    }
    if !g.quiet && !g.json {
        outln!(
            "determinism audit: {} of {} stages reproduce byte for byte",
            res.len() - bad,
            res.len()
        );
    }
    save_audit(engine, &res);
    Ok(if bad == 0 { exit::OK } else { exit::MISMATCH })
}

/// Records a run for `artifact report` (also called by `check`). The report describes the last
/// run that did any work; a pure no-op leaves the record alone (and saves the no-op a file
/// write and rename). An unreadable last-run.json is rewritten even by a no-op, so `report` is
/// never stuck (the no-op snapshot stamps the file, so a damaged one also sends the run down
/// this path).
pub(super) fn record_last_run(
    engine: &Engine<'_>,
    results: &[StageResult],
    wall: std::time::Duration,
    jobs: usize,
) {
    if results.iter().any(|r| !matches!(r.status, Status::Fresh)) || !last_run_readable(engine) {
        save_last_run(engine, results, wall.as_millis() as u64, jobs);
    }
}

fn last_run_readable(engine: &Engine<'_>) -> bool {
    LastRun::read(&engine.cache.dir).is_ok()
}

/// Records the run (per-stage status, time, memory) for `artifact report`.
fn save_last_run(engine: &Engine<'_>, results: &[StageResult], wall_ms: u64, jobs: usize) {
    let _ = LastRun::new(results, wall_ms, jobs).write(&engine.cache.dir);
}

fn save_audit(engine: &Engine<'_>, res: &[engine::exec::AuditResult]) {
    let _ = Audit::new(res).write(&engine.cache.dir);
}
