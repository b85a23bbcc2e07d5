//! The no-op snapshot, `.artifact/noop.json`: how `artifact run` knows that nothing changed
//! without parsing `pipeline.yaml`, building cache keys or reading the stage index.
//!
//! After a run of the whole pipeline in which every stage ended fresh, ran or was restored, the
//! engine records the stat stamps (size, mtime, ctime, inode) of everything a stage's key or
//! freshness depends on:
//! - the pipeline file and its params file, if it declares one (both stamped *before* they
//!   were read), and the running binary (tool and kind versions, kind validation);
//! - every input and output of every stage, with the stamps under which their digests were
//!   taken (from the stat cache, so a file that changed after it was hashed cannot be stamped
//!   as if it had not);
//! - `pipeline.lock`, the stage index (`stages.json`) and the report's `last-run.json`;
//! - for stages whose key takes material from outside the files (a `command` stage's
//!   passed-through environment variables), a digest of that material.
//!
//! A later run whose stamps all match and whose outside material has the same digest would
//! find every stage fresh, so it can say so after one `stat` per path, like Make. Anything
//! else (an edit, a touch, a new binary, a missing file, a changed variable, an unreadable or
//! foreign snapshot) is a miss, and the run takes the full path, which validates the pipeline
//! exactly as before. Every engine write renames a new file into place, which changes the
//! inode, so no write can leave a stamp unchanged.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::exec::{Engine, StageResult, Status};
use crate::hash::{Stamp, sha256_bytes, stamp};
use crate::kind::Registry;
use crate::spec::{CACHE_DIR, Node, StageSpec};

/// Bump when the snapshot's layout or meaning changes.
const FORMAT: u32 = 2;
/// The snapshot's file name inside `.artifact/`.
pub const FILE: &str = "noop.json";

/// One stage as the fast path reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FreshStage {
    pub name: String,
    pub kind: String,
    pub key_digest: String,
}

/// Key material from outside the files: which stage, its `with:`, the digest of the material.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Outside {
    stage: usize,
    with: serde_json::Value,
    digest: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    format: u32,
    tool: String,
    exe: Stamp,
    pipeline: Stamp,
    /// The params file (project-relative path) and its stamp, if the pipeline declares one.
    params: Option<(String, Stamp)>,
    lock: Option<Stamp>,
    index: Option<Stamp>,
    /// `last-run.json`: a damaged one must reach the full path, which rewrites it.
    last_run: Option<Stamp>,
    /// Every stage, in plan order.
    pub stages: Vec<FreshStage>,
    outside: Vec<Outside>,
    /// Project-relative path -> stamp, for every input and output.
    files: Vec<(String, Stamp)>,
}

/// The stamp of `path` (following symlinks), if it is a readable file.
pub fn stamp_file(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| stamp(&m))
}

fn exe_stamp() -> Option<Stamp> {
    stamp_file(&std::env::current_exe().ok()?)
}

fn outside_digest(material: &BTreeMap<String, String>) -> String {
    sha256_bytes(&serde_json::to_vec(material).unwrap_or_default())
}

fn snapshot_path(root: &Path) -> std::path::PathBuf {
    root.join(CACHE_DIR).join(FILE)
}

/// Removes the snapshot (before a run that may change anything). Never fails.
pub fn invalidate(root: &Path) {
    let _ = std::fs::remove_file(snapshot_path(root));
}

/// The snapshot of the project at `root`, if every stamp and digest in it still holds.
/// `pipeline_file` and `lock_file` are the paths the caller uses for them.
pub fn check(
    root: &Path,
    pipeline_file: &Path,
    lock_file: &Path,
    registry: &Registry,
) -> Option<Snapshot> {
    let bytes = std::fs::read(snapshot_path(root)).ok()?;
    let snap: Snapshot = serde_json::from_slice(&bytes).ok()?;
    if snap.format != FORMAT || snap.tool != crate::TOOL_VERSION {
        return None;
    }
    if exe_stamp()? != snap.exe || stamp_file(pipeline_file)? != snap.pipeline {
        return None;
    }
    if let Some((rel, st)) = &snap.params
        && stamp_file(&root.join(rel)).as_ref() != Some(st)
    {
        return None;
    }
    if stamp_file(lock_file) != snap.lock
        || stamp_file(&root.join(CACHE_DIR).join("stages.json")) != snap.index
        || stamp_file(&root.join(CACHE_DIR).join("last-run.json")) != snap.last_run
    {
        return None;
    }
    for (rel, st) in &snap.files {
        if stamp_file(&root.join(rel)).as_ref() != Some(st) {
            return None;
        }
    }
    for o in &snap.outside {
        let s = snap.stages.get(o.stage)?;
        let kind = registry.get(&s.kind)?;
        let spec = StageSpec {
            name: s.name.clone(),
            loc: Default::default(),
            kind: s.kind.clone(),
            description: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            with: Node::from_json(&o.with, Default::default()),
            params: None,
        };
        if outside_digest(&kind.extra_key(&spec)) != o.digest {
            return None;
        }
    }
    Some(snap)
}

/// Writes the snapshot after a run of the whole pipeline, if every stage ended fresh, ran or
/// was restored and every path's stamp is known. `pipeline_stamp` is the pipeline file's stamp
/// taken before it was read. Returns whether a snapshot was written.
pub fn write(
    engine: &Engine<'_>,
    results: &[StageResult],
    pipeline_stamp: Option<Stamp>,
    lock_file: &Path,
) -> std::io::Result<bool> {
    let p = engine.pipeline;
    let root = &p.root;
    let (Some(pipeline), Some(exe)) = (pipeline_stamp, exe_stamp()) else {
        return Ok(false);
    };
    if results.len() != p.stages.len() {
        return Ok(false);
    }
    let params = match &p.params {
        None => None,
        Some(f) => match f.stamp {
            Some(st) => Some((f.path.clone(), st)),
            None => return Ok(false),
        },
    };
    let by_name: BTreeMap<&str, &StageResult> =
        results.iter().map(|r| (r.stage.as_str(), r)).collect();
    let mut stages = Vec::with_capacity(p.stages.len());
    let mut outside = Vec::new();
    let mut files: BTreeMap<&str, Stamp> = BTreeMap::new();
    for &i in &engine.plan.order {
        let s = &p.stages[i];
        let Some(r) = by_name.get(s.name.as_str()) else {
            return Ok(false);
        };
        let Some(rec) = r.record.as_ref() else {
            return Ok(false);
        };
        if !matches!(r.status, Status::Fresh | Status::Ran | Status::Restored) {
            return Ok(false);
        }
        for path in s.inputs.iter().chain(&s.outputs) {
            let Some(st) = engine.stat.stamp_of(&path.path) else {
                return Ok(false);
            };
            files.insert(&path.path, st);
        }
        let Some(kind) = engine.registry.get(&s.kind) else {
            return Ok(false);
        };
        let material = kind.extra_key(s);
        if !material.is_empty() {
            outside.push(Outside {
                stage: stages.len(),
                with: s.with.to_json(),
                digest: outside_digest(&material),
            });
        }
        stages.push(FreshStage {
            name: s.name.clone(),
            kind: s.kind.clone(),
            key_digest: rec.key_digest.clone(),
        });
    }
    let snap = Snapshot {
        format: FORMAT,
        tool: crate::TOOL_VERSION.to_string(),
        exe,
        pipeline,
        params,
        lock: stamp_file(lock_file),
        index: stamp_file(&root.join(CACHE_DIR).join("stages.json")),
        last_run: stamp_file(&root.join(CACHE_DIR).join("last-run.json")),
        stages,
        outside,
        files: files.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    crate::fsutil::write_atomic(&snapshot_path(root), &serde_json::to_vec(&snap)?)?;
    Ok(true)
}
