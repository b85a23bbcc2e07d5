//! Scale-out settings of the binary: the user config file, the HTTP client of the remote cache
//! (the engine's [`engine::remote::Remote`] over `ureq`), and the SLURM site settings.
//!
//! The user config is `$ARTIFACT_CONFIG`, else `$XDG_CONFIG_HOME/artifact/config.yaml`, else
//! `~/.config/artifact/config.yaml` (YAML, unknown keys are errors):
//!
//! ```yaml
//! remote:
//!   url: https://cache.example.org/artifact   # Bazel HTTP cache layout: /cas/, /ac/
//!   write: false        # upload results of stages that ran (CI); default false
//!   timeout_secs: 30    # per request; default 30
//! slurm:
//!   partition: short
//!   account: lab
//!   sbatch_args: ["--qos=normal"]
//!   poll_secs: 10       # one squeue per interval for all jobs of the run
//!   work_dir: /shared/scratch/me/artifact-jobs   # visible from the compute nodes
//!   transport: shared-fs   # or `cache`: no shared file system, the remote cache carries
//!                          # the files (needs `remote` with writes on)
//! ```
//!
//! The remote URL can also come from `ARTIFACT_REMOTE` or `--remote`, writes from
//! `ARTIFACT_REMOTE_WRITE=1` or `--remote-write`; never from `pipeline.yaml`. Credentials come
//! from `ARTIFACT_REMOTE_TOKEN` (`user:password` for basic auth, anything else as a bearer
//! token) or `~/.netrc`, never from a file in the project.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use clap::Args;
use engine::remote::{Remote, RemoteCache, RemoteError};
use serde::Deserialize;

use super::error::{Error, Result};

/// The user config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(default)]
    pub remote: Option<RemoteConfig>,
    #[serde(default)]
    pub slurm: Option<SlurmConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    pub url: Option<String>,
    #[serde(default)]
    pub write: bool,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    pub partition: Option<String>,
    pub account: Option<String>,
    #[serde(default)]
    pub sbatch_args: Vec<String>,
    pub poll_secs: Option<f64>,
    pub work_dir: Option<PathBuf>,
    /// Folder of sbatch/squeue/scancel, when they are not on `PATH`.
    pub bin_dir: Option<PathBuf>,
    pub result_wait_secs: Option<f64>,
    /// How the jobs' files move; default `shared-fs`.
    pub transport: Option<TransportConfig>,
}

/// `slurm.transport` in the user config.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TransportConfig {
    SharedFs,
    Cache,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Where the user config is read from.
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARTIFACT_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(x).join("artifact").join("config.yaml"));
    }
    home().map(|h| h.join(".config").join("artifact").join("config.yaml"))
}

/// Reads the user config (a missing file is an empty config, and so, with a warning, is one in
/// the default place that cannot be read; a broken one is a usage error naming the file).
pub fn load_config() -> Result<UserConfig> {
    let Some(path) = config_path() else {
        return Ok(UserConfig::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserConfig::default()),
        // The default place under a home the user cannot read (a run as another user): no
        // config was asked for, so none is needed (exit 2 stopped every run).
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                && std::env::var_os("ARTIFACT_CONFIG").is_none_or(|p| p.is_empty()) =>
        {
            super::output::warn(format!(
                "cannot read the user config {}: {e}; going on without it",
                path.display()
            ));
            return Ok(UserConfig::default());
        }
        Err(e) => {
            return Err(Error::usage(format!(
                "cannot read the user config {}: {e}",
                path.display()
            )));
        }
    };
    if text.trim().is_empty() {
        return Ok(UserConfig::default());
    }
    serde_saphyr::from_str(&text).map_err(|e| Error::Usage {
        file: Some(path.clone()),
        message: e.to_string(),
    })
}

/// Remote-cache options shared by `run`, `push`, `pull` and `status`.
#[derive(Args, Debug, Clone, Default)]
pub struct RemoteArgs {
    /// Shared cache URL (Bazel HTTP cache layout); overrides `ARTIFACT_REMOTE` and the user
    /// config.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// Upload the results of stages that ran (also `ARTIFACT_REMOTE_WRITE=1` or `write: true`
    /// in the user config).
    #[arg(long)]
    pub remote_write: bool,
    /// Use no remote cache, whatever is configured.
    #[arg(long, conflicts_with_all = ["remote", "remote_write"])]
    pub no_remote: bool,
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// The remote cache this command uses, if any; `force_write` for `push`.
pub fn remote_cache(
    a: &RemoteArgs,
    cfg: &UserConfig,
    force_write: bool,
) -> Result<Option<RemoteCache>> {
    if a.no_remote {
        return Ok(None);
    }
    let rc = cfg.remote.as_ref();
    let url = a
        .remote
        .clone()
        .or_else(|| {
            std::env::var("ARTIFACT_REMOTE")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .or_else(|| rc.and_then(|r| r.url.clone()));
    let Some(url) = url else {
        return Ok(None);
    };
    let write = force_write
        || a.remote_write
        || env_flag("ARTIFACT_REMOTE_WRITE")
        || rc.is_some_and(|r| r.write);
    let timeout = Duration::from_secs(rc.and_then(|r| r.timeout_secs).unwrap_or(30).max(1));
    let http = HttpRemote::new(&url, timeout)?;
    Ok(Some(RemoteCache::new(Box::new(http), true, write)))
}

/// The engine's [`Remote`] over HTTP(S): GET, HEAD and PUT only (no MKCOL, no PROPFIND), so it
/// works against stock nginx WebDAV and bazel-remote alike.
pub struct HttpRemote {
    base: String,
    shown: String,
    agent: ureq::Agent,
    auth: Option<String>,
}

impl HttpRemote {
    pub fn new(url: &str, timeout: Duration) -> Result<HttpRemote> {
        let base = url.trim_end_matches('/').to_string();
        let Some((scheme, rest)) = base.split_once("://") else {
            return Err(Error::usage(format!(
                "remote cache URL {url:?} is not an http:// or https:// URL"
            )));
        };
        let authority = rest.split('/').next().unwrap_or("");
        if !matches!(scheme, "http" | "https") || authority.is_empty() {
            return Err(Error::usage(format!(
                "remote cache URL {url:?} is not an http:// or https:// URL"
            )));
        }
        if authority.contains('@') {
            return Err(Error::usage(
                "the remote cache URL must not hold credentials; put them in ~/.netrc or ARTIFACT_REMOTE_TOKEN",
            ));
        }
        let host = authority
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority, |(h, _)| h);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .http_status_as_error(false)
            .build()
            .into();
        let auth = credentials(host);
        Ok(HttpRemote {
            shown: base.clone(),
            base: base.clone(),
            agent,
            auth,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }
}

/// `Authorization` header value from `ARTIFACT_REMOTE_TOKEN` or `~/.netrc`.
fn credentials(host: &str) -> Option<String> {
    if let Ok(t) = std::env::var("ARTIFACT_REMOTE_TOKEN")
        && !t.is_empty()
    {
        return Some(if t.contains(':') {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(t)
            )
        } else {
            format!("Bearer {t}")
        });
    }
    let text = std::fs::read_to_string(home()?.join(".netrc")).ok()?;
    let (login, password) = netrc_lookup(&text, host)?;
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
    ))
}

/// The login and password for `host` in netrc text (`machine` entries, then `default`).
/// Hand-written: the format is a flat list of keyword/value tokens, and the crates for it are
/// unmaintained or pull in more than these few lines.
fn netrc_lookup(text: &str, host: &str) -> Option<(String, String)> {
    let mut tokens = text.split_whitespace();
    let mut entries: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
    while let Some(t) = tokens.next() {
        match t {
            "machine" => entries.push((tokens.next().map(String::from), None, None)),
            "default" => entries.push((None, None, None)),
            "login" | "password" | "account" => {
                let v = tokens.next().map(String::from);
                if let Some(e) = entries.last_mut() {
                    match t {
                        "login" => e.1 = v,
                        "password" => e.2 = v,
                        _ => {}
                    }
                }
            }
            // A macro definition runs to the next blank line; none are expected here.
            "macdef" => break,
            _ => {}
        }
    }
    let pick = |e: &(Option<String>, Option<String>, Option<String>)| match (&e.1, &e.2) {
        (Some(l), Some(p)) => Some((l.clone(), p.clone())),
        _ => None,
    };
    entries
        .iter()
        .find(|e| e.0.as_deref() == Some(host))
        .and_then(pick)
        .or_else(|| entries.iter().find(|e| e.0.is_none()).and_then(pick))
}

fn unreachable(e: ureq::Error) -> RemoteError {
    RemoteError::Unreachable(match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Io(e) => e.to_string(),
        e => e.to_string(),
    })
}

fn status_error(code: u16) -> RemoteError {
    let reason = match code {
        401 => "Unauthorized",
        403 => "Forbidden",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    RemoteError::Status(code, reason.to_string())
}

impl Remote for HttpRemote {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let mut req = self.agent.get(self.url(path));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req.call().map_err(unreachable)?;
        match resp.status().as_u16() {
            200 => resp
                .body_mut()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()
                .map(Some)
                .map_err(unreachable),
            404 => Ok(None),
            c => Err(status_error(c)),
        }
    }

    fn head(&self, path: &str) -> Result<bool, RemoteError> {
        let mut req = self.agent.head(self.url(path));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.call().map_err(unreachable)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            c => Err(status_error(c)),
        }
    }

    fn put(&self, path: &str, body: &[u8]) -> Result<(), RemoteError> {
        let mut req = self.agent.put(self.url(path));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let resp = req.send(body).map_err(unreachable)?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            c => Err(status_error(c)),
        }
    }

    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn url(&self) -> Option<String> {
        Some(self.base.clone())
    }
}

/// The SLURM executor for this run, unless `--executor local`. `None` also when no stage asks
/// for SLURM. `remote` is the run's remote cache: the cache transport needs one with writes
/// on, and its absence is a usage error naming the config file.
pub fn slurm(
    cfg: &UserConfig,
    executor_local: bool,
    pipeline: &engine::spec::Pipeline,
    cache_dir: &Path,
    remote: Option<&RemoteCache>,
) -> Result<Option<engine::exec::slurm::Slurm>> {
    use engine::exec::slurm::{Executor, Settings, Slurm, Transport};
    let wanted = pipeline
        .placement
        .values()
        .any(|p| p.executor == Executor::Slurm);
    // Saved jobs of an earlier run are looked at even when no stage asks for SLURM any more,
    // so that they can be cancelled.
    let saved = cache_dir.join("slurm").join("jobs.json").is_file();
    if executor_local || !(wanted || saved) {
        return Ok(None);
    }
    let c = cfg.slurm.as_ref();
    let d = Settings::default();
    let secs = |v: Option<f64>, dflt: Duration| {
        v.filter(|s| s.is_finite() && *s > 0.0)
            .map_or(dflt, Duration::from_secs_f64)
    };
    let settings = Settings {
        partition: c.and_then(|c| c.partition.clone()),
        account: c.and_then(|c| c.account.clone()),
        sbatch_args: c.map(|c| c.sbatch_args.clone()).unwrap_or_default(),
        poll: secs(c.and_then(|c| c.poll_secs), d.poll),
        work_dir: c.and_then(|c| c.work_dir.clone()),
        bin_dir: c.and_then(|c| c.bin_dir.clone()),
        result_wait: secs(c.and_then(|c| c.result_wait_secs), d.result_wait),
        transport: match c.and_then(|c| c.transport) {
            Some(TransportConfig::Cache) => Transport::Cache,
            Some(TransportConfig::SharedFs) | None => Transport::SharedFs,
        },
    };
    let mut s = Slurm::new(settings, cache_dir);
    s.on_note = Some(Box::new(|m| eprintln!("note: {m}")));
    if !s.available() {
        if wanted {
            eprintln!(
                "warning: stages marked `executor: slurm` run locally: sbatch is not on PATH (set slurm.bin_dir in {}, or pass --executor local to silence this)",
                config_path().map_or("the user config".into(), |p| p.display().to_string())
            );
        }
        return Ok(None);
    }
    if wanted && s.settings.transport == Transport::Cache {
        let why = match remote {
            None => Some(
                "no remote cache is configured (set remote.url in the user config, ARTIFACT_REMOTE or --remote; --no-remote turns it off)",
            ),
            Some(r) if !r.write => Some(
                "the remote cache's writes are off (set remote.write: true in the user config, ARTIFACT_REMOTE_WRITE=1 or --remote-write)",
            ),
            Some(r) if r.url().is_none() => Some("the remote cache is not an HTTP server"),
            Some(_) => None,
        };
        if let Some(why) = why {
            return Err(Error::Usage {
                file: config_path(),
                message: format!(
                    "slurm.transport is `cache`, which needs a remote cache the jobs can write to, but {why}; the jobs authenticate with ARTIFACT_REMOTE_TOKEN from their environment or ~/.netrc on the node (or pass --executor local)"
                ),
            });
        }
    }
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_machine_then_default() {
        let t = "machine other login a password b\nmachine 127.0.0.1\n  login ci\n  password s3cret\ndefault login anon password x\n";
        assert_eq!(
            netrc_lookup(t, "127.0.0.1"),
            Some(("ci".into(), "s3cret".into()))
        );
        assert_eq!(
            netrc_lookup(t, "elsewhere"),
            Some(("anon".into(), "x".into()))
        );
        assert_eq!(netrc_lookup("machine h login only", "h"), None);
    }

    #[test]
    fn urls_with_credentials_or_other_schemes_are_refused() {
        let t = Duration::from_secs(1);
        assert!(HttpRemote::new("ftp://x/", t).is_err());
        assert!(HttpRemote::new("http://u:p@host/", t).is_err());
        assert!(HttpRemote::new("http:///", t).is_err());
        let r = HttpRemote::new("http://host:8080/cache/", t).expect("valid");
        assert_eq!(r.url("cas/ab"), "http://host:8080/cache/cas/ab");
    }
}
