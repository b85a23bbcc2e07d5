//! `pipeline.lock`, committed beside `pipeline.yaml` (like `dvc.lock`): each stage's key digest
//! and its outputs' SHA-256, sorted so diffs are stable. `verify` re-hashes outputs against it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

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

impl LockFile {
    pub fn read(path: &Path) -> Result<Option<LockFile>, String> {
        match std::fs::read_to_string(path) {
            Ok(t) => serde_saphyr::from_str(&t)
                .map(Some)
                .map_err(|e| format!("{}: invalid lock file: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
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
