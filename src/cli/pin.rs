//! `artifact pin URL [--mirror DIR] [--stage NAME] [--output PATH]`: computes the SHA-256 of the
//! file at URL (taken from a mirror folder when one holds a file named like the URL's last
//! segment, else downloaded) and prints the `fetch` stage that pins it, ready to paste under
//! `stages:` in `pipeline.yaml`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use engine::exit;
use sha2::Digest;

use super::Global;
use super::error::{Error, Result};

#[derive(Args, Debug)]
pub struct PinArgs {
    /// https:// address of the file to pin.
    pub url: String,
    /// Folders searched for the file (by the URL's last segment) before downloading; also
    /// `ARTIFACT_MIRROR`.
    #[arg(long)]
    pub mirror: Vec<PathBuf>,
    /// Name of the printed stage (default: the file name without its extension).
    #[arg(long)]
    pub stage: Option<String>,
    /// Output path of the printed stage (default: data/raw/FILE).
    #[arg(long)]
    pub output: Option<String>,
}

pub fn run(g: &Global, a: &PinArgs) -> Result<i32> {
    let name = a
        .url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::usage(format!(
                "{:?} has no file name after its last '/'; pin the address of a file",
                a.url
            ))
        })?;
    if !a.url.starts_with("https://") {
        return Err(Error::usage(format!(
            "{:?} is not an https:// address (fetch stages download over HTTPS only)",
            a.url
        )));
    }
    let mirrors = crate::stages::fetch::mirrors(&a.mirror);
    let (digest, from) = match mirrors.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        Some(p) => {
            let f = std::fs::File::open(&p)
                .map_err(|e| Error::internal(format!("cannot read {}: {e}", p.display())))?;
            (sha256_reader(f)?, p.display().to_string())
        }
        None => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(120)))
                .build()
                .into();
            let mut resp = agent.get(&a.url).call().map_err(|e| {
                Error::internal(format!("cannot download {}: {e} (no mirror folder holds {name}; give one with --mirror)",
                        a.url
                    ),
                )
            })?;
            (sha256_reader(resp.body_mut().as_reader())?, a.url.clone())
        }
    };
    let stem = name.split('.').next().unwrap_or(name);
    let stage = a
        .stage
        .clone()
        .unwrap_or_else(|| stem.replace(['-', ' '], "_"));
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| format!("data/raw/{name}"));
    if !g.quiet {
        eprintln!("sha256 of {from}: {digest}");
    }
    outln!(
        "  {stage}:\n    kind: fetch\n    outputs: [{output}]\n    with:\n      url: {:?}\n      sha256: \"{digest}\"",
        a.url
    );
    Ok(exit::OK)
}

fn sha256_reader(mut r: impl Read) -> Result<String> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| Error::internal(format!("read failed: {e}")))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(engine::hash::hex(&h.finalize()))
}
