//! `artifact status`: one line per stage, in run order: up to date, or stale and why, with
//! the time its outputs took to make.

use engine::exec::{Decision, RunEnv};
use engine::exit;

use super::Global;
use super::project::Project;

pub fn run(g: &Global) -> anyhow::Result<i32> {
    let p = Project::load(g)?;
    let engine = p.engine(RunEnv::default());
    let mut stale = 0;
    for (i, v) in engine.plan_decisions(&[]) {
        let s = &p.pipeline.stages[i];
        let (state, detail) = match &v {
            Ok(Decision::Fresh(rec)) => (
                "up to date",
                format!(
                    "{} output(s), made in {:.3} s",
                    rec.outputs.len(),
                    rec.millis as f64 / 1000.0
                ),
            ),
            Ok(Decision::Restore(_, r)) => ("restorable", r.to_string()),
            Ok(Decision::Run(r)) => ("stale", r.to_string()),
            Err(e) => ("blocked", e.clone()),
        };
        if !matches!(v, Ok(Decision::Fresh(_))) {
            stale += 1;
        }
        if g.json {
            println!(
                "{}",
                serde_json::json!({"stage": s.name, "kind": s.kind, "state": state, "detail": detail})
            );
        } else if !g.quiet {
            println!("{state:<10} {:<28} {:<9} {detail}", s.name, s.kind);
        }
    }
    if !g.quiet && !g.json {
        println!(
            "{} stages, {} up to date, {stale} to do",
            p.pipeline.stages.len(),
            p.pipeline.stages.len() - stale
        );
    }
    Ok(exit::OK)
}
