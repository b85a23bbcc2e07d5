//! `artifact plan`: a dry run listing every selected stage and why it would run, restore, or
//! stay cached. Nothing is executed or written (but the stat cache).

use clap::Args;
use engine::exec::{Decision, RunEnv};
use engine::exit;

use super::Global;
use super::project::Project;

use super::error::Result;

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Stages to plan (with everything upstream of them); default: all.
    pub stages: Vec<String>,
}

pub fn run(g: &Global, a: &PlanArgs) -> Result<i32> {
    let p = Project::load(g)?;
    let targets = p.resolve(&a.stages)?;
    let engine = p.engine(RunEnv::default());
    let decisions = engine.plan_decisions(&targets);
    let mut counts = [0usize; 4];
    for (i, v) in &decisions {
        let name = &p.pipeline.stages[*i].name;
        let (label, why, slot) = match v {
            Ok(Decision::Fresh(_)) => ("cached", String::new(), 0),
            Ok(Decision::Restore(_, r)) => ("restore", r.to_string(), 1),
            Ok(Decision::Run(r)) => ("run", r.to_string(), 2),
            Err(e) => ("blocked", e.to_string(), 3),
        };
        counts[slot] += 1;
        if g.json {
            outln!(
                "{}",
                serde_json::json!({"stage": name, "action": label, "reason": why})
            );
        } else if !g.quiet {
            if why.is_empty() {
                outln!("{label:<8} {name}");
            } else {
                outln!("{label:<8} {name}: {why}");
            }
        }
    }
    if !g.quiet && !g.json {
        outln!(
            "{} stages: {} would run, {} would be restored from the cache, {} cached{}",
            decisions.len(),
            counts[2],
            counts[1],
            counts[0],
            if counts[3] > 0 {
                format!(", {} blocked by missing inputs", counts[3])
            } else {
                String::new()
            }
        );
    }
    Ok(exit::OK)
}
