//! The cache folder (`.artifact/` under the project root):
//!
//! ```text
//! .artifact/
//!   lock                 OS file lock held by a running `artifact` (released on exit or kill)
//!   objects/ab/cdef...   content-addressed store: one file per distinct output content
//!   stages.json          the last successful run of each stage: its key and output digests
//!                        (one file, read once and written once per run)
//!   runs/KEYDIGEST.json  every successful run by key, written as each stage finishes; an old
//!                        state restores from here without running, and a run killed before
//!                        `stages.json` was written loses nothing
//!   stat.json            the stat cache
//!   tmp/                 scratch folders of running stages
//! ```
//!
//! All writes are atomic; objects are verified against their name when read back.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::hash::{CacheKey, sha256_file};

/// A successful run: the key it ran with and what it produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub stage: String,
    pub key_digest: String,
    pub key: CacheKey,
    /// Output path -> content digest.
    pub outputs: BTreeMap<String, String>,
    /// Wall time of the run that produced these outputs, in milliseconds.
    #[serde(default)]
    pub millis: u64,
    /// Process peak resident memory (KiB) when that run finished, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_kib: Option<u64>,
}

/// Handle on a project's cache folder.
#[derive(Clone, Debug)]
pub struct Cache {
    pub dir: PathBuf,
    /// `stages.json`, loaded on first use.
    index: std::sync::Arc<std::sync::Mutex<Option<Index>>>,
    /// Files copied to [`KEPT`] since the last [`Cache::take_kept`].
    kept: std::sync::Arc<std::sync::Mutex<Vec<Kept>>>,
}

/// A file the tool replaced but did not make, copied to [`KEPT`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Its project path.
    pub path: String,
    /// Where the copy is (`.artifact/kept/...`).
    pub at: String,
    /// A killed run had half written it (else the user put it there or edited it).
    pub half_written: bool,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (path, at) = (&self.path, &self.at);
        match self.half_written {
            true => write!(
                f,
                "{path} was being written by a run that was killed: the file from before that run is back, and the one found there is kept at {at}"
            ),
            false => write!(
                f,
                "{path} was not made by this pipeline (or was edited since): it is replaced, and the file is kept at {at}"
            ),
        }
    }
}

/// The folder of `.artifact/` that holds files the tool replaced but did not make: a user's
/// file found at an output path, a hand edit a restore undid, what a killed run left at a path
/// it had moved aside. Neither `gc` nor `clean --cache` empties it: only the user does.
pub const KEPT: &str = "kept";

/// The stage index in memory, and whether it changed since it was loaded.
type Index = (BTreeMap<String, Record>, bool);

/// Why an object could not be restored.
#[derive(Debug)]
pub enum RestoreError {
    Missing,
    Corrupt,
    Io(std::io::Error),
}

impl Cache {
    pub fn new(root: &Path) -> Cache {
        Cache {
            dir: root.join(crate::spec::CACHE_DIR),
            index: Default::default(),
            kept: Default::default(),
        }
    }

    pub fn init(&self) -> std::io::Result<()> {
        for sub in ["objects", "runs", "tmp"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        Ok(())
    }

    /// Copies the project file `src` (at project path `rel`) to `.artifact/kept/<rel>`, or to
    /// `<rel>.N` when another content is kept under that name; the same content is kept once.
    /// Returns where it is, as a project path, and notes it for [`Cache::take_kept`].
    pub fn keep(&self, src: &Path, rel: &str, half_written: bool) -> std::io::Result<String> {
        let digest = sha256_file(src)?;
        let mut n = 0;
        let name = loop {
            let name = match n {
                0 => rel.to_string(),
                n => format!("{rel}.{n}"),
            };
            let dest = self.dir.join(KEPT).join(&name);
            match sha256_file(&dest) {
                Ok(d) if d == digest => break name,
                Ok(_) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dest.parent().unwrap_or(&self.dir))?;
                    let tmp = fsutil::temp_sibling(&dest);
                    std::fs::copy(src, &tmp)?;
                    std::fs::rename(&tmp, &dest).inspect_err(|_| {
                        let _ = std::fs::remove_file(&tmp);
                    })?;
                    break name;
                }
                Err(e) => return Err(e),
            }
        };
        let at = format!("{}/{KEPT}/{name}", crate::spec::CACHE_DIR);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.push(Kept {
            path: rel.to_string(),
            at: at.clone(),
            half_written,
        });
        Ok(at)
    }

    /// The files [`Cache::keep`] kept since the last call.
    pub fn take_kept(&self) -> Vec<Kept> {
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn stat_path(&self) -> PathBuf {
        self.dir.join("stat.json")
    }

    pub fn object_path(&self, digest: &str) -> PathBuf {
        let (a, b) = digest.split_at(2.min(digest.len()));
        self.dir.join("objects").join(a).join(b)
    }

    /// Stores the file at `src` under `digest` (already computed) unless present.
    pub fn put(&self, src: &Path, digest: &str) -> std::io::Result<()> {
        let dst = self.object_path(digest);
        if dst.exists() {
            return Ok(());
        }
        fsutil::copy_atomic(src, &dst)
    }

    /// Copies object `digest` to `dst` atomically after checking its content; a corrupt object
    /// is deleted.
    pub fn restore(&self, digest: &str, dst: &Path) -> Result<(), RestoreError> {
        let obj = self.verified(digest)?;
        fsutil::copy_atomic(&obj, dst).map_err(RestoreError::Io)
    }

    /// Like [`Cache::restore`], writing the project file `rel` through `proj` (checked at the
    /// moment of writing, see [`fsutil::Confined`]).
    pub fn restore_to(
        &self,
        digest: &str,
        proj: &fsutil::Confined,
        rel: &str,
    ) -> Result<(), RestoreError> {
        let obj = self.verified(digest)?;
        proj.copy_in(&obj, rel).map_err(RestoreError::Io)
    }

    /// The path of object `digest` after checking its content; a corrupt object is deleted.
    fn verified(&self, digest: &str) -> Result<PathBuf, RestoreError> {
        let obj = self.object_path(digest);
        if !obj.exists() {
            return Err(RestoreError::Missing);
        }
        match sha256_file(&obj) {
            Ok(d) if d == digest => Ok(obj),
            Ok(_) => {
                let _ = std::fs::remove_file(&obj);
                Err(RestoreError::Corrupt)
            }
            Err(e) => Err(RestoreError::Io(e)),
        }
    }

    /// Whether the store holds an intact copy of `digest` (present, and its content hashes
    /// to its name).
    pub fn holds(&self, digest: &str) -> bool {
        self.verified(digest).is_ok()
    }

    pub fn has_object(&self, digest: &str) -> bool {
        self.object_path(digest).exists()
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("stages.json")
    }

    fn run_path(&self, key_digest: &str) -> PathBuf {
        self.dir.join("runs").join(format!("{key_digest}.json"))
    }

    /// Runs `f` on the stage index, loading it first if needed.
    fn with_index<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Record>, &mut bool) -> T) -> T {
        let mut guard = self.index.lock().unwrap();
        let (map, dirty) =
            guard.get_or_insert_with(|| (read_json(&self.index_path()).unwrap_or_default(), false));
        f(map, dirty)
    }

    /// The last successful run of `stage`, if any (an unreadable index counts as empty).
    pub fn last(&self, stage: &str) -> Option<Record> {
        self.with_index(|m, _| m.get(stage).cloned())
    }

    /// Whether the last successful run of `stage` made `digest` at `rel` (without copying its
    /// record).
    pub fn made(&self, stage: &str, rel: &str, digest: &str) -> bool {
        self.with_index(|m, _| {
            let made = m.get(stage).and_then(|r| r.outputs.get(rel));
            made.is_some_and(|d| d == digest)
        })
    }

    /// A successful run with exactly this key, from any stage name.
    pub fn by_key(&self, key_digest: &str) -> Option<Record> {
        read_json(&self.run_path(key_digest))
    }

    /// Records a successful run: its run record is written now (atomically); the stage index
    /// in memory, and on disk at the next [`Cache::flush`].
    pub fn save(&self, rec: &Record) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(rec)?;
        let path = self.run_path(&rec.key_digest);
        // A record being replaced (a forced rerun of the same key) is removed first: a rename
        // over an existing file makes ext4 write the new file's data out first (auto_da_alloc),
        // 0.9 ms per stage in a forced run against 0.04 ms for a plain rename (strace). Killed
        // in between, the stage has no record: a cache miss, and it reruns.
        let _ = std::fs::remove_file(&path);
        fsutil::write_atomic(&path, &bytes)?;
        self.with_index(|m, dirty| {
            m.insert(rec.stage.clone(), rec.clone());
            *dirty = true;
        });
        Ok(())
    }

    /// Writes the stage index if it changed (atomically).
    pub fn flush(&self) -> std::io::Result<()> {
        let mut guard = self.index.lock().unwrap();
        if let Some((map, dirty)) = guard.as_mut()
            && *dirty
        {
            fsutil::write_atomic(&self.index_path(), &serde_json::to_vec(map)?)?;
            *dirty = false;
        }
        Ok(())
    }

    /// Removes the record of a stage that is no longer in the pipeline.
    pub fn forget_stage(&self, stage: &str) -> std::io::Result<()> {
        self.with_index(|m, dirty| {
            if m.remove(stage).is_some() {
                *dirty = true;
            }
        });
        self.flush()
    }

    /// Names of stages with a record.
    pub fn recorded_stages(&self) -> Vec<String> {
        self.with_index(|m, _| m.keys().cloned().collect())
    }

    /// Deletes run records whose key is not the current record of any stage.
    pub fn drop_old_runs(&self) -> std::io::Result<()> {
        let current: std::collections::BTreeSet<String> =
            self.with_index(|m, _| m.values().map(|r| r.key_digest.clone()).collect());
        for e in std::fs::read_dir(self.dir.join("runs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name.strip_suffix(".json").unwrap_or(&name);
            if !current.contains(key) {
                std::fs::remove_file(e.path())?;
            }
        }
        Ok(())
    }

    /// A fresh folder (not created here) where in-place stages' existing outputs wait while
    /// they run, one folder per run: `tmp/.aside+run.tmp.PID.N/<aside_name(output path)>`
    /// (output paths are unique in a pipeline; `+` cannot occur in a stage name, so these
    /// never mix with scratch folders).
    pub fn aside(&self) -> PathBuf {
        fsutil::temp_sibling(&self.dir.join("tmp").join(format!("{ASIDE}run")))
    }

    /// Sweeps `tmp/`: scratch folders and temporary files of processes that are gone are
    /// deleted; the outputs a killed run had moved aside are first put back (see
    /// [`Cache::recover_aside`]). Returns how many entries went.
    pub fn clean_tmp(&self, proj: &fsutil::Confined) -> usize {
        let mut n = 0;
        for e in real_dir(&self.dir.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !fsutil::is_stale_temp(&name) {
                continue;
            }
            let path = e.path();
            if name.starts_with(&format!(".{ASIDE}")) && !self.recover_aside(proj, &path) {
                continue;
            }
            let gone = if e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            n += usize::from(gone.is_ok());
        }
        n
    }

    /// Puts back what a killed run moved aside in `dir`; true when nothing is left that only
    /// `dir` holds. The file moved aside is the last good one: whatever stands at its path now
    /// (most likely what the killed command had half written) is kept in [`KEPT`] and replaced.
    fn recover_aside(&self, proj: &fsutil::Confined, dir: &Path) -> bool {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(e.path()),
                    Ok(_) => files.push(e.path()),
                    Err(_) => {}
                }
            }
        }
        let mut all = true;
        for f in files {
            let Ok(rel) = f.strip_prefix(dir) else {
                all = false;
                continue;
            };
            let rel = rel.to_string_lossy();
            let rel = match rel.strip_prefix(&format!("{ASIDE_NESTED}/")) {
                Some(nested) => nested.to_string(),
                None => aside_path(&rel),
            };
            let here = proj.root().join(&rel);
            let ok = match std::fs::symlink_metadata(&here) {
                Err(_) => proj.move_in(&f, &rel).is_ok(),
                // The killed command wrote something there (or someone did since): keep it,
                // then put the good file back over it.
                Ok(m) if m.is_file() => {
                    self.keep(&here, &rel, true).is_ok() && proj.move_in(&f, &rel).is_ok()
                }
                // A folder or a link stands there now: leave both where they are.
                Ok(_) => false,
            };
            all &= ok;
        }
        all
    }

    /// A fresh scratch folder for one stage run.
    pub fn scratch(&self, stage: &str) -> std::io::Result<PathBuf> {
        let p = fsutil::temp_sibling(&self.dir.join("tmp").join(stage));
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// Deletes objects referenced by no record in `runs/` or `stages/`, and stale scratch
    /// folders. Returns (objects removed, bytes freed).
    pub fn gc(&self) -> std::io::Result<(usize, u64)> {
        let mut live: std::collections::BTreeSet<String> = self.with_index(|m, _| {
            m.values()
                .flat_map(|r| r.outputs.values().cloned())
                .collect()
        });
        for e in std::fs::read_dir(self.dir.join("runs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Some(r) = read_json::<Record>(&e.path()) {
                live.extend(r.outputs.into_values());
            } else {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let (mut n, mut bytes) = (0, 0);
        for shard in real_dir(&self.dir.join("objects"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let prefix = shard.file_name().to_string_lossy().into_owned();
            for obj in real_dir(&shard.path()).into_iter().flatten().flatten() {
                if !obj.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let digest = format!("{prefix}{}", obj.file_name().to_string_lossy());
                if !live.contains(&digest) {
                    bytes += obj.metadata().map(|m| m.len()).unwrap_or(0);
                    std::fs::remove_file(obj.path())?;
                    n += 1;
                }
            }
        }
        let root = self.dir.parent().unwrap_or(Path::new("."));
        self.clean_tmp(&fsutil::Confined::new(root));
        Ok((n, bytes))
    }

    /// Takes the project lock. With `wait`, blocks (calling `on_wait` once first) until the
    /// other run ends; without, fails at once. The OS releases the lock when the process
    /// exits, however it exits, so no stale lock can survive a kill.
    pub fn lock(&self, wait: bool, on_wait: impl FnOnce()) -> std::io::Result<File> {
        std::fs::create_dir_all(&self.dir)?;
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if wait => {
                on_wait();
                f.lock()?;
                Ok(f)
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another artifact run holds the lock on this project",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Prefix of the folders in `tmp/` holding outputs moved aside (see [`Cache::aside`]).
const ASIDE: &str = "aside+";

/// The file name under which an output `rel` waits in an aside folder: its path with `%`
/// written `%25` and `/` written `%2F`, so that an output in a subfolder needs no subfolder
/// there (two fewer folder operations per stage; reversed by [`aside_path`]). Hand-written: a
/// percent-encoding crate would be a dependency for two characters.
/// The entries of `dir` when it is a folder and not a link to one: deletions in the cache
/// never reach through a link into a folder the tool did not make.
fn real_dir(dir: &Path) -> std::io::Result<std::fs::ReadDir> {
    match std::fs::symlink_metadata(dir)? {
        m if m.is_dir() => std::fs::read_dir(dir),
        _ => Err(std::io::Error::other(format!(
            "{} is not a folder",
            dir.display()
        ))),
    }
}

/// The folder of an aside folder that holds outputs at their own paths (see
/// `exec::run::Aside::slot`): names that [`aside_name`] would make too long.
pub const ASIDE_NESTED: &str = "%nested";

pub fn aside_name(rel: &str) -> String {
    rel.replace('%', "%25").replace('/', "%2F")
}

/// The output path of an aside file name (see [`aside_name`]); a name without escapes (the
/// nested folders of older versions give plain relative paths) is returned as it is.
pub fn aside_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("%2F") {
            out.push('/');
            rest = r;
        } else if let Some(r) = after.strip_prefix("%25") {
            out.push('%');
            rest = r;
        } else {
            out.push('%');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Option<T> {
    let bytes = std::fs::read(p).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256_bytes;

    #[test]
    fn aside_names_are_flat_and_give_the_path_back() {
        for p in [
            "a.csv",
            "out/x.txt",
            "a/b/c",
            "%",
            "%2F/b",
            "a%/b",
            "%25%2F",
            "x%2",
            "é/%",
        ] {
            let n = aside_name(p);
            assert!(!n.contains('/'), "{n}");
            assert_eq!(aside_path(&n), p, "{n}");
        }
        // Older versions nested folders: their relative paths come back unchanged.
        assert_eq!(aside_path("out/x.txt"), "out/x.txt");
    }

    proptest::proptest! {
        #[test]
        fn aside_name_round_trips(p in "[a-z%/2F5]{0,12}") {
            proptest::prop_assert_eq!(aside_path(&aside_name(&p)), p);
        }
    }

    fn record(stage: &str, key: &str, outputs: &[(&str, &str)]) -> Record {
        Record {
            stage: stage.into(),
            key_digest: key.into(),
            key: CacheKey {
                key_version: 1,
                tool_version: "test".into(),
                kind: "command".into(),
                kind_version: 1,
                params: serde_json::json!({}),
                extra: BTreeMap::new(),
                inputs: BTreeMap::new(),
                names: BTreeMap::new(),
                outputs: outputs.iter().map(|(p, _)| p.to_string()).collect(),
            },
            outputs: outputs
                .iter()
                .map(|(p, d)| (p.to_string(), d.to_string()))
                .collect(),
            millis: 7,
            peak_rss_kib: None,
        }
    }

    #[test]
    fn objects_round_trip_and_a_corrupt_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        cache.init().unwrap();
        let src = dir.path().join("a.txt");
        std::fs::write(&src, "hello\n").unwrap();
        let d = sha256_bytes(b"hello\n");
        assert!(!cache.has_object(&d));
        cache.put(&src, &d).unwrap();
        assert!(cache.has_object(&d) && cache.holds(&d));
        let dst = dir.path().join("back.txt");
        cache.restore(&d, &dst).unwrap();
        assert_eq!(std::fs::read_to_string(&dst).unwrap(), "hello\n");
        assert!(matches!(
            cache.restore(&sha256_bytes(b"other"), &dst),
            Err(RestoreError::Missing)
        ));
        // An object whose bytes no longer match its name is never restored.
        std::fs::write(cache.object_path(&d), "tampered\n").unwrap();
        assert!(matches!(
            cache.restore(&d, &dir.path().join("x.txt")),
            Err(RestoreError::Corrupt)
        ));
        assert!(!dir.path().join("x.txt").exists());
    }

    #[test]
    fn records_survive_a_reload_by_stage_and_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        cache.init().unwrap();
        let r = record("a", "k1", &[("out/a.txt", "d1")]);
        cache.save(&r).unwrap();
        assert_eq!(cache.last("a"), Some(r.clone()));
        cache.flush().unwrap();
        let fresh = Cache::new(dir.path());
        assert_eq!(fresh.last("a"), Some(r.clone()));
        assert_eq!(fresh.by_key("k1"), Some(r));
        assert_eq!(fresh.recorded_stages(), ["a"]);
        fresh.forget_stage("a").unwrap();
        fresh.flush().unwrap();
        assert_eq!(Cache::new(dir.path()).last("a"), None);
    }

    #[test]
    fn gc_keeps_what_a_record_refers_to_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        cache.init().unwrap();
        let (keep, drop) = (dir.path().join("keep"), dir.path().join("drop"));
        std::fs::write(&keep, "keep\n").unwrap();
        std::fs::write(&drop, "drop, longer\n").unwrap();
        let (dk, dd) = (sha256_bytes(b"keep\n"), sha256_bytes(b"drop, longer\n"));
        cache.put(&keep, &dk).unwrap();
        cache.put(&drop, &dd).unwrap();
        cache.save(&record("a", "k", &[("keep", &dk)])).unwrap();
        cache.flush().unwrap();
        assert_eq!(cache.gc().unwrap(), (1, 13));
        assert!(cache.has_object(&dk) && !cache.has_object(&dd));
    }
}
