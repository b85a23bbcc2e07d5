//! `artifact gc`: drops cached objects that no current stage record refers to (and, unless
//! `--keep-runs`, the records of older runs, which would otherwise restore old states).

use clap::Args;
use engine::exit;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;

#[derive(Args, Debug)]
pub struct GcArgs {
    /// Keep the records (and objects) of earlier runs, so old states still restore without
    /// running.
    #[arg(long)]
    pub keep_runs: bool,
}

pub fn run(g: &Global, a: &GcArgs) -> Result<i32> {
    let p = Project::load(g)?;
    let cache = engine::cache::Cache::new(&p.pipeline.root);
    let _lock = cache
        .lock(false, || {})
        .map_err(|e| Error::lock(e, "`gc` does not wait: try again when it ends"))?;
    let names: std::collections::BTreeSet<&str> =
        p.pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    for s in cache.recorded_stages() {
        if !names.contains(s.as_str()) {
            cache.forget_stage(&s)?;
        }
    }
    if !a.keep_runs {
        cache.drop_old_runs()?;
    }
    // Temporary files left by killed runs, next to outputs and in `.artifact/tmp/` (outputs a
    // killed run had moved aside go back first).
    let engine = p.engine(engine::exec::RunEnv::default());
    let swept = engine.sweep_temps();
    for kept in engine.take_kept() {
        super::output::warn(kept);
    }
    let (n, bytes) = cache.gc()?;
    if !g.quiet {
        let temps = if swept > 0 {
            format!(", {swept} stale temporary file(s)")
        } else {
            String::new()
        };
        outln!(
            "gc: removed {n} object(s), {:.1} KiB{temps}",
            bytes as f64 / 1024.0
        );
    }
    Ok(exit::OK)
}
