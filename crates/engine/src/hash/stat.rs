//! The stat cache: (size, mtime, ctime, inode) -> digest, persisted between runs, so that an
//! unchanged file is never rehashed while content still decides (a `touch` or a fresh clone
//! rehashes, finds the same digest, and reruns nothing).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    digest: String,
}

/// Thread-safe stat cache keyed by project-relative path.
#[derive(Debug, Default)]
pub struct StatCache {
    entries: Mutex<BTreeMap<String, Entry>>,
    dirty: std::sync::atomic::AtomicBool,
    /// Paths already checked against the disk in this process: the engine is the only writer
    /// of outputs during a run (and records what it writes), so one `stat` per path suffices.
    checked: Mutex<std::collections::BTreeSet<String>>,
}

/// What the stat cache compares: (size, mtime ns, ctime ns, inode).
pub type Stamp = (u64, i128, i128, u64);

/// The stamp of a file's metadata.
#[cfg(unix)]
pub fn stamp(m: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    (
        m.len(),
        m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        m.ino(),
    )
}

/// The stamp of a file's metadata.
#[cfg(not(unix))]
pub fn stamp(m: &std::fs::Metadata) -> Stamp {
    let mt = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    (m.len(), mt, 0, 0)
}

impl StatCache {
    /// Loads the cache from `path`; a missing or unreadable file gives an empty cache.
    pub fn load(path: &Path) -> StatCache {
        let entries = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        StatCache {
            entries: Mutex::new(entries),
            dirty: std::sync::atomic::AtomicBool::new(false),
            checked: Mutex::new(Default::default()),
        }
    }

    /// Writes the cache atomically if anything changed.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::sync::atomic::Ordering;
        if !self.dirty.load(Ordering::SeqCst) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&*self.entries.lock().unwrap())?;
        crate::fsutil::write_atomic(path, &bytes)?;
        self.dirty.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// [`StatCache::digest`], looking at the file again even if this run has checked it (to
    /// see whether it changed during a stage): a `stat`, and a hash only if that changed.
    pub fn recheck(&self, root: &Path, rel: &str) -> std::io::Result<Option<String>> {
        self.checked.lock().unwrap().remove(rel);
        self.digest(root, rel)
    }

    /// Digest of `root/rel`, from the cache when size, mtime, ctime and inode all match.
    /// `Ok(None)` when the file does not exist.
    pub fn digest(&self, root: &Path, rel: &str) -> std::io::Result<Option<String>> {
        // One lock at a time (never nested), so no lock-order deadlock is possible.
        let checked = self.checked.lock().unwrap().contains(rel);
        if checked && let Some(d) = self.cached_digest(rel) {
            return Ok(Some(d));
        }
        let full = root.join(rel);
        let meta = match std::fs::metadata(&full) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (size, mtime_ns, ctime_ns, ino) = stamp(&meta);
        let hit = self
            .entries
            .lock()
            .unwrap()
            .get(rel)
            .filter(|e| {
                e.size == size && e.mtime_ns == mtime_ns && e.ctime_ns == ctime_ns && e.ino == ino
            })
            .map(|e| e.digest.clone());
        if let Some(d) = hit {
            self.checked.lock().unwrap().insert(rel.to_string());
            return Ok(Some(d));
        }
        let digest = super::sha256_file(&full)?;
        self.record_meta(rel, &meta, &digest);
        self.checked.lock().unwrap().insert(rel.to_string());
        Ok(Some(digest))
    }

    /// Records a digest for a file just written (avoids hashing it again next time).
    pub fn record(&self, root: &Path, rel: &str, digest: &str) {
        if let Ok(meta) = std::fs::metadata(root.join(rel)) {
            self.record_meta(rel, &meta, digest);
            self.checked.lock().unwrap().insert(rel.to_string());
        }
    }

    fn cached_digest(&self, rel: &str) -> Option<String> {
        self.entries
            .lock()
            .unwrap()
            .get(rel)
            .map(|e| e.digest.clone())
    }

    fn record_meta(&self, rel: &str, meta: &std::fs::Metadata, digest: &str) {
        let (size, mtime_ns, ctime_ns, ino) = stamp(meta);
        let e = Entry {
            size,
            mtime_ns,
            ctime_ns,
            ino,
            digest: digest.to_string(),
        };
        let mut map = self.entries.lock().unwrap();
        if map.get(rel) != Some(&e) {
            map.insert(rel.to_string(), e);
            self.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The stamp under which `rel`'s digest was recorded, if it was checked against the disk
    /// (or recorded) by this process.
    pub fn stamp_of(&self, rel: &str) -> Option<Stamp> {
        if !self.checked.lock().unwrap().contains(rel) {
            return None;
        }
        self.entries
            .lock()
            .unwrap()
            .get(rel)
            .map(|e| (e.size, e.mtime_ns, e.ctime_ns, e.ino))
    }

    /// Forgets a path (e.g. after it was deleted).
    pub fn forget(&self, rel: &str) {
        self.checked.lock().unwrap().remove(rel);
        if self.entries.lock().unwrap().remove(rel).is_some() {
            self.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file whose size, mtime, ctime and inode match the recorded stamp is not hashed again:
    /// the recorded digest comes back (here a made-up one, to prove no hashing happened); any
    /// change of the stamp rehashes.
    #[test]
    fn an_unchanged_stamp_skips_hashing_and_a_changed_one_rehashes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), "one\n").unwrap();
        let sc = StatCache::default();
        sc.record(root, "a.txt", "made-up-digest");
        assert!(sc.stamp_of("a.txt").is_some());
        let saved = root.join("stat.json");
        sc.save(&saved).unwrap();

        let sc = StatCache::load(&saved);
        assert_eq!(
            sc.digest(root, "a.txt").unwrap().as_deref(),
            Some("made-up-digest")
        );

        let sc = StatCache::load(&saved);
        std::fs::write(root.join("a.txt"), "two, longer\n").unwrap();
        let real = crate::hash::sha256_bytes(b"two, longer\n");
        assert_eq!(sc.digest(root, "a.txt").unwrap(), Some(real.clone()));
        // Within one run a checked path is answered from memory.
        assert_eq!(sc.digest(root, "a.txt").unwrap(), Some(real));
    }

    #[test]
    fn missing_files_and_folders_have_no_digest_and_forget_drops_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        let sc = StatCache::default();
        assert_eq!(sc.digest(root, "nope.txt").unwrap(), None);
        assert_eq!(sc.digest(root, "sub").unwrap(), None);
        std::fs::write(root.join("b.txt"), "b\n").unwrap();
        assert!(sc.digest(root, "b.txt").unwrap().is_some());
        sc.forget("b.txt");
        assert_eq!(sc.stamp_of("b.txt"), None);
    }

    #[test]
    fn an_unchanged_cache_is_not_written_and_a_corrupt_one_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat.json");
        StatCache::default().save(&path).unwrap();
        assert!(!path.exists(), "nothing recorded, nothing written");
        std::fs::write(&path, "{not json").unwrap();
        let sc = StatCache::load(&path);
        std::fs::write(dir.path().join("c.txt"), "c\n").unwrap();
        assert_eq!(
            sc.digest(dir.path(), "c.txt").unwrap(),
            Some(crate::hash::sha256_bytes(b"c\n"))
        );
    }
}
