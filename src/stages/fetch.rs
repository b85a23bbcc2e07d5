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

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::exec::{Kind, Problem, StageCtx, StageError, params};
use engine::spec::StageSpec;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    url: String,
    sha256: String,
    #[serde(default)]
    file: Option<String>,
}

impl Params {
    fn file_name(&self) -> &str {
        self.file
            .as_deref()
            .unwrap_or_else(|| self.url.rsplit('/').next().unwrap_or(""))
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
    fn name(&self) -> &'static str {
        "fetch"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "an input pinned by URL + sha256, taken from a mirror folder or downloaded"
    }
    fn check(&self, stage: &StageSpec) -> Vec<Problem> {
        let p: Params = match params(stage) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let mut v = Vec::new();
        if !(p.url.starts_with("https://") || loopback(&p.url)) {
            v.push(Problem::new(
                None,
                format!("`url` must start with https:// (got {:?})", p.url),
            ));
        }
        if p.sha256.len() != 64
            || !p
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            v.push(Problem::new(
                None,
                format!(
                    "`sha256` must be 64 lowercase hex digits (got {:?})",
                    p.sha256
                ),
            ));
        }
        if p.file_name().is_empty() || p.file_name().contains('/') {
            v.push(Problem::new(None, "cannot tell the file name: set `file`"));
        }
        if stage.outputs.len() != 1 {
            v.push(Problem::new(
                None,
                format!(
                    "a fetch stage has exactly one output (found {})",
                    stage.outputs.len()
                ),
            ));
        }
        v
    }
    fn run(&self, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let p: Params = ctx.params()?;
        let rel = &ctx.stage.outputs[0].path;
        let out = ctx
            .output(rel)
            .map_err(|e| format!("cannot create the folder of {rel}: {e}"))?;
        let name = p.file_name();
        let mut mismatches = Vec::new();
        for dir in &ctx.env.mirrors {
            let cand = dir.join(name);
            if !cand.is_file() {
                continue;
            }
            let got = engine::hash::sha256_file(&cand)
                .map_err(|e| format!("cannot read {}: {e}", cand.display()))?;
            if got == p.sha256 {
                engine::fsutil::copy_atomic(&cand, &out)
                    .map_err(|e| format!("cannot copy {} to {rel}: {e}", cand.display()))?;
                return Ok(());
            }
            mismatches.push(format!("{} has sha256 {got}", cand.display()));
        }
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
        let tmp = engine::fsutil::temp_sibling(&out);
        let got = download(&p.url, &tmp).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!(
                "cannot download {}: {e} ({detail}). Without network, put the file (sha256 {}) \
                 in a folder and pass `--mirror DIR` or set ARTIFACT_MIRROR.",
                p.url, p.sha256
            )
        })?;
        if got != p.sha256 {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "{} has sha256 {got}, expected {}: the upstream file changed or the download \
                 was corrupted. Check the pin in pipeline.yaml.",
                p.url, p.sha256
            )
            .into());
        }
        std::fs::rename(&tmp, &out).map_err(|e| format!("cannot write {rel}: {e}"))?;
        Ok(())
    }
}

/// Downloads `url` into `dst`, returning the content's SHA-256.
fn download(url: &str, dst: &Path) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    use sha2::Digest;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut resp = agent.get(url).call()?;
    let mut reader = resp.body_mut().as_reader();
    let mut f =
        std::fs::File::create(dst).map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n])?;
    }
    Ok(engine::hash::hex(&h.finalize()))
}

/// Mirror folders from `--mirror` and `ARTIFACT_MIRROR` (colon-separated).
pub fn mirrors(cli: &[PathBuf]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = cli.to_vec();
    if let Ok(env) = std::env::var("ARTIFACT_MIRROR") {
        v.extend(env.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    v
}
