//! The records a run leaves for `artifact report`: `.artifact/last-run.json` ([`LastRun`]) and
//! `.artifact/last-audit.json` ([`Audit`]). One serde type each, shared by the writer (`run`)
//! and the reader (`report`), so that a field renamed on one side cannot be read as empty on
//! the other. A stage's entry is also the `--json` event `finished`.

use std::path::Path;

use engine::exec::{AuditResult, StageResult};
use serde::{Deserialize, Serialize};

/// `last-run.json`, in the cache folder.
const LAST_RUN: &str = "last-run.json";
/// `last-audit.json`, in the cache folder.
const LAST_AUDIT: &str = "last-audit.json";

/// How a stage ended, as recorded and as printed in `--json` events (the engine's
/// [`engine::exec::Status`] without its message, which goes to [`StageRun::error`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Cached,
    Restored,
    Ran,
    Failed,
    Skipped,
    Interrupted,
}

impl Status {
    /// The word written to the record and shown in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Cached => "cached",
            Status::Restored => "restored",
            Status::Ran => "ran",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
        }
    }
}

/// One stage of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRun {
    pub stage: String,
    pub kind: String,
    pub status: Status,
    /// Why it ran or was restored (the cache decision), if it did.
    pub reason: Option<String>,
    /// The failure, or why it was skipped.
    pub error: Option<String>,
    pub millis: u64,
    pub peak_rss_kib: Option<u64>,
    /// Hex SHA-256 of the cache key, for successful stages.
    pub key: Option<String>,
    /// Restored from the remote cache (issue 11).
    #[serde(default)]
    pub fetched_from_remote: bool,
}

impl From<&StageResult> for StageRun {
    fn from(r: &StageResult) -> Self {
        use engine::exec::Status as S;
        let (status, error) = match &r.status {
            S::Failed(m) => (Status::Failed, Some(m.clone())),
            S::Skipped(m) => (Status::Skipped, Some(m.clone())),
            S::Cancelled => (Status::Interrupted, None),
            S::Fresh => (Status::Cached, None),
            S::Restored => (Status::Restored, None),
            S::Ran => (Status::Ran, None),
        };
        StageRun {
            stage: r.stage.clone(),
            kind: r.kind.clone(),
            status,
            reason: r.reason.as_ref().map(ToString::to_string),
            error,
            millis: r.millis,
            peak_rss_kib: r.peak_rss_kib,
            key: r.record.as_ref().map(|x| x.key_digest.clone()),
            fetched_from_remote: r.fetched,
        }
    }
}

/// The `--json` line for a finished stage: `{"event": "finished", ...the stage's entry}`.
#[derive(Serialize)]
pub struct Finished<'a> {
    event: &'static str,
    #[serde(flatten)]
    run: &'a StageRun,
}

impl<'a> Finished<'a> {
    pub fn new(run: &'a StageRun) -> Self {
        Finished {
            event: "finished",
            run,
        }
    }
}

/// `last-run.json`: the last run that did any work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub wall_millis: u64,
    pub jobs: usize,
    pub stages: Vec<StageRun>,
}

impl LastRun {
    pub fn new(results: &[StageResult], wall_millis: u64, jobs: usize) -> Self {
        LastRun {
            wall_millis,
            jobs,
            stages: results.iter().map(StageRun::from).collect(),
        }
    }

    /// Reads the record from the cache folder `cache_dir`; an error says what is wrong.
    pub fn read(cache_dir: &Path) -> Result<LastRun, String> {
        read_json(&cache_dir.join(LAST_RUN))
    }

    /// Writes the record atomically into the cache folder `cache_dir`.
    pub fn write(&self, cache_dir: &Path) -> std::io::Result<()> {
        write_json(&cache_dir.join(LAST_RUN), self)
    }
}

/// One stage of the determinism audit (`run --check`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditedStage {
    pub stage: String,
    /// Whether the rerun reproduced every output byte for byte.
    pub identical: bool,
    /// Outputs whose rerun differs.
    pub differences: Vec<String>,
    /// Why the rerun could not be made.
    pub error: Option<String>,
}

/// `last-audit.json`: the last determinism audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Audit {
    pub stages: Vec<AuditedStage>,
}

impl Audit {
    pub fn new(res: &[AuditResult]) -> Self {
        Audit {
            stages: res
                .iter()
                .map(|r| AuditedStage {
                    stage: r.stage.clone(),
                    identical: r.differences.is_empty() && r.error.is_none(),
                    differences: r.differences.iter().map(|(p, _, _)| p.clone()).collect(),
                    error: r.error.clone(),
                })
                .collect(),
        }
    }

    pub fn read(cache_dir: &Path) -> Result<Audit, String> {
        read_json(&cache_dir.join(LAST_AUDIT))
    }

    pub fn write(&self, cache_dir: &Path) -> std::io::Result<()> {
        write_json(&cache_dir.join(LAST_AUDIT), self)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
    engine::fsutil::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> LastRun {
        LastRun {
            wall_millis: 12,
            jobs: 2,
            stages: vec![
                StageRun {
                    stage: "a".into(),
                    kind: "command".into(),
                    status: Status::Failed,
                    reason: Some("never run".into()),
                    error: Some("boom".into()),
                    millis: 3,
                    peak_rss_kib: Some(10),
                    key: None,
                    fetched_from_remote: false,
                },
                StageRun {
                    stage: "b".into(),
                    kind: "plot".into(),
                    status: Status::Cached,
                    reason: None,
                    error: None,
                    millis: 0,
                    peak_rss_kib: None,
                    key: Some("ab".into()),
                    fetched_from_remote: true,
                },
            ],
        }
    }

    #[test]
    fn what_is_written_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let r = run();
        r.write(dir.path()).unwrap();
        assert_eq!(LastRun::read(dir.path()).unwrap(), r);
        let a = Audit {
            stages: vec![AuditedStage {
                stage: "a".into(),
                identical: false,
                differences: vec!["x.csv".into()],
                error: None,
            }],
        };
        a.write(dir.path()).unwrap();
        assert_eq!(Audit::read(dir.path()).unwrap(), a);
    }

    #[test]
    fn a_damaged_or_renamed_record_is_an_error_not_empty_values() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LAST_RUN), "{\"stages\": [tru").unwrap();
        assert!(LastRun::read(dir.path()).is_err());
        // A stage without its status (e.g. a field renamed by another version).
        std::fs::write(
            dir.path().join(LAST_RUN),
            r#"{"wall_millis": 1, "jobs": 1, "stages": [{"stage": "a", "kind": "x", "state": "ran", "millis": 1}]}"#,
        )
        .unwrap();
        let e = LastRun::read(dir.path()).unwrap_err();
        assert!(e.contains("missing field `status`"), "{e}");
        std::fs::write(
            dir.path().join(LAST_RUN),
            r#"{"wall_millis": 1, "jobs": 1, "stages": [{"stage": "a", "kind": "x", "status": "done", "millis": 1}]}"#,
        )
        .unwrap();
        let e = LastRun::read(dir.path()).unwrap_err();
        assert!(e.contains("unknown variant `done`"), "{e}");
        assert!(Audit::read(&dir.path().join("nowhere")).is_err());
    }

    #[test]
    fn the_json_event_is_the_record_entry_plus_its_name() {
        let r = run();
        let v = serde_json::to_value(Finished::new(&r.stages[0])).unwrap();
        assert_eq!(v["event"], "finished");
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"], "boom");
        let back: StageRun = serde_json::from_value(v).unwrap();
        assert_eq!(back, r.stages[0]);
    }
}
