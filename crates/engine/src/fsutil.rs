//! Atomic file operations: every file the engine writes appears whole or not at all
//! (write to a temporary sibling, then rename over the target).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary sibling of `path` (same folder, so `rename` is atomic).
pub fn temp_sibling(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Writes `bytes` to `path` atomically, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temp_sibling(path);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.flush()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Writes `bytes` to `path` atomically unless it already holds exactly these bytes.
/// Returns whether the file was written.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    write_atomic(path, bytes)?;
    Ok(true)
}

/// Copies `from` to `to` atomically, creating parent folders.
pub fn copy_atomic(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temp_sibling(to);
    let res = std::fs::copy(from, &tmp).and_then(|_| std::fs::rename(&tmp, to));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Moves `from` to `to` (same file system), creating parent folders; falls back to an atomic
/// copy across file systems.
pub fn move_into_place(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(_) => {
            copy_atomic(from, to)?;
            std::fs::remove_file(from)
        }
    }
}

/// Removes `.` and resolves `..` by dropping the previous component, without touching the disk.
pub fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Resolves absolute paths the way the kernel would, also where they do not exist yet: the
/// real path of the deepest existing ancestor plus the rest as written. A symlink is followed by
/// its target *text* (resolved lexically against its folder), so a dangling link is judged by
/// where it points, not only by whether it resolves. Remembers every prefix it resolved, so
/// validating many paths costs one `lstat` per distinct folder.
#[derive(Debug, Default)]
pub struct Resolver {
    cache: std::collections::HashMap<PathBuf, PathBuf>,
}

/// Symlinks followed in one resolution before giving up (as `ELOOP` does).
const MAX_HOPS: u32 = 40;

impl Resolver {
    /// Where the absolute path `p` really is (see the type's docs).
    pub fn resolve(&mut self, p: &Path) -> PathBuf {
        self.resolve_hops(&lexical(p), 0)
    }

    fn resolve_hops(&mut self, p: &Path, hops: u32) -> PathBuf {
        if let Some(c) = self.cache.get(p) {
            return c.clone();
        }
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
            return p.to_path_buf();
        };
        let dir = self.resolve_hops(parent, hops);
        let cand = dir.join(name);
        let r = match std::fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() && hops < MAX_HOPS => {
                match std::fs::read_link(&cand) {
                    // `join` with an absolute target gives the target.
                    Ok(t) => self.resolve_hops(&lexical(&dir.join(t)), hops + 1),
                    Err(_) => cand,
                }
            }
            _ => cand,
        };
        self.cache.insert(p.to_path_buf(), r.clone());
        r
    }
}

/// [`Resolver::resolve`] for one path.
pub fn resolve(p: &Path) -> PathBuf {
    Resolver::default().resolve(p)
}

/// Parses a temporary name made by [`temp_sibling`] (`.NAME.tmp.PID.N`), giving the PID.
pub fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let mut it = rest.rsplitn(3, '.');
    let n = it.next()?;
    let pid = it.next()?;
    let stem = it.next()?;
    if stem.len() <= ".tmp".len()
        || !stem.ends_with(".tmp")
        || n.is_empty()
        || !n.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is alive. Where this cannot be known (no `/proc`), every process
/// counts as alive, so that nothing of a running process is ever swept. A zombie (a process
/// that ended and whose parent has not yet waited for it) counts as gone: a run killed with
/// SIGKILL is one until its parent reaps it, and the next run, which gets the project lock as
/// soon as the killed one's files are closed, must sweep what it left (found by
/// scripts/chaos.sh: the aside folders of a killed run outlived the run that followed it).
pub fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() || !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name, which ends at the last ')'.
        Ok(stat) => !stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state == 'Z' || state == 'X'),
        Err(_) => Path::new("/proc").join(pid.to_string()).exists(),
    }
}

/// Whether `name` is a temporary file of this tool whose process is gone.
pub fn is_stale_temp(name: &str) -> bool {
    temp_owner(name).is_some_and(|pid| !pid_alive(pid))
}

/// The project folder, with the few writes the engine makes into it (and `clean`'s deletes)
/// done so that they cannot leave it: the parent folder is resolved and checked (inside the
/// root, not inside `.artifact/`) at the moment of acting, then opened component by component
/// from the root with `O_NOFOLLOW`, and the file is named relative to that open folder
/// (`unlinkat`, `renameat`, `openat`). A folder swapped for a symlink in between makes the
/// operation fail instead of acting elsewhere.
#[derive(Clone, Debug)]
pub struct Confined {
    root: PathBuf,
}

fn io_other(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::PermissionDenied, msg)
}

impl Confined {
    /// `root` is the project root; it is resolved once here.
    pub fn new(root: &Path) -> Confined {
        let abs = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        Confined {
            root: std::fs::canonicalize(&abs).unwrap_or_else(|_| resolve(&abs)),
        }
    }

    /// The resolved project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Checks where the folder of `rel` really is now and opens it (creating missing folders
    /// with `create`) without following any symlink on the way; returns it and the file name.
    fn open_parent(
        &self,
        rel: &str,
        create: bool,
    ) -> std::io::Result<(rustix::fd::OwnedFd, std::ffi::OsString)> {
        use rustix::fs::{Mode, OFlags};
        if Path::new(rel).is_absolute() {
            return Err(io_other(format!(
                "refusing to touch {rel}: not a project path"
            )));
        }
        let target = lexical(&self.root.join(rel));
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(io_other(format!("{rel} names no file")));
        };
        let dir = resolve(parent);
        let cache = self.root.join(crate::spec::CACHE_DIR);
        if !dir.starts_with(&self.root)
            || dir.starts_with(&cache)
            || (dir == self.root && name == crate::spec::CACHE_DIR)
        {
            return Err(io_other(format!(
                "refusing to touch {rel}: its folder now resolves to {}, outside the project or inside `{}/`",
                dir.display(),
                crate::spec::CACHE_DIR
            )));
        }
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY;
        let mut fd = rustix::fs::openat(rustix::fs::CWD, &self.root, flags, Mode::empty())?;
        let below = dir.strip_prefix(&self.root).expect("checked above");
        for comp in below.components() {
            let c = comp.as_os_str();
            let next = match rustix::fs::openat(&fd, c, flags, Mode::empty()) {
                Err(rustix::io::Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&fd, c, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::openat(&fd, c, flags, Mode::empty())
                }
                other => other,
            }
            .map_err(|e| {
                io_other(format!(
                    "refusing to touch {rel}: folder {} changed while in use ({e})",
                    comp.as_os_str().to_string_lossy()
                ))
            })?;
            fd = next;
        }
        Ok((fd, name.to_os_string()))
    }

    /// Deletes the file (or symlink) `rel`.
    pub fn remove(&self, rel: &str) -> std::io::Result<()> {
        let (dir, name) = self.open_parent(rel, false)?;
        rustix::fs::unlinkat(&dir, &name, rustix::fs::AtFlags::empty())?;
        Ok(())
    }

    /// Copies `from` to `rel` atomically (a temporary sibling renamed over it), creating
    /// folders; keeps `from`'s permission bits.
    pub fn copy_in(&self, from: &Path, rel: &str) -> std::io::Result<()> {
        use rustix::fs::{Mode, OFlags};
        let mut src = std::fs::File::open(from)?;
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            src.metadata()?.permissions().mode() & 0o7777
        };
        let (dir, name) = self.open_parent(rel, true)?;
        let tmp = temp_sibling(Path::new(&name));
        let tmp = tmp.file_name().expect("a file name");
        let fd = rustix::fs::openat(
            &dir,
            tmp,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let res = (|| {
            let mut f = std::fs::File::from(fd);
            std::io::copy(&mut src, &mut f)?;
            rustix::fs::fchmod(&f, Mode::from_raw_mode(mode))?;
            f.flush()?;
            drop(f);
            rustix::fs::renameat(&dir, tmp, &dir, &name)?;
            Ok(())
        })();
        if res.is_err() {
            let _ = rustix::fs::unlinkat(&dir, tmp, rustix::fs::AtFlags::empty());
        }
        res
    }

    /// Moves `from` (e.g. a scratch file in `.artifact/tmp/`) to `rel`, creating folders;
    /// copies atomically when the two are on different file systems.
    pub fn move_in(&self, from: &Path, rel: &str) -> std::io::Result<()> {
        let (dir, name) = self.open_parent(rel, true)?;
        match rustix::fs::renameat(rustix::fs::CWD, from, &dir, &name) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::XDEV) => {
                drop(dir);
                self.copy_in(from, rel)?;
                std::fs::remove_file(from)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Moves the file (or symlink) `rel` out of the project to `to` (same file system).
    pub fn move_out(&self, rel: &str, to: &Path) -> std::io::Result<()> {
        let (dir, name) = self.open_parent(rel, false)?;
        rustix::fs::renameat(&dir, &name, rustix::fs::CWD, to)?;
        Ok(())
    }

    /// Deletes the stale temporary files of this tool (see [`is_stale_temp`]) in the folder
    /// `rel_dir`; returns how many.
    pub fn sweep_temps(&self, rel_dir: &str) -> usize {
        let probe = if rel_dir.is_empty() {
            "x".to_string()
        } else {
            format!("{rel_dir}/x")
        };
        let Ok((dir, _)) = self.open_parent(&probe, false) else {
            return 0;
        };
        let Ok(entries) = std::fs::read_dir(self.root.join(rel_dir)) else {
            return 0;
        };
        let mut n = 0;
        for e in entries.flatten() {
            let name = e.file_name();
            if e.file_type().is_ok_and(|t| t.is_file())
                && is_stale_temp(&name.to_string_lossy())
                && rustix::fs::unlinkat(&dir, &name, rustix::fs::AtFlags::empty()).is_ok()
            {
                n += 1;
            }
        }
        n
    }
}
