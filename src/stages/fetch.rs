//! The `fetch` kind: an input pinned by URL and SHA-256.
//!
//! It looks for the file in the mirror folders first (`--mirror DIR`, `ARTIFACT_MIRROR`; a file
//! there named like the URL's last segment, or `with.file`), then downloads it (HTTPS; plain
//! HTTP only from a loopback host, for tests), verifies the digest and writes the declared
//! output. The pin is part of the cache key; the mirrors are not, since content is pinned.
//!
//! `with:` keys:
//! - `url` (string, required): `https://...` address of the file.
//! - `sha256` (string, required): 64 lowercase hex digits.
//! - `file` (string, optional): name to look for in mirror folders (default: the URL's last
//!   path segment).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::kind::{Kind, Located, Problem, StageCtx, StageError};
use engine::spec::StageSpec;
use serde::Deserialize;

/// `with:` of a `fetch` stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    url: Located<String>,
    sha256: Located<String>,
    #[serde(default)]
    file: Option<Located<String>>,
}

impl Params {
    fn file_name(&self) -> &str {
        match &self.file {
            Some(f) => &f.value,
            None => self.url.rsplit('/').next().unwrap_or(""),
        }
    }
}

/// A stage's pin: where its file comes from and the digest it must have.
#[derive(Clone, Copy, Debug)]
pub struct Pin<'a> {
    pub url: &'a str,
    pub sha256: &'a str,
    /// The declared output the file is written to.
    pub path: &'a str,
}

impl FetchKind {
    /// The pin of `stage`, if it is a validated `fetch` stage.
    pub fn pin(stage: &StageSpec) -> Option<Pin<'_>> {
        let p = Self::params_of(stage)?;
        Some(Pin {
            url: &p.url.value,
            sha256: &p.sha256.value,
            path: &stage.outputs.first()?.path,
        })
    }
}

/// See the module docs.
pub struct FetchKind;

fn loopback(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or("");
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]")
}

impl Kind for FetchKind {
    type Params = Params;
    fn name(&self) -> &'static str {
        "fetch"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "an input pinned by URL + sha256, taken from a mirror folder or downloaded"
    }
    fn validate(&self, p: &Params, stage: &StageSpec) -> Vec<Problem> {
        let mut v = Vec::new();
        if !(p.url.starts_with("https://") || loopback(&p.url)) {
            v.push(Problem::at(
                p.url.loc,
                format!("`url` must start with https:// (got {:?})", p.url.value),
            ));
        }
        if p.sha256.len() != 64
            || !p
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            v.push(Problem::at(
                p.sha256.loc,
                format!(
                    "`sha256` must be 64 lowercase hex digits (got {:?})",
                    p.sha256.value
                ),
            ));
        }
        if p.file_name().is_empty() || p.file_name().contains('/') {
            let msg = match &p.file {
                // `file: "../m/data.csv"` was told to "set `file`".
                Some(f) => Problem::at(f.loc, "`file` must be a file name, without folders"),
                None => Problem::at(p.url.loc, "cannot tell the file name: set `file`"),
            };
            v.push(msg);
        }
        // No outputs at all is the engine's to report (an empty list, or paths it refused).
        if stage.outputs.len() > 1 {
            v.push(Problem::new(
                stage.outputs.get(1).map(|o| o.loc),
                format!(
                    "a fetch stage has exactly one output (found {})",
                    stage.outputs.len()
                ),
            ));
        }
        v
    }
    fn run(&self, p: &Params, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let rel = &ctx.stage.outputs[0].path;
        let out = ctx
            .output(rel)
            .map_err(|e| format!("cannot create the folder of {rel}: {e}"))?;
        let name = p.file_name();
        let mismatches = match from_mirrors(&ctx.env.mirrors, name, &p.sha256, &out)? {
            None => return Ok(()),
            Some(m) => m,
        };
        let looked = if ctx.env.mirrors.is_empty() {
            "no mirror folder was given".to_string()
        } else {
            format!(
                "looked for {name} in: {}",
                ctx.env
                    .mirrors
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut detail = looked;
        for m in &mismatches {
            detail.push_str(&format!("; {m}, expected {}", p.sha256));
        }
        if ctx.env.offline {
            return Err(format!(
                "cannot fetch {}: offline mode and no mirror holds the pinned file ({detail}). \
                 Put the file (sha256 {}) in a folder and pass `--mirror DIR` or set ARTIFACT_MIRROR.",
                p.url, p.sha256
            )
            .into());
        }
        let placed = download(&p.url, &out, &p.sha256).map_err(|e| {
            format!(
                "cannot download {}: {e} ({detail}). Without network, put the file (sha256 {}) \
                 in a folder and pass `--mirror DIR` or set ARTIFACT_MIRROR.",
                p.url, p.sha256
            )
        })?;
        if let Placed::Mismatch(got) = placed {
            return Err(format!(
                "{} has sha256 {got}, expected {}: the upstream file changed or the download \
                 was corrupted. Check the pin in pipeline.yaml.",
                p.url, p.sha256
            )
            .into());
        }
        Ok(())
    }
}

/// What [`place_verified`] did.
#[derive(Debug, PartialEq)]
enum Placed {
    /// The bytes had the pinned digest and are now at the destination.
    Yes,
    /// They had this other digest; nothing was put in place.
    Mismatch(String),
}

/// Streams `src` into a temporary sibling of `out`, hashing exactly the bytes written, and
/// renames it over `out` only when their SHA-256 is `want`. The source is read once: what is
/// checked is what is written (reading a file twice, once to hash and once to copy, let a file
/// swapped in between through unchecked). On a mismatch or an error the temporary file is
/// removed and `out` is untouched.
fn place_verified(src: &mut dyn Read, out: &Path, want: &str) -> Result<Placed, String> {
    use sha2::Digest;
    let tmp = engine::fsutil::temp_sibling(out);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read failed: {e}")),
            };
            h.update(&buf[..n]);
            f.write_all(&buf[..n])
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        }
        drop(f);
        let got = engine::hash::hex(&h.finalize());
        if got != want {
            return Ok(Placed::Mismatch(got));
        }
        std::fs::rename(&tmp, out)
            .map_err(|e| format!("cannot move {} to {}: {e}", tmp.display(), out.display()))?;
        Ok(Placed::Yes)
    })();
    if !matches!(res, Ok(Placed::Yes)) {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Looks for `name` in each mirror folder in turn and puts the first copy whose bytes have the
/// pinned digest at `out` (one read per candidate, see [`place_verified`]). Returns `None` when
/// a copy was put in place, else the mismatching candidates (`"<path> has sha256 <digest>"`).
fn from_mirrors(
    mirrors: &[PathBuf],
    name: &str,
    want: &str,
    out: &Path,
) -> Result<Option<Vec<String>>, String> {
    let mut mismatches = Vec::new();
    for dir in mirrors {
        let cand = dir.join(name);
        if !cand.is_file() {
            continue;
        }
        let mut f = std::fs::File::open(&cand)
            .map_err(|e| format!("cannot read {}: {e}", cand.display()))?;
        match place_verified(&mut f, out, want)
            .map_err(|e| format!("cannot copy {}: {e}", cand.display()))?
        {
            Placed::Yes => return Ok(None),
            Placed::Mismatch(got) => {
                mismatches.push(format!("{} has sha256 {got}", cand.display()));
            }
        }
    }
    Ok(Some(mismatches))
}

/// Downloads `url` into `out` through [`place_verified`].
fn download(url: &str, out: &Path, want: &str) -> Result<Placed, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut reader = resp.body_mut().as_reader();
    place_verified(&mut reader, out, want)
}

/// Mirror folders from `--mirror` and `ARTIFACT_MIRROR` (colon-separated).
pub fn mirrors(cli: &[PathBuf]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = cli.to_vec();
    if let Ok(env) = std::env::var("ARTIFACT_MIRROR") {
        v.extend(env.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        engine::hash::sha256_bytes(bytes)
    }

    /// Files in `dir` other than `keep` (left-over temporary files).
    fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| !keep.contains(&n.as_str()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn mirror_with_wrong_content_is_refused_and_nothing_is_put_in_place() {
        let mirror = tempfile::tempdir().expect("tempdir");
        let out_dir = tempfile::tempdir().expect("tempdir");
        let out = out_dir.path().join("dataset.csv");
        std::fs::write(mirror.path().join("dataset.csv"), b"foreign\n").expect("write");
        let want = sha(b"pinned\n");
        let got = from_mirrors(&[mirror.path().to_path_buf()], "dataset.csv", &want, &out)
            .expect("no I/O error");
        let m = got.expect("refused");
        assert_eq!(m.len(), 1);
        assert!(
            m[0].ends_with(&format!("has sha256 {}", sha(b"foreign\n"))),
            "{m:?}"
        );
        assert!(!out.exists());
        assert_eq!(others(out_dir.path(), &[]), Vec::<String>::new());
        // A second mirror with the right bytes is used.
        let good = tempfile::tempdir().expect("tempdir");
        std::fs::write(good.path().join("dataset.csv"), b"pinned\n").expect("write");
        let got = from_mirrors(
            &[mirror.path().to_path_buf(), good.path().to_path_buf()],
            "dataset.csv",
            &want,
            &out,
        )
        .expect("no I/O error");
        assert_eq!(got, None);
        assert_eq!(std::fs::read(&out).expect("placed"), b"pinned\n");
        assert_eq!(
            others(out_dir.path(), &["dataset.csv"]),
            Vec::<String>::new()
        );
    }

    /// A reader whose bytes differ from the pinned ones (a download or a mirror file changed
    /// while it is read) is refused; the bytes checked are exactly the bytes written.
    #[test]
    fn bytes_that_do_not_match_the_pin_never_reach_the_destination() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("f.csv");
        std::fs::write(&out, b"previous\n").expect("write");
        // The pinned content, then one changed byte at the end.
        let pinned = vec![b'a'; 200_000];
        let mut changed = pinned.clone();
        changed[199_999] = b'b';
        let r = place_verified(&mut changed.as_slice(), &out, &sha(&pinned)).expect("no error");
        assert_eq!(r, Placed::Mismatch(sha(&changed)));
        assert_eq!(std::fs::read(&out).expect("read"), b"previous\n");
        assert_eq!(others(dir.path(), &["f.csv"]), Vec::<String>::new());
        let r = place_verified(&mut pinned.as_slice(), &out, &sha(&pinned)).expect("no error");
        assert_eq!(r, Placed::Yes);
        assert_eq!(std::fs::read(&out).expect("read"), pinned);
    }

    /// The mirror file is swapped between pinned and foreign content (atomic renames) while
    /// the fetch runs, over and over. Whenever a fetch succeeds, the bytes in place must be the
    /// pinned ones. (Hashing the file by path and then copying it by path again let the
    /// foreign content through in most runs.)
    #[test]
    fn mirror_file_swapped_during_fetch_never_puts_foreign_bytes_in_place() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let mirror = tempfile::tempdir().expect("tempdir");
        let stash = tempfile::tempdir().expect("tempdir");
        let out_dir = tempfile::tempdir().expect("tempdir");
        let pinned = vec![b'p'; 1 << 20];
        let foreign = vec![b'f'; 1 << 20];
        let (good, bad) = (stash.path().join("good"), stash.path().join("bad"));
        std::fs::write(&good, &pinned).expect("write");
        std::fs::write(&bad, &foreign).expect("write");
        let target = mirror.path().join("dataset.csv");
        std::fs::copy(&good, &target).expect("copy");
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, target, stash) = (stop.clone(), target.clone(), stash.path().to_path_buf());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let src = if n.is_multiple_of(2) { "bad" } else { "good" };
                    let link = stash.join(format!("link{n}"));
                    std::fs::hard_link(stash.join(src), &link).expect("link");
                    std::fs::rename(&link, &target).expect("rename");
                    n += 1;
                }
            })
        };
        let want = sha(&pinned);
        let out = out_dir.path().join("dataset.csv");
        let (mut placed, mut refused) = (0, 0);
        for _ in 0..60 {
            let _ = std::fs::remove_file(&out);
            match from_mirrors(&[mirror.path().to_path_buf()], "dataset.csv", &want, &out) {
                Ok(None) => {
                    placed += 1;
                    let got = std::fs::read(&out).expect("placed");
                    assert!(got == pinned, "foreign bytes were put in place");
                }
                Ok(Some(_)) => {
                    refused += 1;
                    assert!(!out.exists(), "a refused fetch left a file in place");
                }
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().expect("swapper");
        assert_eq!(placed + refused, 60);
        assert_eq!(
            others(out_dir.path(), &["dataset.csv"]),
            Vec::<String>::new()
        );
    }
}
