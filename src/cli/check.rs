//! `artifact check`: brings every `claims` stage up to date (running what is stale), then
//! prints each claim's verdict: PASS, MISMATCH (printed vs computed) or NEEDS INPUT. Exit 6 on
//! any mismatch not documented with `expect: mismatch`, or a documented one that now passes.

use engine::exec::{Options, RunEnv};
use engine::exit;
use engine::kind::Kind as _;

use super::Global;
use super::project::{Project, fail};
use crate::stages::claims::ClaimsKind;
use crate::stages::csvtab::Table;

/// One claim row from a claims stage's verdict CSV.
pub struct Verdict {
    pub id: String,
    pub source: String,
    pub printed: String,
    pub computed: String,
    pub status: String,
    pub expected_mismatch: bool,
    pub note: String,
}

impl Verdict {
    /// Mismatches not documented, and documented ones that no longer occur.
    pub fn unexpected(&self) -> bool {
        match self.status.as_str() {
            "MISMATCH" => !self.expected_mismatch,
            "PASS" => self.expected_mismatch,
            _ => false,
        }
    }
}

/// Reads the verdict CSVs of every claims stage (which must be up to date).
pub fn read_verdicts(p: &Project) -> anyhow::Result<Vec<Verdict>> {
    let mut v = Vec::new();
    for s in p.pipeline.stages.iter().filter(|s| ClaimsKind::matches(s)) {
        let t = Table::read(&p.pipeline.root.join(&s.outputs[0].path))?;
        let c = |n: &str| t.col(n);
        let (id, src, pr, co, st, ex, no) = (
            c("id")?,
            c("source")?,
            c("printed")?,
            c("computed")?,
            c("status")?,
            c("expected")?,
            c("note")?,
        );
        for r in &t.rows {
            v.push(Verdict {
                id: r[id].clone(),
                source: r[src].clone(),
                printed: r[pr].clone(),
                computed: r[co].clone(),
                status: r[st].clone(),
                expected_mismatch: r[ex] == "mismatch",
                note: r[no].clone(),
            });
        }
    }
    Ok(v)
}

/// The claims files of every `claims` stage, parsed.
pub fn claims_files(p: &Project) -> anyhow::Result<Vec<crate::stages::claims::ClaimsFile>> {
    p.pipeline
        .stages
        .iter()
        .filter_map(ClaimsKind::claims_file)
        .map(|file| crate::stages::claims::read_claims(&p.pipeline.root.join(file)))
        .collect()
}

/// Runs the claims stages (and their upstream) quietly; fails if any stage fails.
pub fn bring_up_to_date(p: &Project, mirrors: Vec<std::path::PathBuf>) -> anyhow::Result<()> {
    let targets: Vec<usize> = p
        .pipeline
        .stages
        .iter()
        .enumerate()
        .filter(|(_, s)| ClaimsKind::matches(s))
        .map(|(i, _)| i)
        .collect();
    if targets.is_empty() {
        return Err(fail(
            exit::PLAN,
            "error: the pipeline has no stage of kind `claims`",
        ));
    }
    let env = RunEnv {
        mirrors,
        offline: false,
    };
    super::interrupt::install();
    let engine = p.engine(env);
    let _lock = engine.cache.lock(true, || {}).map_err(|e| {
        fail(
            exit::INTERNAL,
            format!("error: cannot lock {}: {e}", engine.cache.dir.display()),
        )
    })?;
    let res = engine.run(&targets, &Options::default(), &mut |_| {});
    let lock_path = p.lock_path();
    engine.update_lock(&lock_path, &res).map_err(|e| {
        fail(
            exit::INTERNAL,
            format!("error: cannot write {}: {e}", lock_path.display()),
        )
    })?;
    if super::interrupt::cancelled() {
        return Err(fail(exit::INTERRUPTED, "interrupted"));
    }
    if let Some(r) = res.iter().find(|r| !r.status.ok()) {
        let why = match &r.status {
            engine::exec::Status::Failed(m) | engine::exec::Status::Skipped(m) => m.clone(),
            other => other.label().to_string(),
        };
        return Err(fail(
            exit::STAGE_FAILED,
            format!(
                "error: stage {} did not succeed: {why}
(`artifact run` shows every stage)",
                r.stage
            ),
        ));
    }
    Ok(())
}

pub fn run(g: &Global) -> anyhow::Result<i32> {
    let p = Project::load(g)?;
    bring_up_to_date(&p, crate::stages::fetch::mirrors(&[]))?;
    let verdicts = read_verdicts(&p)?;
    let count = |s: &str| verdicts.iter().filter(|v| v.status == s).count();
    let unexpected = verdicts.iter().filter(|v| v.unexpected()).count();
    if g.json {
        for v in &verdicts {
            println!(
                "{}",
                serde_json::json!({"id": v.id, "source": v.source, "printed": v.printed, "computed": v.computed,
                    "status": v.status, "expected_mismatch": v.expected_mismatch, "unexpected": v.unexpected(), "note": v.note})
            );
        }
    } else if !g.quiet {
        for v in &verdicts {
            let label = match (v.status.as_str(), v.expected_mismatch) {
                ("MISMATCH", true) => "MISMATCH (documented)".to_string(),
                ("PASS", true) => "PASS (documented mismatch no longer occurs!)".to_string(),
                (s, _) => s.to_string(),
            };
            let detail = match v.status.as_str() {
                "NEEDS INPUT" => v.note.clone(),
                "MISMATCH" => format!(
                    "printed {}, computed {}{}",
                    v.printed,
                    v.computed,
                    if v.note.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", v.note)
                    }
                ),
                _ => format!("{} = {}", v.printed, v.computed),
            };
            println!("{label:<22} {:<34} {detail}  [{}]", v.id, v.source);
        }
        println!(
            "claims: {} pass, {} mismatch ({} documented), {} need input; {} unexpected",
            count("PASS"),
            count("MISMATCH"),
            verdicts
                .iter()
                .filter(|v| v.status == "MISMATCH" && v.expected_mismatch)
                .count(),
            count("NEEDS INPUT"),
            unexpected
        );
    }
    Ok(if unexpected == 0 {
        exit::OK
    } else {
        exit::MISMATCH
    })
}
