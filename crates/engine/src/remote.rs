//! The shared remote cache: the protocol logic around a [`Remote`] that speaks the Bazel HTTP
//! cache layout (`cas/<sha256>` for blobs, `ac/<key>` for a stage's result manifest).
//!
//! The engine owns every decision; a [`Remote`] only moves bytes (the binary's HTTP client,
//! or an in-memory fake in tests). The rules:
//! - a download is re-hashed before it is used: a blob whose bytes do not hash to its name, or
//!   a manifest that does not describe this stage's key and declared outputs, is a miss;
//! - blobs go up first and the manifest last, so that a reader never sees a manifest whose
//!   blobs were not uploaded yet;
//! - only a stage that ran successfully, with every declared output present, is uploaded, and
//!   only if its inputs still hash as they did when its key was built (a command that edits
//!   its own inputs would otherwise publish outputs under a key they do not belong to);
//! - any remote error (unreachable, time-out, 401, 5xx, a manifest whose blobs are gone) is a
//!   miss with a warning, never a failed stage. After the server is unreachable once, the
//!   remote is left alone for the rest of the run (each further attempt would wait for the
//!   same time-out).
//!
//! What a manifest holds, and how its name is derived, is in [`Manifest`] and [`ac_key`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::hash::sha256_bytes;

/// Version of the manifest format; mixed into [`ac_key`], so a new format never reads an old one.
pub const MANIFEST_FORMAT: u32 = 1;

/// A failed exchange with the remote, as a value (never a panic, never a failed stage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteError {
    /// No answer at all: connection refused, DNS, TLS, time-out. The remote is not asked again
    /// during this run.
    Unreachable(String),
    /// The server answered with an error status (401, 403, 5xx, ...).
    Status(u16, String),
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RemoteError::Unreachable(m) => write!(f, "unreachable ({m})"),
            RemoteError::Status(401, _) => f.write_str(
                "401 Unauthorized (check the credentials in ~/.netrc or ARTIFACT_REMOTE_TOKEN)",
            ),
            RemoteError::Status(c, m) if m.is_empty() => write!(f, "HTTP status {c}"),
            RemoteError::Status(c, m) => write!(f, "HTTP status {c} ({m})"),
        }
    }
}

/// Moves bytes to and from a cache server. `path` is `cas/<sha256>` or `ac/<key>`.
pub trait Remote: Send + Sync {
    /// The object's bytes, `Ok(None)` when the server does not have it (404).
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, RemoteError>;
    /// Whether the server has the object.
    fn head(&self, path: &str) -> Result<bool, RemoteError>;
    /// Stores the object (overwriting is allowed: the content is the same by construction).
    fn put(&self, path: &str, body: &[u8]) -> Result<(), RemoteError>;
    /// How to name the remote in messages (its URL without credentials).
    fn describe(&self) -> String;
    /// The base URL other machines reach the server at (`cas/` and `ac/` below it), for the
    /// SLURM cache transport; `None` for a remote that is not an HTTP server.
    fn url(&self) -> Option<String> {
        None
    }
}

/// A stage's result, as stored under `ac/<ac_key(key digest)>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The engine version that wrote it (also in the key; kept for people reading the server).
    pub tool_version: String,
    /// The stage name that produced it (informational: the key decides).
    pub stage: String,
    /// Digest of the stage's cache key.
    pub key: String,
    /// Output path -> SHA-256 of its content.
    pub outputs: BTreeMap<String, String>,
}

/// The `ac/` name of a stage's manifest: a digest of the manifest format and the stage's key
/// digest (which already covers the tool version, the kind, its parameters and inputs).
pub fn ac_key(key_digest: &str) -> String {
    sha256_bytes(format!("artifact remote manifest v{MANIFEST_FORMAT}\0{key_digest}").as_bytes())
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A [`Remote`] with the run's read/write mode and its warnings.
pub struct RemoteCache {
    remote: Box<dyn Remote>,
    /// Look results up on a miss (on by default once a remote is configured).
    pub read: bool,
    /// Upload results of stages that ran (opt-in).
    pub write: bool,
    down: AtomicBool,
    warnings: Mutex<Vec<String>>,
    /// Called with each new warning as it happens (the CLI prints it); every warning is also
    /// kept for [`RemoteCache::warnings`].
    pub on_warning: Option<crate::Notify>,
}

/// Why a blob or a manifest did not move between the local store and the remote.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The remote failed; a warning already said how.
    #[error("the remote cache failed (already warned about)")]
    Warned,
    #[error("{0} is gone from the server")]
    Gone(String),
    #[error("{path} has content with sha256 {got} (damaged or tampered with)")]
    Damaged { path: String, got: String },
    #[error("cannot store {path} in the local cache: {source}")]
    Store {
        path: String,
        source: std::io::Error,
    },
    #[error("the local cache lacks {digest}: {source}")]
    LocalMissing {
        digest: String,
        source: std::io::Error,
    },
    #[error("the local copy of {0} is corrupt")]
    LocalCorrupt(String),
    /// An exchange failed (returned, not warned about, by the functions the SLURM cache
    /// transport uses: there the remote is required, not an optional speed-up).
    #[error("{what}: {error}")]
    Remote { what: String, error: RemoteError },
    #[error("{path} is not a manifest this version reads ({reason})")]
    NotAManifest { path: String, reason: String },
    #[error("{path} does not describe this stage's key and declared outputs")]
    WrongManifest { path: String },
    #[error("{path} changed since its digest was taken (was {want}, now {got})")]
    Changed {
        path: String,
        want: String,
        got: String,
    },
}

/// What a push or pull did, per stage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transfer {
    /// Stages whose manifest (and blobs) were transferred.
    pub done: Vec<String>,
    /// Stages already present at the destination.
    pub present: Vec<String>,
    /// Stages that could not be transferred, with why.
    pub skipped: Vec<(String, String)>,
    /// Blobs sent or received.
    pub blobs: usize,
    /// Bytes sent or received.
    pub bytes: u64,
}

impl RemoteCache {
    pub fn new(remote: Box<dyn Remote>, read: bool, write: bool) -> RemoteCache {
        RemoteCache {
            remote,
            read,
            write,
            down: AtomicBool::new(false),
            warnings: Mutex::new(Vec::new()),
            on_warning: None,
        }
    }

    pub fn describe(&self) -> String {
        self.remote.describe()
    }

    /// Every warning so far, in order.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Whether the remote stopped answering during this run.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn warn(&self, msg: String) {
        let msg = format!("remote cache {}: {msg}", self.remote.describe());
        if let Ok(mut w) = self.warnings.lock() {
            // The same failure for many stages (e.g. 401 on every upload) is said once.
            if w.contains(&msg) {
                return;
            }
            w.push(msg.clone());
        }
        if let Some(f) = &self.on_warning {
            f(&msg);
        }
    }

    /// Records a failed exchange; an unreachable server is not asked again.
    fn failed(&self, what: &str, e: &RemoteError) {
        if let RemoteError::Unreachable(_) = e {
            if self.down.swap(true, Ordering::SeqCst) {
                return;
            }
            self.warn(format!(
                "{e}; continuing without the remote cache for this run"
            ));
            return;
        }
        self.warn(format!("{what}: {e}; treated as a miss"));
    }

    fn usable(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }

    /// The manifest for `key_digest`, if the remote holds a valid one for exactly these
    /// declared outputs. `None`: a miss; errors are warned about here.
    pub fn manifest(&self, key_digest: &str, declared: &BTreeSet<String>) -> Option<Manifest> {
        if !self.usable() {
            return None;
        }
        match self.lookup(key_digest, declared) {
            Ok(m) => m,
            Err(TransferError::Remote { what, error }) => {
                self.failed(&what, &error);
                None
            }
            Err(e) => {
                self.warn(format!("{e}; treated as a miss"));
                None
            }
        }
    }

    /// Like [`RemoteCache::manifest`], but every failure is returned instead of warned about
    /// (`Ok(None)`: the server does not have it).
    pub fn lookup(
        &self,
        key_digest: &str,
        declared: &BTreeSet<String>,
    ) -> Result<Option<Manifest>, TransferError> {
        let path = format!("ac/{}", ac_key(key_digest));
        let bytes = match self.remote.get(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(None),
            Err(error) => {
                return Err(TransferError::Remote {
                    what: format!("GET {path}"),
                    error,
                });
            }
        };
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| TransferError::NotAManifest {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let outputs: BTreeSet<&String> = m.outputs.keys().collect();
        if m.format != MANIFEST_FORMAT
            || m.key != key_digest
            || outputs != declared.iter().collect()
            || !m.outputs.values().all(|d| is_digest(d))
        {
            return Err(TransferError::WrongManifest { path });
        }
        Ok(Some(m))
    }

    /// The base URL of the server, if it is one other machines can reach (see [`Remote::url`]).
    pub fn url(&self) -> Option<String> {
        self.remote.url()
    }

    /// The object at `path` as the server has it (not verified: for objects that are not
    /// content-addressed, like a SLURM job's log).
    pub fn get_object(&self, path: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        self.remote.get(path)
    }

    /// Uploads the file at `file` (named `shown` in messages) to `cas/<digest>` unless the
    /// server has it; its content must still hash to `digest`. Returns whether it was sent.
    /// Failures are returned, not warned about.
    pub fn upload_file(
        &self,
        shown: &str,
        file: &Path,
        digest: &str,
    ) -> Result<bool, TransferError> {
        let path = format!("cas/{digest}");
        let remote = |what: String, error| TransferError::Remote { what, error };
        if self
            .remote
            .head(&path)
            .map_err(|e| remote(format!("HEAD {path}"), e))?
        {
            return Ok(false);
        }
        let bytes = std::fs::read(file).map_err(|source| TransferError::Store {
            path: shown.to_string(),
            source,
        })?;
        let got = sha256_bytes(&bytes);
        if got != digest {
            return Err(TransferError::Changed {
                path: shown.to_string(),
                want: digest.to_string(),
                got,
            });
        }
        self.remote
            .put(&path, &bytes)
            .map_err(|e| remote(format!("PUT {path}"), e))?;
        Ok(true)
    }

    /// Puts blob `digest` into the local store from the remote unless the store holds it.
    /// The download is re-hashed; a mismatch is a miss. A remote error is warned about.
    fn fetch_blob(
        &self,
        cache: &Cache,
        digest: &str,
        t: &mut Transfer,
    ) -> Result<(), TransferError> {
        match self.download(cache, digest, t) {
            Err(TransferError::Remote { what, error }) => {
                self.failed(&what, &error);
                Err(TransferError::Warned)
            }
            r => r,
        }
    }

    /// Like `fetch_blob`, but every failure is returned, not warned about.
    pub fn download(
        &self,
        cache: &Cache,
        digest: &str,
        t: &mut Transfer,
    ) -> Result<(), TransferError> {
        if cache.holds(digest) {
            return Ok(());
        }
        let path = format!("cas/{digest}");
        let bytes = match self.remote.get(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(TransferError::Gone(path)),
            Err(error) => {
                return Err(TransferError::Remote {
                    what: format!("GET {path}"),
                    error,
                });
            }
        };
        let got = sha256_bytes(&bytes);
        if got != digest {
            return Err(TransferError::Damaged { path, got });
        }
        crate::fsutil::write_atomic(&cache.object_path(digest), &bytes)
            .map_err(|source| TransferError::Store { path, source })?;
        t.blobs += 1;
        t.bytes += bytes.len() as u64;
        Ok(())
    }

    /// On a local miss: the outputs of the run with `key_digest`, every blob of it now in the
    /// local store (verified). `None` is a miss (warned about unless the remote just did not
    /// have it).
    pub fn fetch(
        &self,
        cache: &Cache,
        stage: &str,
        key_digest: &str,
        declared: &BTreeSet<String>,
    ) -> Option<BTreeMap<String, String>> {
        if !self.read {
            return None;
        }
        let m = self.manifest(key_digest, declared)?;
        let mut t = Transfer::default();
        for d in m.outputs.values().collect::<BTreeSet<_>>() {
            match self.fetch_blob(cache, d, &mut t) {
                Ok(()) => {}
                Err(TransferError::Warned) => return None,
                Err(e) => {
                    self.warn(format!("stage {stage}: {e}; the stage runs instead"));
                    return None;
                }
            }
        }
        Some(m.outputs)
    }

    /// Uploads one blob from the local store unless the server has it.
    fn push_blob(
        &self,
        cache: &Cache,
        digest: &str,
        t: &mut Transfer,
    ) -> Result<(), TransferError> {
        let path = format!("cas/{digest}");
        match self.remote.head(&path) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => {
                self.failed(&format!("HEAD {path}"), &e);
                return Err(TransferError::Warned);
            }
        }
        // Read back and checked: the server must never receive a damaged local object.
        let bytes = std::fs::read(cache.object_path(digest)).map_err(|source| {
            TransferError::LocalMissing {
                digest: digest.to_string(),
                source,
            }
        })?;
        if sha256_bytes(&bytes) != digest {
            return Err(TransferError::LocalCorrupt(digest.to_string()));
        }
        if let Err(e) = self.remote.put(&path, &bytes) {
            self.failed(&format!("PUT {path}"), &e);
            return Err(TransferError::Warned);
        }
        t.blobs += 1;
        t.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Uploads a stage's result: its blobs first, then its manifest. `Err` says why nothing
    /// (or not the manifest) was published; [`TransferError::Warned`] was already warned about.
    pub fn publish(
        &self,
        cache: &Cache,
        stage: &str,
        key_digest: &str,
        outputs: &BTreeMap<String, String>,
        t: &mut Transfer,
    ) -> Result<(), TransferError> {
        if !self.usable() {
            return Err(TransferError::Warned);
        }
        for d in outputs.values().collect::<BTreeSet<_>>() {
            self.push_blob(cache, d, t)?;
        }
        let m = Manifest {
            format: MANIFEST_FORMAT,
            tool_version: crate::TOOL_VERSION.to_string(),
            stage: stage.to_string(),
            key: key_digest.to_string(),
            outputs: outputs.clone(),
        };
        let body = serde_json::to_vec_pretty(&m).expect("a manifest serializes");
        let path = format!("ac/{}", ac_key(key_digest));
        if let Err(e) = self.remote.put(&path, &body) {
            self.failed(&format!("PUT {path}"), &e);
            return Err(TransferError::Warned);
        }
        Ok(())
    }

    /// After a stage ran successfully with record `rec`: uploads its result if writes are on,
    /// every declared output was recorded, and `inputs_held` (the engine's check that every
    /// input still has the content the key was built from, its message if not).
    pub fn upload_after_run(
        &self,
        cache: &Cache,
        rec: &crate::cache::Record,
        declared: &BTreeSet<String>,
        inputs_held: impl FnOnce() -> Result<(), String>,
    ) -> bool {
        let (stage, key_digest) = (rec.stage.as_str(), rec.key_digest.as_str());
        let outputs = &rec.outputs;
        if !self.write || !self.usable() {
            return false;
        }
        if outputs.keys().collect::<BTreeSet<_>>() != declared.iter().collect() {
            self.warn(format!(
                "stage {stage}: not every declared output was recorded; not uploaded"
            ));
            return false;
        }
        if let Err(why) = inputs_held() {
            self.warn(format!("stage {stage}: {why}; its result is not uploaded"));
            return false;
        }
        let mut t = Transfer::default();
        match self.publish(cache, stage, key_digest, outputs, &mut t) {
            Ok(()) => true,
            Err(TransferError::Warned) => false,
            Err(e) => {
                self.warn(format!("stage {stage}: {e}; not uploaded"));
                false
            }
        }
    }
}

#[cfg(test)]
pub mod fake {
    //! An in-memory [`Remote`] for tests, with switches for the failures a real server has.

    use super::*;

    #[derive(Default)]
    pub struct FakeRemote {
        pub objects: Mutex<BTreeMap<String, Vec<u8>>>,
        /// Every request, as `METHOD path`.
        pub log: Mutex<Vec<String>>,
        /// Answer every request with this error.
        pub fail: Mutex<Option<RemoteError>>,
        /// Answer PUTs with 401 (reads still work).
        pub read_only: AtomicBool,
    }

    impl FakeRemote {
        pub fn count(&self, prefix: &str) -> usize {
            self.log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.starts_with(prefix))
                .count()
        }
    }

    /// Lets a test keep a handle on the fake while the engine owns a `Box<dyn Remote>`.
    pub struct Shared(pub std::sync::Arc<FakeRemote>);

    impl Remote for Shared {
        fn get(&self, path: &str) -> Result<Option<Vec<u8>>, RemoteError> {
            self.0.log.lock().unwrap().push(format!("GET {path}"));
            if let Some(e) = self.0.fail.lock().unwrap().clone() {
                return Err(e);
            }
            Ok(self.0.objects.lock().unwrap().get(path).cloned())
        }
        fn head(&self, path: &str) -> Result<bool, RemoteError> {
            self.0.log.lock().unwrap().push(format!("HEAD {path}"));
            if let Some(e) = self.0.fail.lock().unwrap().clone() {
                return Err(e);
            }
            Ok(self.0.objects.lock().unwrap().contains_key(path))
        }
        fn put(&self, path: &str, body: &[u8]) -> Result<(), RemoteError> {
            self.0.log.lock().unwrap().push(format!("PUT {path}"));
            if let Some(e) = self.0.fail.lock().unwrap().clone() {
                return Err(e);
            }
            if self.0.read_only.load(Ordering::SeqCst) {
                return Err(RemoteError::Status(401, String::new()));
            }
            self.0
                .objects
                .lock()
                .unwrap()
                .insert(path.to_string(), body.to_vec());
            Ok(())
        }
        fn describe(&self) -> String {
            "fake://remote".into()
        }
    }
}

impl crate::exec::Engine<'_> {
    /// On a local miss of stage `i` (key digest `kd`): its outputs from the remote cache, every
    /// blob verified and put into the local store, as a record ready to restore.
    pub(crate) fn remote_fetch(
        &self,
        i: usize,
        key: &crate::hash::CacheKey,
        kd: &str,
    ) -> Option<crate::cache::Record> {
        let remote = self.remote.as_ref()?;
        let s = &self.pipeline.stages[i];
        let declared: BTreeSet<String> = s.outputs.iter().map(|o| o.path.clone()).collect();
        let outputs = remote.fetch(&self.cache, &s.name, kd, &declared)?;
        Some(crate::cache::Record {
            stage: s.name.clone(),
            key_digest: kd.to_string(),
            key: key.clone(),
            outputs,
            millis: 0,
            peak_rss_kib: None,
        })
    }

    /// After stage `i` ran successfully with `rec`: uploads it when writes are on (see
    /// [`RemoteCache::upload_after_run`]).
    pub(crate) fn remote_upload(&self, i: usize, rec: &crate::cache::Record) {
        let Some(remote) = self.remote.as_ref() else {
            return;
        };
        let s = &self.pipeline.stages[i];
        let declared: BTreeSet<String> = s.outputs.iter().map(|o| o.path.clone()).collect();
        // The same check as before the record was saved (a `stat` per input, a hash only if
        // that changed), for an edit since.
        let held = || self.inputs_unchanged(&rec.key);
        remote.upload_after_run(&self.cache, rec, &declared, held);
    }

    /// `artifact push`: uploads the results the local cache holds for the current pipeline
    /// (every stage that is up to date or restorable), blobs first, manifest last.
    pub fn push(&self) -> Transfer {
        let mut t = Transfer::default();
        let Some(remote) = self.remote.as_ref() else {
            return t;
        };
        for (i, v) in self.plan_decisions(&[]) {
            let name = self.pipeline.stages[i].name.clone();
            let rec = match v {
                Ok(crate::exec::Decision::Fresh(r)) | Ok(crate::exec::Decision::Restore(r, _)) => r,
                Ok(crate::exec::Decision::Run(r)) => {
                    t.skipped.push((name, format!("not built locally: {r}")));
                    continue;
                }
                Err(e) => {
                    t.skipped.push((name, e.to_string()));
                    continue;
                }
            };
            if remote.is_down() {
                t.skipped
                    .push((name, "the remote cache is unreachable".into()));
                continue;
            }
            let declared: BTreeSet<String> = rec.outputs.keys().cloned().collect();
            if remote.manifest(&rec.key_digest, &declared).is_some()
                && rec
                    .outputs
                    .values()
                    .all(|d| matches!(remote.remote.head(&format!("cas/{d}")), Ok(true)))
            {
                t.present.push(name);
                continue;
            }
            match remote.publish(&self.cache, &name, &rec.key_digest, &rec.outputs, &mut t) {
                Ok(()) => t.done.push(name),
                Err(TransferError::Warned) => t.skipped.push((name, "upload failed".into())),
                Err(e) => t.skipped.push((name, e.to_string())),
            }
        }
        t
    }

    /// `artifact pull`: fills the local cache from the remote without running anything. Walks
    /// the stages in order; a stage found on the remote makes its dependents' keys known.
    /// Each pulled stage gets a local record, so that the next `run` restores it.
    pub fn pull(&self) -> Transfer {
        let mut t = Transfer::default();
        let Some(remote) = self.remote.as_ref() else {
            return t;
        };
        if let Err(e) = self.cache.init() {
            t.skipped
                .push(("*".into(), format!("cannot create the cache folder: {e}")));
            return t;
        }
        let mut known: BTreeMap<String, String> = BTreeMap::new();
        let mut missing: BTreeSet<usize> = BTreeSet::new();
        for &i in &self.plan.order {
            let s = &self.pipeline.stages[i];
            if let Some(&d) = self.plan.deps[i].iter().find(|d| missing.contains(d)) {
                let why = format!(
                    "upstream stage {} is neither local nor on the remote",
                    self.pipeline.stages[d].name
                );
                t.skipped.push((s.name.clone(), why));
                missing.insert(i);
                continue;
            }
            let (key, kd, verdict) = match self.evaluate(i, &known, false) {
                Ok(v) => v,
                Err(e) => {
                    t.skipped.push((s.name.clone(), e.to_string()));
                    missing.insert(i);
                    continue;
                }
            };
            if let crate::exec::Decision::Fresh(rec) | crate::exec::Decision::Restore(rec, _) =
                &verdict
                && rec.outputs.values().all(|d| self.cache.holds(d))
            {
                known.extend(rec.outputs.clone());
                t.present.push(s.name.clone());
                continue;
            }
            let declared: BTreeSet<String> = s.outputs.iter().map(|o| o.path.clone()).collect();
            let Some(outputs) = remote.manifest(&kd, &declared).and_then(|m| {
                for d in m.outputs.values().collect::<BTreeSet<_>>() {
                    match remote.fetch_blob(&self.cache, d, &mut t) {
                        Ok(()) => {}
                        Err(TransferError::Warned) => return None,
                        Err(e) => {
                            remote.warn(format!("stage {}: {e}", s.name));
                            return None;
                        }
                    }
                }
                Some(m.outputs)
            }) else {
                t.skipped
                    .push((s.name.clone(), "not on the remote cache".into()));
                missing.insert(i);
                continue;
            };
            let rec = crate::cache::Record {
                stage: s.name.clone(),
                key_digest: kd,
                key,
                outputs,
                millis: 0,
                peak_rss_kib: None,
            };
            if let Err(e) = self.cache.save(&rec) {
                t.skipped.push((
                    s.name.clone(),
                    format!("cannot write the stage record: {e}"),
                ));
                missing.insert(i);
                continue;
            }
            known.extend(rec.outputs);
            t.done.push(s.name.clone());
        }
        if let Err(e) = self.cache.flush() {
            remote.warn(format!("cannot write the stage index: {e}"));
        }
        let _ = self.stat.save(&self.cache.stat_path());
        t
    }

    /// `status --remote`: per stage in plan order, whether the remote holds a result for its
    /// current key (`None`: the key is not known, as an upstream stage is on neither side).
    pub fn remote_availability(&self) -> Vec<(usize, Option<bool>)> {
        let mut out = Vec::new();
        let Some(remote) = self.remote.as_ref() else {
            return out;
        };
        let mut known: BTreeMap<String, String> = BTreeMap::new();
        let mut unknown: BTreeSet<usize> = BTreeSet::new();
        for &i in &self.plan.order {
            if self.plan.deps[i].iter().any(|d| unknown.contains(d)) {
                unknown.insert(i);
                out.push((i, None));
                continue;
            }
            let Ok((_, kd, verdict)) = self.evaluate(i, &known, false) else {
                unknown.insert(i);
                out.push((i, None));
                continue;
            };
            let s = &self.pipeline.stages[i];
            let declared: BTreeSet<String> = s.outputs.iter().map(|o| o.path.clone()).collect();
            let m = remote.manifest(&kd, &declared);
            out.push((i, Some(m.is_some())));
            match (verdict, m) {
                (crate::exec::Decision::Fresh(r) | crate::exec::Decision::Restore(r, _), _) => {
                    known.extend(r.outputs)
                }
                (_, Some(m)) => known.extend(m.outputs),
                _ => {
                    unknown.insert(i);
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
