//! `artifact check`: brings every `claims` stage up to date (running what is stale), then
//! prints each claim's verdict: PASS, MISMATCH (printed vs computed) or NEEDS INPUT. Exit 6 on
//! any mismatch not documented with `expect: mismatch`, or a documented one that now passes.

use engine::exec::{Event, Options, RunEnv};
use engine::exit;
use engine::kind::Kind as _;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;
use crate::stages::claims::{self, ClaimStatus, ClaimVerdict, ClaimsKind};

/// The verdicts of every claims stage (whose verdict CSVs must be up to date), in stage order.
pub fn read_verdicts(p: &Project) -> Result<Vec<ClaimVerdict>> {
    let mut v = Vec::new();
    for s in p.pipeline.stages.iter().filter(|s| ClaimsKind::matches(s)) {
        let path = p.pipeline.root.join(&s.outputs[0].path);
        if !path.exists() {
            return Err(Error::StageFailed {
                stage: s.name.clone(),
                why: format!(
                    "its verdicts, {}, do not exist (`artifact check` runs it)",
                    s.outputs[0].path
                ),
            });
        }
        v.extend(claims::read_verdicts(&path)?);
    }
    Ok(v)
}

/// The claims files of every `claims` stage, parsed.
pub fn claims_files(p: &Project) -> Result<Vec<crate::stages::claims::ClaimsFile>> {
    p.pipeline
        .stages
        .iter()
        .filter_map(ClaimsKind::claims_file)
        .map(|file| {
            let read = crate::stages::claims::read_claims(&p.pipeline.root.join(file), file);
            // A claims file the user wrote wrong is invalid input (exit 3), not a bug.
            read.map_err(|e| {
                let problems = format!("{e:#}");
                Error::Invalid {
                    count: problems.lines().count(),
                    problems,
                    file: file.into(),
                }
            })
        })
        .collect()
}

/// Runs the claims stages (and their upstream) quietly; fails if any stage fails.
pub fn bring_up_to_date(p: &Project, mirrors: Vec<std::path::PathBuf>) -> Result<()> {
    let targets: Vec<usize> = p
        .pipeline
        .stages
        .iter()
        .enumerate()
        .filter(|(_, s)| ClaimsKind::matches(s))
        .map(|(i, _)| i)
        .collect();
    if targets.is_empty() {
        return Err(Error::NoClaimsStage);
    }
    let env = RunEnv {
        mirrors,
        offline: false,
    };
    super::interrupt::install();
    let engine = p.engine(env);
    let _lock = engine
        .cache
        .lock(true, || {})
        .map_err(|e| Error::internal(format!("cannot lock {}: {e}", engine.cache.dir.display())))?;
    let started = std::time::Instant::now();
    let opts = Options::default();
    let res = engine.run(&targets, &opts, &mut |e| {
        if let Event::Warning(w) = e {
            super::output::warn(w);
        }
    });
    // `report` describes the last run that did any work: this one, if it did (on a fresh
    // clone `check` is that run).
    super::run::record_last_run(&engine, &res, started.elapsed(), opts.jobs);
    let lock_path = p.lock_path();
    let (_, warning) = engine
        .update_lock(&lock_path, &res)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", lock_path.display())))?;
    if let Some(w) = warning {
        super::output::warn(w);
    }
    if super::interrupt::cancelled() {
        return Err(Error::Interrupted);
    }
    if let Some(r) = res.iter().find(|r| !r.status.ok()) {
        let why = match &r.status {
            engine::exec::Status::Failed(m) | engine::exec::Status::Skipped(m) => m.clone(),
            other => other.label().to_string(),
        };
        return Err(Error::StageFailed {
            stage: r.stage.clone(),
            why,
        });
    }
    Ok(())
}

pub fn run(g: &Global) -> Result<i32> {
    let p = Project::load(g)?;
    bring_up_to_date(&p, crate::stages::fetch::mirrors(&[]))?;
    let verdicts = read_verdicts(&p)?;
    let count = |s: ClaimStatus| verdicts.iter().filter(|v| v.status == s).count();
    let unexpected = verdicts.iter().filter(|v| v.unexpected()).count();
    if g.json {
        for v in &verdicts {
            outln!(
                "{}",
                serde_json::json!({"id": v.id, "source": v.source, "printed": v.printed, "computed": v.computed,
                    "status": v.status, "expected_mismatch": v.expected_mismatch(), "unexpected": v.unexpected(), "note": v.note})
            );
        }
    } else if !g.quiet {
        for v in &verdicts {
            let label = match (v.status, v.expected_mismatch()) {
                (ClaimStatus::Mismatch, true) => "MISMATCH (documented)".to_string(),
                (ClaimStatus::Pass, true) => {
                    "PASS (documented mismatch no longer occurs!)".to_string()
                }
                (s, _) => s.label().to_string(),
            };
            let detail = match v.status {
                ClaimStatus::NeedsInput => v.note.clone(),
                ClaimStatus::Mismatch => format!(
                    "printed {}, computed {}{}",
                    v.printed,
                    v.computed,
                    if v.note.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", v.note)
                    }
                ),
                ClaimStatus::Pass => format!("{} = {}", v.printed, v.computed),
            };
            outln!("{label:<22} {:<34} {detail}  [{}]", v.id, v.source);
        }
        outln!(
            "claims: {} pass, {} mismatch ({} documented), {} need input; {} unexpected",
            count(ClaimStatus::Pass),
            count(ClaimStatus::Mismatch),
            verdicts
                .iter()
                .filter(|v| v.status == ClaimStatus::Mismatch && v.expected_mismatch())
                .count(),
            count(ClaimStatus::NeedsInput),
            unexpected
        );
    }
    Ok(if unexpected == 0 {
        exit::OK
    } else {
        exit::MISMATCH
    })
}
