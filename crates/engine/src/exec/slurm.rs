//! The SLURM executor for `command` stages marked `executor: slurm` in `pipeline.yaml`.
//!
//! A stage becomes one batch job: `sbatch --parsable` of a generated wrapper script, with a job
//! name unique to the run and the stage name as the comment, in a job folder created first. The
//! wrapper runs the command in the project root (a shared file system) with the same fixed
//! environment as a local run, then writes a result file atomically (write, then `mv`): the
//! command's exit code and the SHA-256 of every declared output.
//!
//! Status comes from one batched `squeue --states=all` per poll interval for every job of the
//! run; `sbatch --wait` (exits 0 for a job cancelled while pending) and `sacct` (needs the
//! accounting daemon) are not used. A job succeeded when `squeue` says COMPLETED *and* its
//! result file says exit 0; a job that left `squeue` without a result file failed. The result
//! file is read with backoff, as NFS may show it late.
//!
//! Ctrl-C cancels every job of the run with one `scancel`. Job ids are saved in
//! `.artifact/slurm/jobs.json` as they are submitted, so that a run started after a runner
//! died reattaches to a job still running the same stage with the same key, cancels one running
//! an older key before submitting, and cancels the leftovers of stages it did not run. No stage
//! is ever running twice at once.
//!
//! Executor hints and resources are not in the cache key: where a command runs must not change
//! its output bytes (the determinism audit checks exactly that).
//!
//! Without a shared file system ([`Transport::Cache`]), the remote cache carries inputs and
//! outputs instead, and a manifest replaces the result file: see `slurm_cache.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::diag::Loc;
use crate::kind::StageCtx;
use crate::spec::{Node, Value};

/// Where a stage asks to run (`executor:` in `pipeline.yaml`; default local).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Executor {
    #[default]
    Local,
    Slurm,
}

/// `resources:` of a stage, passed to `sbatch`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpus: Option<u32>,
    /// As SLURM reads it: MiB, or a number with a K/M/G/T suffix.
    pub mem: Option<String>,
    /// As SLURM reads it: minutes, `MM:SS`, `HH:MM:SS`, `D-HH[:MM[:SS]]`.
    pub time: Option<String>,
    pub gpus: Option<u32>,
}

/// A stage's executor hint and resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub executor: Executor,
    pub resources: Resources,
}

/// Parses `executor:`; `Err` is the message for its location (crate-internal: the spec
/// parser turns it into a located problem).
pub(crate) fn parse_executor(node: &Node) -> Result<Executor, String> {
    match node.as_str() {
        Some("local") => Ok(Executor::Local),
        Some("slurm") => Ok(Executor::Slurm),
        _ => Err(format!(
            "unknown executor {} (expected `local` or `slurm`)",
            node.show()
        )),
    }
}

/// Parses `resources:`, returning every problem with its location.
pub fn parse_resources(node: &Node) -> (Resources, Vec<(Loc, String)>) {
    let mut r = Resources::default();
    let mut errs = Vec::new();
    let Some(map) = node.as_map() else {
        errs.push((
            node.loc,
            format!(
                "`resources` must be a mapping with keys cpus, mem, time, gpus, found {}",
                node.type_name()
            ),
        ));
        return (r, errs);
    };
    let count = |v: &Node, min: i64| match v.value {
        Value::Int(n) if n >= min && n <= i64::from(u32::MAX) => Ok(n as u32),
        _ => Err(format!(
            "expected an integer of at least {min}, found {}",
            v.show()
        )),
    };
    for (k, v) in map {
        let res = match k.as_str() {
            Some("cpus") => count(v, 1).map(|n| r.cpus = Some(n)),
            Some("gpus") => count(v, 0).map(|n| r.gpus = Some(n)),
            Some("mem") => match &v.value {
                Value::Int(n) if *n > 0 => Ok(n.to_string()),
                Value::Str(s) if valid_mem(s) => Ok(s.clone()),
                _ => Err(format!(
                    "expected MiB or a size like 4G (K, M, G, T), found {}",
                    v.show()
                )),
            }
            .map(|m| r.mem = Some(m)),
            Some("time") => match &v.value {
                Value::Int(n) if *n > 0 => Ok(n.to_string()),
                Value::Str(s) if valid_time(s) => Ok(s.clone()),
                _ => Err(format!(
                    "expected minutes or a time like 1:30:00 or 2-00:00:00, found {}",
                    v.show()
                )),
            }
            .map(|t| r.time = Some(t)),
            _ => {
                errs.push((
                    k.loc,
                    format!(
                        "unknown key {} in `resources` (expected one of: cpus, mem, time, gpus)",
                        k.show()
                    ),
                ));
                continue;
            }
        };
        if let Err(e) = res {
            errs.push((
                v.loc,
                format!("`resources.{}`: {e}", k.show().trim_matches('"')),
            ));
        }
    }
    (r, errs)
}

fn valid_mem(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T']);
    !digits.is_empty()
        && digits.len() + 1 >= s.len()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
}

fn valid_time(s: &str) -> bool {
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    let num = |p: &str| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = rest.split(':').collect();
    days.is_none_or(num) && parts.len() <= 3 && parts.iter().all(|p| num(p))
}

#[path = "slurm_cache.rs"]
mod cache_job;
pub(crate) use cache_job::CacheJob;

/// How a job's files move between the runner and the compute node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// The project folder is visible from the compute nodes: the job runs in it.
    #[default]
    SharedFs,
    /// No shared file system: the job pulls its inputs from the remote cache, runs in
    /// node-local scratch and pushes its outputs and manifest; the runner fetches them. Needs a
    /// remote cache with writes on.
    Cache,
}

/// Site settings (from the user's config file, never from `pipeline.yaml`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Extra `sbatch` arguments, e.g. `--qos=normal`.
    pub sbatch_args: Vec<String>,
    /// How often `squeue` is asked (one call for all jobs of the run).
    pub poll: Duration,
    /// Where job folders go; must be visible from the compute nodes. Default:
    /// `.artifact/slurm/jobs` in the project.
    pub work_dir: Option<PathBuf>,
    /// Folder of `sbatch`, `squeue` and `scancel`; default: found on `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// How long to wait for a finished job's result file (or, on the cache transport, its
    /// manifest) to appear (NFS attribute caching).
    pub result_wait: Duration,
    pub transport: Transport,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            partition: None,
            account: None,
            sbatch_args: Vec::new(),
            poll: Duration::from_secs(5),
            work_dir: None,
            bin_dir: None,
            result_wait: Duration::from_secs(30),
            transport: Transport::SharedFs,
        }
    }
}

/// A job saved in `.artifact/slurm/jobs.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedJob {
    pub id: String,
    pub key_digest: String,
    pub dir: PathBuf,
}

/// The job state `squeue` reports, or that the job left it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum JobState {
    /// Still queued or running (PENDING, RUNNING, COMPLETING, ...).
    Active(String),
    Completed,
    /// A final state other than COMPLETED.
    Ended(String),
    /// `squeue` does not know the job (any more).
    Vanished,
}

fn classify(state: &str) -> JobState {
    match state {
        "COMPLETED" => JobState::Completed,
        "FAILED" | "CANCELLED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "BOOT_FAIL"
        | "DEADLINE" | "PREEMPTED" | "SPECIAL_EXIT" | "REVOKED" => {
            JobState::Ended(state.to_string())
        }
        s => JobState::Active(s.to_string()),
    }
}

/// How many polls in a row `squeue` may fail before the stages waiting on it fail.
const SQUEUE_FAILURES: u32 = 10;

#[derive(Default)]
struct Poll {
    last: Option<Instant>,
    /// Job id -> state at the last poll (jobs absent from the answer are not listed).
    states: BTreeMap<String, String>,
    /// The ids the last poll asked about.
    asked: BTreeSet<String>,
    failures: u32,
    last_error: String,
}

/// The SLURM side of one run. Shared by the worker threads.
pub struct Slurm {
    pub settings: Settings,
    /// The job name of this run's jobs: `artifact-<pid>-<start time>`.
    run_name: String,
    /// `.artifact/` of the project.
    cache_dir: PathBuf,
    /// Jobs of this run (submitted or reattached) that have not ended: id -> stage.
    active: Mutex<BTreeMap<String, String>>,
    poll: Mutex<Poll>,
    /// Saved jobs: stage -> job (mirrors `jobs.json`).
    saved: Mutex<BTreeMap<String, SavedJob>>,
    cancelled: AtomicBool,
    /// Called with each note for the user (e.g. a job reattached to); the CLI prints it.
    pub on_note: Option<crate::Notify>,
}

impl Slurm {
    /// The executor for the project whose cache folder is `cache_dir`, loading the jobs a
    /// previous run saved.
    pub fn new(settings: Settings, cache_dir: &Path) -> Slurm {
        let saved = std::fs::read(cache_dir.join("slurm").join("jobs.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Slurm {
            settings,
            run_name: format!("artifact-{}-{t}", std::process::id()),
            cache_dir: cache_dir.to_path_buf(),
            active: Mutex::new(BTreeMap::new()),
            poll: Mutex::new(Poll::default()),
            saved: Mutex::new(saved),
            cancelled: AtomicBool::new(false),
            on_note: None,
        }
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(match &self.settings.bin_dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        });
        c.stdin(Stdio::null());
        c
    }

    /// Whether `sbatch` can be started at all (else `executor: slurm` stages run locally).
    pub fn available(&self) -> bool {
        match &self.settings.bin_dir {
            Some(d) => d.join("sbatch").is_file(),
            None => std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("sbatch").is_file())),
        }
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save_jobs(&self, saved: &BTreeMap<String, SavedJob>) {
        let path = self.cache_dir.join("slurm").join("jobs.json");
        if let Ok(b) = serde_json::to_vec_pretty(saved) {
            let _ = crate::fsutil::write_atomic(&path, &b);
        }
    }

    /// One batched `squeue` for `ids` (plus every active job of the run), unless the last one
    /// is younger than the poll interval. Returns each job's state.
    fn states(&self, ids: &[String], force: bool) -> Result<BTreeMap<String, JobState>, String> {
        let mut p = Self::lock(&self.poll);
        let due = p.last.is_none_or(|t| t.elapsed() >= self.settings.poll);
        if force || due {
            let mut all: BTreeSet<String> = Self::lock(&self.active).keys().cloned().collect();
            all.extend(ids.iter().cloned());
            let list: Vec<String> = all.into_iter().collect();
            let out = self
                .tool("squeue")
                .args(["-h", "--states=all", "-o", "%i %T", "-j", &list.join(",")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output();
            p.last = Some(Instant::now());
            p.asked = list.into_iter().collect();
            match out {
                Ok(o) if o.status.success() => {
                    p.failures = 0;
                    p.states = parse_squeue(&String::from_utf8_lossy(&o.stdout));
                }
                // Every id unknown to the controller (purged after MinJobAge): all vanished.
                Ok(o) if String::from_utf8_lossy(&o.stderr).contains("Invalid job id") => {
                    p.failures = 0;
                    p.states.clear();
                }
                Ok(o) => {
                    p.failures += 1;
                    p.last_error = format!(
                        "squeue failed ({}): {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                }
                Err(e) => {
                    p.failures += 1;
                    p.last_error = format!("cannot run squeue: {e}");
                }
            }
        }
        if p.failures > 0 {
            if p.failures >= SQUEUE_FAILURES {
                return Err(format!(
                    "{} (failed {} polls in a row)",
                    p.last_error, p.failures
                ));
            }
            // Unknown this interval: report active, ask again later.
            return Ok(ids
                .iter()
                .map(|i| (i.clone(), JobState::Active("UNKNOWN".into())))
                .collect());
        }
        Ok(ids
            .iter()
            .map(|i| {
                // A job submitted after the last poll is not in its answer: not vanished, only
                // not asked about yet.
                let st = match p.states.get(i) {
                    Some(s) => classify(s),
                    None if p.asked.contains(i) => JobState::Vanished,
                    None => JobState::Active("SUBMITTED".into()),
                };
                (i.clone(), st)
            })
            .collect())
    }

    fn state(&self, id: &str, force: bool) -> Result<JobState, String> {
        self.states(&[id.to_string()], force)
            .map(|m| m.get(id).cloned().unwrap_or(JobState::Vanished))
    }

    /// Cancels every active job of the run with one `scancel` (once).
    pub fn cancel_all(&self) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let ids: Vec<String> = Self::lock(&self.active).keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let _ = self
            .tool("scancel")
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Cancels jobs saved by earlier runs for stages this run did not claim, if they are still
    /// queued or running (call at the end of a run).
    pub fn cancel_leftovers(&self) -> Vec<String> {
        let saved = Self::lock(&self.saved).clone();
        let ids: Vec<String> = saved.values().map(|j| j.id.clone()).collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let Ok(states) = self.states(&ids, true) else {
            return Vec::new();
        };
        let mut msgs = Vec::new();
        let mut cancel = Vec::new();
        for (stage, j) in &saved {
            if matches!(states.get(&j.id), Some(JobState::Active(_))) {
                cancel.push(j.id.clone());
                msgs.push(format!(
                    "cancelled SLURM job {} left by an earlier run for stage {stage}",
                    j.id
                ));
            }
        }
        if !cancel.is_empty() {
            let _ = self.tool("scancel").args(&cancel).status();
        }
        let mut s = Self::lock(&self.saved);
        s.clear();
        self.save_jobs(&s);
        msgs
    }

    /// Runs a `command` stage (`run`, `env` of its `with:`) as a batch job and waits for it;
    /// `xport` for the cache transport. `Err` is the stage's failure message (crate-internal:
    /// it becomes the stage's status).
    pub(crate) fn run(
        &self,
        ctx: &StageCtx<'_>,
        run: &str,
        env: &[String],
        res: &Resources,
        xport: Option<&CacheJob<'_>>,
    ) -> Result<(), String> {
        let stage = ctx.stage.name.as_str();
        for v in env {
            let ok = v.bytes().enumerate().all(|(k, b)| {
                b == b'_' || b.is_ascii_alphabetic() || (k > 0 && b.is_ascii_digit())
            });
            if !ok {
                return Err(format!(
                    "variable name {v:?} in `env` cannot be passed to a SLURM job"
                ));
            }
        }
        // A job of this stage from an earlier run: reattach if it runs this very key, else
        // make sure it is gone before a new one starts.
        let old = Self::lock(&self.saved).get(stage).cloned();
        let mut attached = None;
        if let Some(old) = old {
            match self.state(&old.id, true)? {
                JobState::Active(_) if old.key_digest == ctx.key_digest => {
                    if let Some(f) = &self.on_note {
                        f(&format!(
                            "stage {stage}: reattached to SLURM job {} started by an earlier run",
                            old.id
                        ));
                    }
                    attached = Some(old);
                }
                JobState::Active(_) => {
                    let _ = self.tool("scancel").arg(&old.id).status();
                    self.wait_gone(&old.id);
                    self.forget(stage, &old.id);
                }
                _ => self.forget(stage, &old.id),
            }
        }
        let job = match attached {
            Some(j) => j,
            None => {
                if let Some(x) = xport {
                    cache_job::upload_inputs(x, ctx.root)?;
                }
                self.submit(ctx, run, env, res, xport)?
            }
        };
        Self::lock(&self.active).insert(job.id.clone(), stage.to_string());
        let outcome = self.wait(ctx, &job, xport);
        Self::lock(&self.active).remove(&job.id);
        self.forget(stage, &job.id);
        if outcome.is_ok() {
            let _ = std::fs::remove_dir_all(&job.dir);
        }
        outcome
    }

    fn forget(&self, stage: &str, id: &str) {
        let mut s = Self::lock(&self.saved);
        if s.get(stage).is_some_and(|j| j.id == id) {
            s.remove(stage);
            self.save_jobs(&s);
        }
    }

    fn submit(
        &self,
        ctx: &StageCtx<'_>,
        run: &str,
        env: &[String],
        res: &Resources,
        xport: Option<&CacheJob<'_>>,
    ) -> Result<SavedJob, String> {
        let stage = ctx.stage.name.as_str();
        let base = self
            .settings
            .work_dir
            .clone()
            .unwrap_or_else(|| self.cache_dir.join("slurm").join("jobs"));
        let dir = crate::fsutil::temp_sibling(&base.join(stage));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the job folder {}: {e}", dir.display()))?;
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let root = std::path::absolute(ctx.root).unwrap_or_else(|_| ctx.root.to_path_buf());
        // On the cache transport, the node sees neither the project nor the job folder: the
        // job starts in `/`, and its output goes to its log (uploaded if it fails).
        let (script, chdir, stdout, stderr) = match xport {
            None => {
                std::fs::write(dir.join("command"), run)
                    .map_err(|e| format!("cannot write the job's command: {e}"))?;
                (
                    wrapper(&root, &dir, ctx.source_date_epoch(), env, ctx.stage),
                    root.clone(),
                    dir.join("stdout"),
                    dir.join("stderr"),
                )
            }
            Some(x) => {
                let log = cache_job::log_key(ctx.key_digest, &dir);
                (
                    cache_job::script(ctx, x, run, env, &log),
                    PathBuf::from("/"),
                    PathBuf::from("/dev/null"),
                    PathBuf::from("/dev/null"),
                )
            }
        };
        std::fs::write(dir.join("job.sh"), script)
            .map_err(|e| format!("cannot write the job script: {e}"))?;
        let mut cmd = self.tool("sbatch");
        cmd.arg("--parsable")
            .arg(format!("--job-name={}", self.run_name))
            .arg(format!("--comment={stage}"))
            .arg(format!("--chdir={}", chdir.display()))
            .arg(format!("--output={}", stdout.display()))
            .arg(format!("--error={}", stderr.display()));
        if let Some(p) = &self.settings.partition {
            cmd.arg(format!("--partition={p}"));
        }
        if let Some(a) = &self.settings.account {
            cmd.arg(format!("--account={a}"));
        }
        if let Some(n) = res.cpus {
            cmd.arg(format!("--cpus-per-task={n}"));
        }
        if let Some(m) = &res.mem {
            cmd.arg(format!("--mem={m}"));
        }
        if let Some(t) = &res.time {
            cmd.arg(format!("--time={t}"));
        }
        if let Some(g) = res.gpus.filter(|g| *g > 0) {
            cmd.arg(format!("--gpus={g}"));
        }
        cmd.args(&self.settings.sbatch_args)
            .arg(dir.join("job.sh"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run sbatch: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let id = text
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if !out.status.success() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "sbatch refused the job ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                text.trim()
            ));
        }
        let job = SavedJob {
            id,
            key_digest: ctx.key_digest.to_string(),
            dir,
        };
        let mut s = Self::lock(&self.saved);
        s.insert(stage.to_string(), job.clone());
        self.save_jobs(&s);
        Ok(job)
    }

    /// Waits (at most a minute) until `id` is no longer queued or running, after a cancel, so
    /// that it cannot write outputs once the previous ones are back.
    fn wait_gone(&self, id: &str) {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            match self.state(id, false) {
                Ok(JobState::Active(_)) => {}
                _ => return,
            }
            std::thread::sleep(self.tick());
        }
    }

    fn tick(&self) -> Duration {
        (self.settings.poll / 4).clamp(Duration::from_millis(10), Duration::from_millis(500))
    }

    fn wait(
        &self,
        ctx: &StageCtx<'_>,
        job: &SavedJob,
        xport: Option<&CacheJob<'_>>,
    ) -> Result<(), String> {
        let stage = &ctx.stage.name;
        loop {
            if ctx.cancelled() {
                self.cancel_all();
                self.wait_gone(&job.id);
                return Err("interrupted".into());
            }
            match self.state(&job.id, false)? {
                JobState::Active(_) => std::thread::sleep(self.tick()),
                JobState::Completed => {
                    let missing = match xport {
                        None => format!(
                            "SLURM job {} COMPLETED but its result file {} never appeared",
                            job.id,
                            job.dir.join("result").display()
                        ),
                        Some(x) => format!(
                            "SLURM job {} COMPLETED but its manifest never appeared on the remote cache ({}/ac/{})",
                            job.id,
                            x.url.trim_end_matches('/'),
                            crate::remote::ac_key(ctx.key_digest)
                        ),
                    };
                    return self.conclude(job, ctx, &missing, xport);
                }
                JobState::Ended(st) => {
                    if let Some(x) = xport {
                        let what = format!("SLURM job {} ended {st}", job.id);
                        return Err(self.cache_failure(job, stage, x, &what));
                    }
                    let rc = self
                        .read_result(job)
                        .map(|r| format!(" (command exit code {})", r.exit))
                        .unwrap_or_default();
                    return Err(self.failure(
                        job,
                        stage,
                        &format!("SLURM job {} ended {st}{rc}", job.id),
                    ));
                }
                JobState::Vanished => {
                    // Left the queue (MinJobAge passed, or purged): only the result file can
                    // tell how it ended.
                    let missing = format!(
                        "SLURM job {} disappeared from squeue without {}",
                        job.id,
                        match xport {
                            None => "writing its result file",
                            Some(_) => "publishing its manifest on the remote cache",
                        }
                    );
                    return self.conclude(job, ctx, &missing, xport);
                }
            }
        }
    }

    fn read_result(&self, job: &SavedJob) -> Option<JobResult> {
        std::fs::read_to_string(job.dir.join("result"))
            .ok()
            .and_then(|t| parse_result(&t))
    }

    /// How a job that left the queue (or completed) ended, from its result file: success when
    /// it says exit 0 and the outputs match, else a failure; `missing` when there is none.
    fn conclude(
        &self,
        job: &SavedJob,
        ctx: &StageCtx<'_>,
        missing: &str,
        xport: Option<&CacheJob<'_>>,
    ) -> Result<(), String> {
        if let Some(x) = xport {
            return self.collect(job, ctx, x, missing);
        }
        let stage = &ctx.stage.name;
        match self.result(job, ctx) {
            Some(r) if r.exit == 0 => check_digests(&r, ctx),
            Some(r) => Err(self.failure(
                job,
                stage,
                &format!("command failed with exit code {}", r.exit),
            )),
            None => Err(self.failure(job, stage, missing)),
        }
    }

    /// The result file, retried with backoff for [`Settings::result_wait`].
    fn result(&self, job: &SavedJob, ctx: &StageCtx<'_>) -> Option<JobResult> {
        let until = Instant::now() + self.settings.result_wait;
        let mut delay = Duration::from_millis(20);
        loop {
            if let Some(r) = self.read_result(job) {
                return Some(r);
            }
            if Instant::now() >= until || ctx.cancelled() {
                return None;
            }
            std::thread::sleep(delay.min(until.saturating_duration_since(Instant::now())));
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// The message for a failed job, with the end of its stderr, which is also copied to
    /// `.artifact/logs/STAGE.log`. The job folder is kept for inspection.
    fn failure(&self, job: &SavedJob, stage: &str, what: &str) -> String {
        let err = std::fs::read(job.dir.join("stderr")).unwrap_or_default();
        let log = self.cache_dir.join("logs").join(format!("{stage}.log"));
        let _ = crate::fsutil::write_atomic(&log, &err);
        let text = String::from_utf8_lossy(&err);
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        let mut msg = what.to_string();
        if tail.is_empty() {
            msg.push_str(" (no stderr)");
        } else {
            msg.push_str(&format!(
                "; end of its stderr (all of it in {}):\n{}",
                job.dir.join("stderr").display(),
                tail.join("\n")
            ));
        }
        msg
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        // Whatever still runs when the run ends (an interrupted run) is cancelled.
        if !Self::lock(&self.active).is_empty() {
            self.cancel_all();
        }
    }
}

fn parse_squeue(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            // Array tasks show as ID_N; the wrapper is never an array, keep the id as printed.
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// What the job wrapper wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
struct JobResult {
    exit: i32,
    /// Output path -> digest, as the job saw them.
    outputs: BTreeMap<String, String>,
}

/// `exit N` then `sha256sum` lines (`DIGEST  PATH`).
fn parse_result(text: &str) -> Option<JobResult> {
    if !text.ends_with('\n') {
        return None;
    }
    let mut lines = text.lines();
    let exit = lines.next()?.strip_prefix("exit ")?.trim().parse().ok()?;
    let mut outputs = BTreeMap::new();
    for l in lines {
        let (d, p) = l.split_once("  ")?;
        outputs.insert(p.to_string(), d.to_string());
    }
    Some(JobResult { exit, outputs })
}

/// The job saw exactly the outputs the runner now reads, or something changed them since.
fn check_digests(r: &JobResult, ctx: &StageCtx<'_>) -> Result<(), String> {
    for o in &ctx.stage.outputs {
        let Some(want) = r.outputs.get(&o.path) else {
            return Err(format!(
                "the command did not write its declared output {}",
                o.path
            ));
        };
        let got = crate::hash::sha256_file(&ctx.root.join(&o.path))
            .map_err(|e| format!("cannot read {} written by the job: {e}", o.path))?;
        if &got != want {
            return Err(format!(
                "output {} changed between the job's end and its ingestion (job saw {want}, runner reads {got})",
                o.path
            ));
        }
    }
    Ok(())
}

/// Single-quotes `s` for `/bin/sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The batch script: runs the command in the project root with the fixed environment of a
/// local run, then writes the result file atomically.
fn wrapper(
    root: &Path,
    dir: &Path,
    sde: u64,
    env: &[String],
    stage: &crate::spec::StageSpec,
) -> String {
    let j = sh_quote(&dir.display().to_string());
    let pass: String = env
        .iter()
        .map(|v| format!(" ${{{v}+\"{v}=${v}\"}}"))
        .collect();
    let outputs: String = stage
        .outputs
        .iter()
        .map(|o| format!(" {}", sh_quote(&o.path)))
        .collect();
    format!(
        r#"#!/bin/sh
# Generated by artifact for stage {name}: run the command, then publish the result file.
J={j}
cd {root} || {{ printf 'exit 126\n' > "$J/result.tmp"; mv -f "$J/result.tmp" "$J/result"; exit 126; }}
env -i PATH={path} TZ=UTC LC_ALL=C SOURCE_DATE_EPOCH={sde}{pass} /bin/sh -c "$(cat "$J/command")" </dev/null
rc=$?
{{
  printf 'exit %d\n' "$rc"
  if [ "$rc" = 0 ]; then sha256sum --{outputs} 2>/dev/null || true; fi
}} > "$J/result.tmp"
mv -f "$J/result.tmp" "$J/result"
exit "$rc"
"#,
        name = stage.name,
        root = sh_quote(&root.display().to_string()),
        path = super::command::FIXED_PATH,
    )
}

impl super::Engine<'_> {
    /// The SLURM executor and the stage's resources, when stage `i` is to run on SLURM in
    /// this run (a `command` stage marked `executor: slurm`, with SLURM in use).
    pub(crate) fn slurm_for(&self, i: usize) -> Option<(&Slurm, &Resources)> {
        let slurm = self.slurm.as_ref()?;
        let s = &self.pipeline.stages[i];
        let p = self.pipeline.placement.get(&s.name)?;
        (p.executor == Executor::Slurm && s.kind == "command").then_some((slurm, &p.resources))
    }

    /// Runs stage `i` (a `command` stage, whose cache key is `key`) through SLURM.
    pub(crate) fn run_on_slurm(
        &self,
        slurm: &Slurm,
        res: &Resources,
        ctx: &StageCtx<'_>,
        key: &crate::hash::CacheKey,
    ) -> Result<(), String> {
        use crate::kind::Kind as _;
        let p = super::command::CommandKind::params_of(ctx.stage)
            .ok_or_else(|| "the command stage's parameters did not parse".to_string())?;
        let env: Vec<String> = p.env.iter().map(|e| e.value.clone()).collect();
        let xport = match slurm.settings.transport {
            Transport::SharedFs => None,
            Transport::Cache => {
                let none = "the SLURM cache transport needs a remote cache with writes on, and this run has";
                let remote = self
                    .remote
                    .as_ref()
                    .ok_or_else(|| format!("{none} no remote cache"))?;
                if !remote.write {
                    return Err(format!("{none} writes off"));
                }
                let url = remote.url().ok_or_else(|| {
                    format!(
                        "{none} {}, which is not an HTTP server the nodes can reach",
                        remote.describe()
                    )
                })?;
                Some(CacheJob {
                    remote,
                    cache: &self.cache,
                    inputs: &key.inputs,
                    url,
                })
            }
        };
        slurm.run(ctx, &p.run.value, &env, res, xport.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_file_parses_and_a_partial_one_does_not() {
        let r = parse_result("exit 0\nabc  out/a.txt\n").expect("parses");
        assert_eq!(r.exit, 0);
        assert_eq!(r.outputs["out/a.txt"], "abc");
        assert_eq!(parse_result("exit 0\nabc  out/a.txt"), None);
        assert_eq!(parse_result("exi"), None);
        assert_eq!(parse_result("exit 3\n").map(|r| r.exit), Some(3));
    }

    #[test]
    fn time_and_mem_formats() {
        for ok in ["10", "1:00", "01:30:00", "2-00", "2-00:00:00"] {
            assert!(valid_time(ok), "{ok}");
        }
        for bad in ["", "1h", "1:2:3:4", "-1", "a-1"] {
            assert!(!valid_time(bad), "{bad}");
        }
        for ok in ["4G", "4000", "512M"] {
            assert!(valid_mem(ok), "{ok}");
        }
        for bad in ["", "G", "4GG", "0G", "4 G"] {
            assert!(!valid_mem(bad), "{bad}");
        }
    }

    #[test]
    fn squeue_lines() {
        let m = parse_squeue("12 RUNNING\n13 COMPLETED\n\n");
        assert_eq!(m["12"], "RUNNING");
        assert_eq!(classify(&m["13"]), JobState::Completed);
        assert_eq!(classify("CANCELLED"), JobState::Ended("CANCELLED".into()));
        assert_eq!(classify("PENDING"), JobState::Active("PENDING".into()));
    }
}

#[cfg(test)]
#[path = "slurm_tests.rs"]
mod state_machine;
