//! The cache transport of the SLURM executor (`slurm.transport: cache` in the user config), for
//! clusters whose compute nodes do not see the project folder: the remote cache carries the
//! files both ways.
//!
//! Before submitting, the runner uploads every input of the stage's key to `cas/` (they may
//! exist only on this machine). The job is a generated shell script that needs only `curl` and
//! `sha256sum` on the node (not `artifact`): it downloads each input into a node-local scratch
//! folder and checks its SHA-256, runs the command there with the fixed environment of a local
//! run, and only when the command exited 0 and wrote every declared output, uploads the outputs
//! to `cas/` and then, last, the manifest to `ac/<key>`: byte for byte the manifest a local run
//! would publish. When `squeue` says COMPLETED, the runner reads that manifest (with backoff,
//! like the shared-file-system result file), downloads the blobs through the remote-cache code,
//! which re-hashes them (the server is never trusted), and puts the outputs in place like a
//! remote-cache hit. A failed job uploads its stderr to `ac/<log key>`, a name derived from the
//! stage's key and its job folder that only this job uses; the runner shows its end.
//!
//! Credentials never enter the script or any project file: the script reads
//! `ARTIFACT_REMOTE_TOKEN` from the job's environment (`sbatch` exports the submitter's by
//! default), else curl reads the node user's `~/.netrc`; a token reaches curl on its standard
//! input, never on a command line. The command runs under `env -i` and never sees it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{SavedJob, Slurm, sh_quote};
use crate::cache::{Cache, RestoreError};
use crate::kind::StageCtx;
use crate::remote::{MANIFEST_FORMAT, Manifest, RemoteCache, Transfer, TransferError, ac_key};

/// What a stage on the cache transport needs from the engine.
pub(crate) struct CacheJob<'a> {
    pub remote: &'a RemoteCache,
    pub cache: &'a Cache,
    /// Input path -> digest, as in the stage's cache key.
    pub inputs: &'a BTreeMap<String, String>,
    /// The cache's base URL, as the compute nodes reach it.
    pub url: String,
}

/// The `ac/` name a job's log is uploaded under: unique to the stage's key and the job folder
/// (which is unique to the submission, and saved with the job id for a reattaching run).
pub(super) fn log_key(key_digest: &str, dir: &Path) -> String {
    crate::hash::sha256_bytes(
        format!("artifact slurm job log v1\0{key_digest}\0{}", dir.display()).as_bytes(),
    )
}

/// Uploads every input of the stage's key that the server lacks, checking that each still has
/// the content its key was built from.
pub(super) fn upload_inputs(x: &CacheJob<'_>, root: &Path) -> Result<(), String> {
    if x.remote.is_down() {
        return Err(format!(
            "the remote cache {} is unreachable, and the cache transport needs it",
            x.remote.describe()
        ));
    }
    for (p, d) in x.inputs {
        x.remote
            .upload_file(p, &root.join(p), d)
            .map_err(|e| format!("cannot upload input {p} to the remote cache for the job: {e}"))?;
    }
    Ok(())
}

/// The manifest [`RemoteCache::publish`] would write for these outputs, as a shell command
/// printing it with each output's digest taken from the variable `h<N>` (N: the output's
/// position in `outputs`).
fn manifest_printf(stage: &str, key_digest: &str, outputs: &[String]) -> String {
    // Each digest is a placeholder no path can contain (NULs, which serde writes as \u0000);
    // with its quotes, the placeholder's text cannot occur inside any JSON string either.
    let m = Manifest {
        format: MANIFEST_FORMAT,
        tool_version: crate::TOOL_VERSION.to_string(),
        stage: stage.to_string(),
        key: key_digest.to_string(),
        outputs: outputs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), format!("\0{i}\0")))
            .collect(),
    };
    let text = serde_json::to_string_pretty(&m).expect("a manifest serializes");
    let order: BTreeMap<&String, usize> = outputs.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let mut args = Vec::new();
    let mut rest = text.as_str();
    // The outputs appear in the JSON in path order (a BTreeMap).
    for i in order.values() {
        let inner = format!("\\u0000{i}\\u0000");
        let at = rest
            .find(&format!("\"{inner}\""))
            .expect("each placeholder is in the manifest");
        args.push(sh_quote(&rest[..=at]));
        args.push(format!("\"$h{i}\""));
        rest = &rest[at + 1 + inner.len()..];
    }
    args.push(sh_quote(rest));
    format!("printf '%s' {}", args.join(" "))
}

/// The batch script of a stage on the cache transport (see the module docs).
pub(super) fn script(
    ctx: &StageCtx<'_>,
    x: &CacheJob<'_>,
    run: &str,
    env: &[String],
    log: &str,
) -> String {
    let stage = ctx.stage;
    let q = |s: &str| sh_quote(s);
    let mut get = String::new();
    for (p, d) in x.inputs {
        get.push_str(&format!("get {} {}\n", q(d), q(p)));
    }
    let outputs: Vec<String> = stage.outputs.iter().map(|o| o.path.clone()).collect();
    let dirs: BTreeSet<&str> = outputs
        .iter()
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
        .collect();
    let mkdirs: String = dirs
        .iter()
        .map(|d| {
            format!(
                "mkdir -p \"$W\"/{} || die \"cannot create folder {}\"\n",
                q(d),
                d
            )
        })
        .collect();
    let pass: String = env
        .iter()
        .map(|v| format!(" ${{{v}+\"{v}=${v}\"}}"))
        .collect();
    let mut check = String::new();
    let mut put = String::new();
    for (i, p) in outputs.iter().enumerate() {
        check.push_str(&format!(
            "[ -f \"$W\"/{qp} ] || die {msg}\n",
            qp = q(p),
            msg = q(&format!(
                "the command did not write its declared output {p}"
            ))
        ));
        put.push_str(&format!(
            "h{i}=$(hash_of \"$W\"/{qp}); put {qp} \"$h{i}\"\n",
            qp = q(p)
        ));
    }
    let ac = ac_key(ctx.key_digest);
    format!(
        r#"#!/bin/sh
# Generated by artifact for stage {name} (SLURM cache transport): fetch the inputs from the
# remote cache and check their SHA-256, run the command in node-local scratch, then publish the
# outputs to cas/ and the manifest to ac/ last. Needs curl and sha256sum. Credentials:
# ARTIFACT_REMOTE_TOKEN from the job's environment, else ~/.netrc; never in this file.
U={url}
T=$(mktemp -d "${{TMPDIR:-/tmp}}/artifact-job.XXXXXX") || exit 125
exec 2>"$T/log"
W="$T/work"
cx() {{  # curl with the credentials on its stdin, never on its command line
  if [ -n "${{ARTIFACT_REMOTE_TOKEN:-}}" ]; then
    t=$(printf '%s' "$ARTIFACT_REMOTE_TOKEN" | sed 's/[\\"]/\\&/g')
    case "$ARTIFACT_REMOTE_TOKEN" in
      *:*) printf 'user = "%s"\n' "$t" ;;
      *) printf 'header = "Authorization: Bearer %s"\n' "$t" ;;
    esac | curl -K - -fsS --retry 3 --connect-timeout 10 --speed-limit 1 --speed-time 60 "$@"
  else
    curl --netrc-optional -fsS --retry 3 --connect-timeout 10 --speed-limit 1 --speed-time 60 "$@"
  fi
}}
finish() {{  # a failed job publishes only its log, under a name no result uses
  if [ "$1" != 0 ]; then cx -o /dev/null -T "$T/log" "$U/ac/{log}" 2>/dev/null; fi
  cd / && rm -rf "$T"
  exit "$1"
}}
die() {{ echo "artifact job on $(uname -n): $*" >&2; finish 1; }}
trap 'finish 143' TERM
trap 'finish 130' INT
hash_of() {{ sha256sum < "$1" | cut -d' ' -f1; }}
get() {{  # get DIGEST PATH: one input, checked against its digest
  case "$2" in */*) mkdir -p "$W/${{2%/*}}" || die "cannot create the folder of input $2";; esac
  cx -o "$W/$2" "$U/cas/$1" || die "cannot download input $2 ($U/cas/$1)"
  [ "$(hash_of "$W/$2")" = "$1" ] || die "input $2 from $U/cas/$1 does not hash to its name (damaged or tampered with)"
}}
put() {{  # put PATH DIGEST: one output, unless the server has it
  [ "${{#2}}" = 64 ] || die "cannot hash output $1"
  cx -I -o /dev/null "$U/cas/$2" 2>/dev/null || cx -o /dev/null -T "$W/$1" "$U/cas/$2" || die "cannot upload output $1 to $U/cas/$2"
}}
for t in curl sha256sum; do command -v "$t" >/dev/null || die "$t is not installed"; done
mkdir "$W" || die "cannot create a scratch folder in $T"
{get}{mkdirs}cd "$W" || die "cannot enter $W"
env -i PATH={path} TZ=UTC LC_ALL=C SOURCE_DATE_EPOCH={sde}{pass} /bin/sh -c {run} </dev/null >/dev/null
rc=$?
cd "$T" || die "cannot leave $W"
[ "$rc" = 0 ] || {{ echo "artifact job on $(uname -n): the command failed with exit code $rc" >&2; finish "$rc"; }}
{check}{put}{manifest} > "$T/manifest" || die "cannot write the manifest"
cx -o /dev/null -T "$T/manifest" "$U/ac/{ac}" || die "cannot upload the manifest to $U/ac/{ac}"
finish 0
"#,
        name = stage.name,
        url = q(x.url.trim_end_matches('/')),
        path = super::super::command::FIXED_PATH,
        sde = ctx.source_date_epoch(),
        run = q(run),
        manifest = manifest_printf(&stage.name, ctx.key_digest, &outputs),
    )
}

impl Slurm {
    /// After a job of the cache transport COMPLETED (or left the queue): its manifest, read
    /// with backoff for [`super::Settings::result_wait`], and its outputs downloaded, verified
    /// and put in place under `ctx.out_root`. `missing` says what happened when there is none.
    pub(super) fn collect(
        &self,
        job: &SavedJob,
        ctx: &StageCtx<'_>,
        x: &CacheJob<'_>,
        missing: &str,
    ) -> Result<(), String> {
        let stage = &ctx.stage.name;
        let declared: BTreeSet<String> = ctx.stage.outputs.iter().map(|o| o.path.clone()).collect();
        let until = Instant::now() + self.settings.result_wait;
        let mut delay = Duration::from_millis(20);
        let mut last_error = None;
        let log = format!("ac/{}", log_key(&job.key_digest, &job.dir));
        let manifest = loop {
            match x.remote.lookup(ctx.key_digest, &declared) {
                Ok(Some(m)) => break m,
                // A job that published its log has failed: no manifest will come.
                Ok(None) if matches!(x.remote.get_object(&log), Ok(Some(_))) => {
                    return Err(self.cache_failure(job, stage, x, missing));
                }
                Ok(None) => {}
                Err(e @ TransferError::Remote { .. }) => last_error = Some(e.to_string()),
                Err(e) => {
                    return Err(self.cache_failure(
                        job,
                        stage,
                        x,
                        &format!(
                            "SLURM job {} published a manifest that cannot be used: {e}",
                            job.id
                        ),
                    ));
                }
            }
            if Instant::now() >= until || ctx.cancelled() {
                let mut what = missing.to_string();
                if let Some(e) = last_error {
                    what.push_str(&format!(" (last error: {e})"));
                }
                return Err(self.cache_failure(job, stage, x, &what));
            }
            std::thread::sleep(delay.min(until.saturating_duration_since(Instant::now())));
            delay = (delay * 2).min(Duration::from_secs(2));
        };
        let mut t = Transfer::default();
        let proj = crate::fsutil::Confined::new(ctx.out_root);
        // Every blob is verified before any output is put in place.
        for (p, d) in &manifest.outputs {
            x.remote.download(x.cache, d, &mut t).map_err(|e| {
                format!(
                    "output {p} of SLURM job {} cannot be used: {e}; no output was put in place",
                    job.id
                )
            })?;
        }
        for (p, d) in &manifest.outputs {
            x.cache.restore_to(d, &proj, p).map_err(|e| {
                let why = match e {
                    RestoreError::Io(e) => e.to_string(),
                    // Verified a moment ago: only a concurrent `gc` or a failing disk.
                    RestoreError::Missing | RestoreError::Corrupt => {
                        format!("its copy in the local cache ({d}) is gone or damaged")
                    }
                };
                format!(
                    "cannot put output {p} of SLURM job {} in place: {why}",
                    job.id
                )
            })?;
        }
        Ok(())
    }

    /// [`Slurm::failure`] with the job's log, fetched from the remote cache (the job's own
    /// folder is on the node, and gone).
    pub(super) fn cache_failure(
        &self,
        job: &SavedJob,
        stage: &str,
        x: &CacheJob<'_>,
        what: &str,
    ) -> String {
        let path = format!("ac/{}", log_key(&job.key_digest, &job.dir));
        match x.remote.get_object(&path) {
            Ok(Some(log)) => {
                let _ = crate::fsutil::write_atomic(&job.dir.join("stderr"), &log);
                self.failure(job, stage, what)
            }
            Ok(None) => format!(
                "{what}; it published no log ({}/{path}): it did not start, or could not reach the cache from the node",
                x.url.trim_end_matches('/')
            ),
            Err(e) => format!("{what}; its log {path} could not be read: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_writes_the_manifest_publish_writes_byte_for_byte() {
        let outputs = vec![
            "z/last.txt".to_string(),
            "a 'quoted' $path\\u00000\\u0000.txt".to_string(),
            "\"\\u00001\\u0000\"".to_string(),
            "mid\"dle.csv".to_string(),
        ];
        let digests: Vec<String> = (0..4)
            .map(|i| crate::hash::sha256_bytes(format!("{i}").as_bytes()))
            .collect();
        let key = "k".repeat(64);
        let vars: String = digests
            .iter()
            .enumerate()
            .map(|(i, d)| format!("h{i}={d}\n"))
            .collect();
        let script = format!("{vars}{}", manifest_printf("st'age", &key, &outputs));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = Manifest {
            format: MANIFEST_FORMAT,
            tool_version: crate::TOOL_VERSION.to_string(),
            stage: "st'age".into(),
            key,
            outputs: outputs.iter().cloned().zip(digests).collect(),
        };
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            serde_json::to_string_pretty(&want).unwrap()
        );
    }

    #[test]
    fn log_names_differ_per_job_folder() {
        let k = "0".repeat(64);
        let a = log_key(&k, Path::new("/p/.artifact/slurm/jobs/.s.tmp.1.0"));
        let b = log_key(&k, Path::new("/p/.artifact/slurm/jobs/.s.tmp.1.1"));
        assert_ne!(a, b);
        assert_ne!(a, ac_key(&k));
        assert_eq!(a.len(), 64);
    }
}
