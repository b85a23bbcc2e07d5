//! `artifact clean`: deletes declared outputs (they stay restorable from the cache), or with
//! `--cache` the cache folder as well.

use clap::Args;
use engine::exit;

use super::Global;
use super::project::{Project, fail};

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Stages whose outputs to delete; default: all.
    pub stages: Vec<String>,
    /// Also delete the cache folder (`.artifact/`).
    #[arg(long)]
    pub cache: bool,
}

pub fn run(g: &Global, a: &CleanArgs) -> anyhow::Result<i32> {
    let p = Project::load(g)?;
    let targets = p.resolve(&a.stages)?;
    let cache = engine::cache::Cache::new(&p.pipeline.root);
    let lock = cache.lock(false, || {}).map_err(|e| {
        fail(
            exit::INTERNAL,
            format!("error: cannot lock the project: {e}"),
        )
    })?;
    let idx: Vec<usize> = if targets.is_empty() {
        (0..p.pipeline.stages.len()).collect()
    } else {
        targets
    };
    let mut n = 0;
    for i in idx {
        for o in &p.pipeline.stages[i].outputs {
            if std::fs::remove_file(p.pipeline.root.join(&o.path)).is_ok() {
                n += 1;
            }
        }
    }
    if a.cache {
        // Still holding the lock, so that no waiting run starts on a cache being deleted.
        std::fs::remove_dir_all(&cache.dir).ok();
    }
    drop(lock);
    if !g.quiet {
        println!(
            "removed {n} output file(s){}",
            if a.cache { " and the cache" } else { "" }
        );
    }
    Ok(exit::OK)
}
