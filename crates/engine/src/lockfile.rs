//! `pipeline.lock`, committed beside `pipeline.yaml` (like `dvc.lock`): each stage's key digest
//! and its outputs' SHA-256, sorted so diffs are stable. `verify` re-hashes outputs against it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The lock file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    #[serde(default)]
    pub stages: BTreeMap<String, LockedStage>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedStage {
    pub kind: String,
    pub key: String,
    pub outputs: BTreeMap<String, String>,
}

/// File name of the lock, beside the pipeline file.
pub fn lock_path(pipeline_file: &Path) -> std::path::PathBuf {
    pipeline_file.with_extension("lock")
}

/// Why a lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid lock file: {problem}", path.display())]
    Invalid { path: PathBuf, problem: LockProblem },
    /// Writing the regenerated lock failed (shown as the I/O error alone: the caller says
    /// which file).
    #[error("{0}")]
    Write(#[from] std::io::Error),
}

/// What is wrong with a lock file's content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockProblem {
    #[error("it is not UTF-8 text")]
    NotUtf8,
    #[error("it is empty")]
    Empty,
    #[error("it holds git conflict markers (line {line}): it was merged by hand")]
    ConflictMarkers { line: usize },
    /// The YAML does not parse or does not have the lock's shape (the message locates it).
    #[error("{0}")]
    Yaml(String),
    #[error("version {0} is not supported (expected 1)")]
    Version(u32),
}

impl LockFile {
    /// Reads the lock: `Ok(None)` when there is none, `Err` naming the file and what is wrong
    /// with it when it cannot be used (truncated, empty, binary, git conflict markers, unknown
    /// version).
    pub fn read(path: &Path) -> Result<Option<LockFile>, LockError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(&bytes)
            .map(Some)
            .map_err(|problem| LockError::Invalid {
                path: path.to_path_buf(),
                problem,
            })
    }

    /// Parses the lock file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<LockFile, LockProblem> {
        let text = std::str::from_utf8(bytes).map_err(|_| LockProblem::NotUtf8)?;
        if text.trim().is_empty() {
            return Err(LockProblem::Empty);
        }
        if let Some(n) = text.lines().position(|l| {
            ["<<<<<<<", ">>>>>>>", "======="]
                .iter()
                .any(|m| l.starts_with(*m))
        }) {
            return Err(LockProblem::ConflictMarkers { line: n + 1 });
        }
        let lock: LockFile = serde_saphyr::from_str(text)
            .map_err(|e| LockProblem::Yaml(crate::spec::node::yaml_error_message(&e, text)))?;
        if lock.version != 1 {
            return Err(LockProblem::Version(lock.version));
        }
        Ok(lock)
    }

    /// Reads the lock for a run that is about to rewrite it: a lock that cannot be used is
    /// replaced instead of failing the run. Returns the lock and, when the file was unusable,
    /// why (the caller warns and regenerates every entry).
    pub fn read_or_regenerate(path: &Path) -> Result<(LockFile, Option<LockError>), LockError> {
        match Self::read(path) {
            Ok(l) => Ok((l.unwrap_or_default(), None)),
            Err(_) if !path.exists() => Ok((LockFile::default(), None)),
            Err(e) if std::fs::metadata(path).is_ok_and(|m| m.is_file()) => {
                Ok((LockFile::default(), Some(e)))
            }
            Err(e) => Err(e),
        }
    }

    /// Deterministic YAML rendering.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# Written by `artifact run`: each stage's cache key and its outputs' sha256.\n\
             # Check the files against it with `artifact verify`. Do not edit by hand.\n",
        );
        let _ = writeln!(s, "version: {}", self.version);
        if self.stages.is_empty() {
            s.push_str("stages: {}\n");
            return s;
        }
        s.push_str("stages:\n");
        for (name, st) in &self.stages {
            let _ = writeln!(s, "  {}:", quote(name));
            let _ = writeln!(s, "    kind: {}", quote(&st.kind));
            let _ = writeln!(s, "    key: {}", st.key);
            s.push_str("    outputs:\n");
            for (p, d) in &st.outputs {
                let _ = writeln!(s, "      {}: {d}", quote(p));
            }
        }
        s
    }

    /// Writes the lock atomically if its content changed.
    pub fn write(&self, path: &Path) -> std::io::Result<bool> {
        crate::fsutil::write_if_changed(path, self.render().as_bytes())
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_round_trips() {
        let mut l = LockFile {
            version: 1,
            ..Default::default()
        };
        l.stages.insert(
            "b".into(),
            LockedStage {
                kind: "command".into(),
                key: "ab".repeat(32),
                outputs: [("out/x y.csv".to_string(), "cd".repeat(32))].into(),
            },
        );
        let text = l.render();
        let back: LockFile = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, l);
    }
}
