//! `artifact clean`: deletes the declared outputs that the cache can restore (the last recorded
//! run of their stage produced exactly these bytes and the store holds an intact copy), and says
//! which it kept and why; with `--cache`, the cache folder as well.
//!
//! Each delete resolves and checks the file's folder at that moment and deletes relative to an
//! open handle on it ([`engine::fsutil::Confined`]), so a folder swapped for a symlink after the
//! pipeline was validated cannot redirect it outside the project.

use clap::Args;
use engine::exit;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;

#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Stages whose outputs to delete; default: all.
    pub stages: Vec<String>,
    /// Also delete the cache folder (`.artifact/`).
    #[arg(long)]
    pub cache: bool,
}

pub fn run(g: &Global, a: &CleanArgs) -> Result<i32> {
    let p = Project::load(g)?;
    let targets = p.resolve(&a.stages)?;
    let root = &p.pipeline.root;
    let cache = engine::cache::Cache::new(root);
    let lock = cache
        .lock(false, || {})
        .map_err(|e| Error::lock(e, "`clean` does not wait: try again when it ends"))?;
    let idx: Vec<usize> = if targets.is_empty() {
        (0..p.pipeline.stages.len()).collect()
    } else {
        targets
    };
    let proj = engine::fsutil::Confined::new(root);
    let mut n = 0;
    let mut kept: Vec<(String, String)> = Vec::new();
    for i in idx {
        let s = &p.pipeline.stages[i];
        let rec = cache.last(&s.name);
        for o in &s.outputs {
            let full = root.join(&o.path);
            match std::fs::symlink_metadata(&full) {
                Err(_) => continue,
                Ok(m) if !m.is_file() => {
                    kept.push((o.path.clone(), "it is not a regular file".into()));
                    continue;
                }
                Ok(_) => {}
            }
            let digest = match engine::hash::sha256_file(&full) {
                Ok(d) => d,
                Err(e) => {
                    kept.push((o.path.clone(), format!("it cannot be read ({e})")));
                    continue;
                }
            };
            let why = match rec.as_ref().and_then(|r| r.outputs.get(&o.path)) {
                None => Some(format!(
                    "no recorded run of stage {} produced it, so the cache cannot restore it",
                    s.name
                )),
                Some(d) if *d != digest => Some(format!(
                    "it differs from what the last run of stage {} produced (edited since?), so the cache cannot restore it",
                    s.name
                )),
                Some(_) if !cache.holds(&digest) => {
                    Some("its copy in the cache is missing or corrupt".to_string())
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                kept.push((o.path.clone(), why));
                continue;
            }
            match proj.remove(&o.path) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => kept.push((o.path.clone(), format!("it could not be deleted: {e}"))),
            }
        }
    }
    if a.cache {
        // Still holding the lock, so that no waiting run starts on a cache being deleted. The
        // files runs replaced but did not make (`.artifact/kept/`) are the user's: they stay.
        let link = std::fs::symlink_metadata(&cache.dir).is_ok_and(|m| !m.is_dir());
        let entries = std::fs::read_dir(&cache.dir).into_iter().filter(|_| !link);
        if link {
            // Never through a link: only the link goes.
            std::fs::remove_file(&cache.dir).ok();
        }
        for e in entries.flatten().flatten() {
            if e.file_name() == engine::cache::KEPT {
                let rel = format!("{}/{}", engine::spec::CACHE_DIR, engine::cache::KEPT);
                kept.push((rel, "it holds files runs replaced but did not make".into()));
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(e.path()).ok();
            } else {
                std::fs::remove_file(e.path()).ok();
            }
        }
        std::fs::remove_dir(&cache.dir).ok();
    }
    drop(lock);
    if !g.quiet {
        for (path, why) in &kept {
            outln!("kept {path}: {why}");
        }
        let kept_note = if kept.is_empty() {
            String::new()
        } else {
            format!(", kept {}", kept.len())
        };
        outln!(
            "removed {n} output file(s){}{kept_note}",
            if a.cache { " and the cache" } else { "" }
        );
    }
    Ok(exit::OK)
}
