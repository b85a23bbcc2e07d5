//! `artifact watch [STAGES]`: runs like `artifact run`, then reruns whenever a source file
//! changes: `pipeline.yaml`, its params file or any declared input that no stage produces
//! (datasets, templates, claims and parameter files). Saves are debounced (a burst of writes gives one run). Each
//! round prints what changed and the run's usual summary. Ctrl-C ends it cleanly (exit 0); a
//! Ctrl-C during a run first stops that run as in `artifact run`.
//!
//! Changes are found by polling file stamps (size, mtime, ctime, inode) every 200 ms: one
//! `stat` per source, which costs microseconds for hundreds of files, works on network file
//! systems where inotify does not, and needs no watcher crate (none is in the dependency tree).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use engine::exit;

use super::Global;
use super::project::Project;
use super::run::RunArgs;

use super::error::Result;

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Quiet time after the last change before a rerun, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub debounce_ms: u64,
}

const POLL: Duration = Duration::from_millis(200);

/// The files whose edits trigger a rerun: the pipeline file, its params file and the sources
/// it declares. A pipeline that does not load (an input deleted, a typo) keeps the files of the
/// last one that did, so that fixing it, or recreating the input, triggers the next run.
fn watched(g: &Global, last: &[PathBuf]) -> Vec<PathBuf> {
    let mut v = vec![g.file.clone()];
    let loaded = Project::load(&Global {
        quiet: true,
        ..g.clone()
    });
    if loaded.is_err() {
        v.extend(last.iter().filter(|f| **f != g.file).cloned());
    }
    if let Ok(p) = loaded {
        let produced: std::collections::BTreeSet<&str> = p
            .pipeline
            .stages
            .iter()
            .flat_map(|s| s.outputs.iter().map(|o| o.path.as_str()))
            .collect();
        let sources: std::collections::BTreeSet<&str> = p
            .pipeline
            .stages
            .iter()
            .flat_map(|s| s.inputs.iter().map(|i| i.path.as_str()))
            .filter(|i| !produced.contains(i))
            .collect();
        v.extend(sources.into_iter().map(|s| p.pipeline.root.join(s)));
        if let Some(f) = &p.pipeline.params {
            v.push(p.pipeline.root.join(&f.path));
        }
    }
    v
}

type Stamps = BTreeMap<PathBuf, Option<engine::hash::Stamp>>;

fn stamps(files: &[PathBuf]) -> Stamps {
    files
        .iter()
        .map(|f| {
            let s = std::fs::metadata(f).ok().map(|m| engine::hash::stamp(&m));
            (f.clone(), s)
        })
        .collect()
}

fn changed(old: &Stamps, new: &Stamps) -> Vec<PathBuf> {
    new.iter()
        .filter(|(f, s)| old.get(*f) != Some(s))
        .map(|(f, _)| f.clone())
        .collect()
}

fn shown(root: &Path, f: &Path) -> String {
    f.strip_prefix(root).unwrap_or(f).display().to_string()
}

pub fn run(g: &Global, a: &WatchArgs) -> Result<i32> {
    super::interrupt::install();
    let root = engine::spec::project_root(&g.file);
    let (mut rounds, mut files) = (0u64, Vec::new());
    loop {
        rounds += 1;
        // The files are stamped before the run reads them, so an edit during the run is seen.
        files = watched(g, &files);
        let mut seen = stamps(&files);
        match super::run::run(g, &a.run) {
            Ok(_) => {}
            // The error is the same as `artifact run` prints; watching goes on.
            Err(e) => eprintln!("{e}"),
        }
        if super::interrupt::cancelled() {
            break;
        }
        if !g.quiet && !g.json {
            eprintln!(
                "watch: round {rounds} done; watching {} file(s) (Ctrl-C to stop)",
                files.len()
            );
        }
        // Wait for a change, then for the writes to settle.
        let mut edits = Vec::new();
        let mut last_change: Option<Instant> = None;
        loop {
            if super::interrupt::cancelled() {
                break;
            }
            std::thread::sleep(POLL);
            let now = stamps(&files);
            let c = changed(&seen, &now);
            if !c.is_empty() {
                for f in c {
                    if !edits.contains(&f) {
                        edits.push(f);
                    }
                }
                last_change = Some(Instant::now());
                seen = now;
            } else if last_change
                .is_some_and(|t| t.elapsed() >= Duration::from_millis(a.debounce_ms))
            {
                break;
            }
        }
        if super::interrupt::cancelled() {
            break;
        }
        if !g.quiet && !g.json {
            let names: Vec<String> = edits.iter().map(|f| shown(&root, f)).collect();
            eprintln!("watch: changed: {}", names.join(", "));
        }
    }
    if !g.quiet && !g.json {
        eprintln!("watch: stopped after {rounds} round(s)");
    }
    Ok(exit::OK)
}
