//! `artifact why STAGE`: the structured difference between the stage's current cache key and
//! the key of its last successful run (which input, parameter or version changed).

use clap::Args;
use engine::exec::{Decision, RunEnv};
use engine::exit;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// The stage to explain.
    pub stage: String,
    /// Also print the full current cache key.
    #[arg(long)]
    pub key: bool,
}

pub fn run(g: &Global, a: &WhyArgs) -> Result<i32> {
    let p = Project::load(g)?;
    let found = p.resolve(std::slice::from_ref(&a.stage))?;
    if found.len() > 1 {
        return Err(Error::AmbiguousStage {
            name: a.stage.clone(),
            copies: found
                .iter()
                .map(|&i| p.pipeline.stages[i].name.clone())
                .collect(),
        });
    }
    let i = found[0];
    let engine = p.engine(RunEnv::default());
    // Upstream outputs as a run would see them (from the records of up-to-date stages); when
    // an upstream stage must run first, its outputs as they are on disk now.
    let (known, note) = match engine.upstream_known(i) {
        Ok(k) => (k, None),
        Err(why) => (Default::default(), Some(why)),
    };
    let (key, kd, decision) =
        engine
            .evaluate(i, &known, false)
            .map_err(|source| Error::KeyUnknown {
                stage: a.stage.clone(),
                source,
            })?;
    let last = engine.cache.last(&a.stage);
    if g.json {
        let changes: Vec<String> = last
            .as_ref()
            .map(|l| key.diff(&l.key).iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        outln!(
            "{}",
            serde_json::json!({"stage": a.stage, "key": kd, "last_key": last.as_ref().map(|l| &l.key_digest),
                "changes": changes, "key_detail": key})
        );
        return Ok(exit::OK);
    }
    outln!("stage {} (kind {}), key {}", a.stage, key.kind, short(&kd));
    match &last {
        None => outln!("  never ran successfully"),
        Some(l) if l.key_digest == kd => outln!("  same key as the last successful run"),
        Some(l) => {
            outln!(
                "  last successful run had key {}; since then:",
                short(&l.key_digest)
            );
            for c in key.diff(&l.key) {
                outln!("  - {c}");
            }
        }
    }
    if let Some(n) = &note {
        outln!("  (note: {n}; upstream outputs are compared as they are on disk now)");
    }
    match decision {
        Decision::Fresh(_) => outln!("  => up to date"),
        Decision::Restore(_, r) => outln!("  => would be restored from the cache ({r})"),
        Decision::Run(r) => outln!("  => would run ({r})"),
    }
    if a.key {
        outln!("{}", key.pretty());
    }
    Ok(exit::OK)
}

/// The first 16 characters of a digest (all of it when shorter: records are read from disk
/// and may have been damaged).
fn short(d: &str) -> &str {
    d.char_indices()
        .nth(16)
        .map_or(d, |(i, _)| d.get(..i).unwrap_or(d))
}
