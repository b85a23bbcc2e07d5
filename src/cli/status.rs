//! `artifact status`: one line per stage, in run order: up to date, or stale and why, with
//! the time its outputs took to make; with `--check-remote`, also whether the remote cache
//! holds the stage's result for its current key.

use clap::Args;
use engine::exec::{Decision, RunEnv};
use engine::exit;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;
use super::remote::{RemoteArgs, load_config, remote_cache};

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Also ask the remote cache (configured, or `--remote URL`) which stages it holds.
    #[arg(long)]
    pub check_remote: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub fn run(g: &Global, a: &StatusArgs) -> Result<i32> {
    let p = Project::load(g)?;
    let mut engine = p.engine(RunEnv::default());
    let ask = a.check_remote || a.remote.remote.is_some();
    if ask {
        let cfg = load_config()?;
        let Some(mut r) = remote_cache(&a.remote, &cfg, false)? else {
            return Err(Error::usage(
                "--check-remote: no remote cache configured (use --remote URL, ARTIFACT_REMOTE, or the user config)",
            ));
        };
        r.on_warning = Some(super::output::warning_printer());
        engine.remote = Some(r);
    }
    let remote: std::collections::BTreeMap<usize, Option<bool>> =
        engine.remote_availability().into_iter().collect();
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
            Err(e) => ("blocked", e.to_string()),
        };
        if !matches!(v, Ok(Decision::Fresh(_))) {
            stale += 1;
        }
        let on_remote = remote.get(&i).copied();
        if g.json {
            let mut j = serde_json::json!({"stage": s.name, "kind": s.kind, "state": state, "detail": detail});
            if ask {
                j["remote"] = serde_json::json!(on_remote.flatten());
            }
            outln!("{j}");
        } else if !g.quiet {
            let r = match (ask, on_remote.flatten()) {
                (false, _) => "",
                (true, Some(true)) => "remote: yes  ",
                (true, Some(false)) => "remote: no   ",
                (true, None) => "remote: ?    ",
            };
            outln!("{r}{state:<10} {:<28} {:<9} {detail}", s.name, s.kind);
        }
    }
    if !g.quiet && !g.json {
        let mut line = format!(
            "{} stages, {} up to date, {stale} to do",
            p.pipeline.stages.len(),
            p.pipeline.stages.len() - stale
        );
        if ask {
            let n = remote.values().filter(|v| **v == Some(true)).count();
            line.push_str(&format!(", {n} on the remote cache"));
        }
        outln!("{line}");
    }
    Ok(exit::OK)
}
