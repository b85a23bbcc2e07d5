//! The SLURM executor's state machine against fake `sbatch`, `squeue` and `scancel` scripts.
//!
//! The fakes keep their state in a folder: `sbatch` gives each job the next id and the
//! scenario written in `scenario`, as a list of states `squeue` reports one per call (the last
//! one repeats; `GONE` means squeue no longer lists the job). The job script runs when squeue
//! first reports a final state, as a real job would have run by then.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::*;
use crate::exec::{Engine, Options, RunEnv, StageResult, Status};
use crate::plan::Plan;
use crate::tests::Proj;

const SBATCH: &str = r#"#!/bin/sh
D=__D__
exec 9>"$D/lock"; flock 9   # two stages may submit at once
n=$(cat "$D/next" 2>/dev/null || echo 100); echo $((n+1)) > "$D/next"
for a in "$@"; do last="$a"; done
echo "$*" >> "$D/sbatch.log"
cp "$last" "$D/jobs/$n.script"
cp "$D/scenario" "$D/jobs/$n.states"
echo 0 > "$D/jobs/$n.n"
echo "$n;cluster"
"#;

const SQUEUE: &str = r#"#!/bin/sh
D=__D__
echo "$*" >> "$D/squeue.log"
ids=""
while [ $# -gt 0 ]; do [ "$1" = -j ] && ids="$2"; shift; done
for id in $(echo "$ids" | tr , ' '); do
  f="$D/jobs/$id.states"; [ -f "$f" ] || continue
  n=$(cat "$D/jobs/$id.n"); total=$(wc -l < "$f")
  i=$((n+1)); [ "$i" -gt "$total" ] && i=$total
  echo $((n+1)) > "$D/jobs/$id.n"
  st=$(sed -n "${i}p" "$f")
  case "$st" in
    COMPLETED|FAILED|GONE)
      if [ ! -f "$D/jobs/$id.ran" ] && [ -f "$D/jobs/$id.script" ]; then
        touch "$D/jobs/$id.ran"; sh "$D/jobs/$id.script" >/dev/null 2>&1
      fi;;
  esac
  [ "$st" = GONE ] || echo "$id $st"
done
"#;

const SCANCEL: &str = r#"#!/bin/sh
D=__D__
echo "$*" >> "$D/scancel.log"
for id in "$@"; do echo CANCELLED > "$D/jobs/$id.states"; echo 0 > "$D/jobs/$id.n"; done
"#;

struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new(scenario: &[&str]) -> Fakes {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::create_dir_all(d.join("jobs")).unwrap();
        for (name, text) in [("sbatch", SBATCH), ("squeue", SQUEUE), ("scancel", SCANCEL)] {
            let p = d.join("bin").join(name);
            std::fs::write(&p, text.replace("__D__", &d.display().to_string())).unwrap();
            let mut perm = std::fs::metadata(&p).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
            std::fs::set_permissions(&p, perm).unwrap();
        }
        let f = Fakes { dir };
        f.scenario(scenario);
        f
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn scenario(&self, states: &[&str]) {
        std::fs::write(self.path().join("scenario"), states.join("\n") + "\n").unwrap();
    }
    fn lines(&self, log: &str) -> Vec<String> {
        std::fs::read_to_string(self.path().join(log))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }
    fn settings(&self) -> Settings {
        Settings {
            bin_dir: Some(self.path().join("bin")),
            poll: Duration::from_millis(30),
            result_wait: Duration::from_millis(600),
            ..Settings::default()
        }
    }
}

const ONE: &str = r#"version: 1
stages:
  job:
    kind: command
    executor: slurm
    resources: { cpus: 2, mem: 1G, time: "10:00" }
    inputs: [in.txt]
    outputs: [out.txt]
    with: { run: "tr a-z A-Z < in.txt > out.txt" }
"#;

fn run_slurm(
    p: &Proj,
    f: &Fakes,
    jobs: usize,
    interrupt_after: Option<Duration>,
) -> Vec<StageResult> {
    let pipeline = p.pipeline();
    let plan = Plan::new(&pipeline).unwrap();
    let cancel = AtomicBool::new(false);
    let mut engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
    engine.slurm = Some(Slurm::new(f.settings(), &engine.cache.dir));
    let opts = Options { jobs, force: false };
    std::thread::scope(|s| {
        if let Some(after) = interrupt_after {
            let c = &cancel;
            s.spawn(move || {
                std::thread::sleep(after);
                c.store(true, Ordering::SeqCst);
            });
        }
        engine.run(&[], &opts, &mut |_| {})
    })
}

fn proj() -> Proj {
    Proj::new(ONE, &[("in.txt", "hello\n")])
}

#[test]
fn pending_running_completed_ingests_the_outputs() {
    let f = Fakes::new(&["PENDING", "RUNNING", "COMPLETED"]);
    let p = proj();
    let res = run_slurm(&p, &f, 1, None);
    assert_eq!(res[0].status, Status::Ran, "{:?}", res[0].status);
    assert_eq!(p.read("out.txt"), "HELLO\n");
    let sb = f.lines("sbatch.log");
    assert_eq!(sb.len(), 1);
    for flag in [
        "--parsable",
        "--comment=job",
        "--cpus-per-task=2",
        "--mem=1G",
        "--time=10:00",
    ] {
        assert!(sb[0].contains(flag), "{flag} missing in {}", sb[0]);
    }
    assert!(f.lines("squeue.log")[0].contains("--states=all"));
    // The job folder of a successful job is gone, and so is its saved id.
    let jobs = p.root().join(".artifact/slurm/jobs");
    assert_eq!(std::fs::read_dir(&jobs).map(|d| d.count()).unwrap_or(0), 0);
    assert_eq!(p.read(".artifact/slurm/jobs.json").trim(), "{}");
    // Cached afterwards: nothing is submitted again.
    let res = run_slurm(&p, &f, 1, None);
    assert_eq!(res[0].status, Status::Fresh);
    assert_eq!(f.lines("sbatch.log").len(), 1);
}

#[test]
fn a_failed_job_fails_the_stage_and_keeps_the_previous_output() {
    let f = Fakes::new(&["RUNNING", "FAILED"]);
    let p = Proj::new(
        &ONE.replace("tr a-z A-Z < in.txt > out.txt", "echo broken >&2; exit 3"),
        &[("in.txt", "hello\n"), ("out.txt", "old\n")],
    );
    let res = run_slurm(&p, &f, 1, None);
    let Status::Failed(m) = &res[0].status else {
        panic!("{:?}", res[0].status)
    };
    assert!(m.contains("ended FAILED"), "{m}");
    assert!(m.contains("exit code 3"), "{m}");
    assert_eq!(p.read("out.txt"), "old\n");
}

#[test]
fn a_completed_job_whose_command_failed_is_a_failure() {
    let f = Fakes::new(&["RUNNING", "COMPLETED"]);
    let p = Proj::new(
        &ONE.replace("tr a-z A-Z < in.txt > out.txt", "exit 4"),
        &[("in.txt", "x\n")],
    );
    let res = run_slurm(&p, &f, 1, None);
    let Status::Failed(m) = &res[0].status else {
        panic!("{:?}", res[0].status)
    };
    assert!(m.contains("exit code 4"), "{m}");
}

#[test]
fn a_job_cancelled_while_pending_fails() {
    let f = Fakes::new(&["PENDING", "CANCELLED"]);
    let p = proj();
    let res = run_slurm(&p, &f, 1, None);
    let Status::Failed(m) = &res[0].status else {
        panic!("{:?}", res[0].status)
    };
    assert!(m.contains("ended CANCELLED"), "{m}");
    assert!(!p.root().join("out.txt").exists());
}

/// Runs with the fake job scripts deleted as soon as `sbatch` saved them: the job "runs"
/// nothing, so it writes neither outputs nor a result file.
fn without_job_script(p: &Proj, f: &Fakes) -> Vec<StageResult> {
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..2000 {
                for e in std::fs::read_dir(f.path().join("jobs"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if e.file_name().to_string_lossy().ends_with(".script") {
                        let _ = std::fs::remove_file(e.path());
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        run_slurm(p, f, 1, None)
    })
}

#[test]
fn a_vanished_job_without_result_fails() {
    let f = Fakes::new(&["PENDING", "GONE"]);
    let p = Proj::new(
        &ONE.replace("tr a-z A-Z < in.txt > out.txt", "exit 0"),
        &[("in.txt", "x\n")],
    );
    let res = without_job_script(&p, &f);
    let Status::Failed(m) = &res[0].status else {
        panic!("{:?}", res[0].status)
    };
    assert!(
        m.contains("disappeared from squeue without writing its result file"),
        "{m}"
    );
}

#[test]
fn a_slow_result_file_is_waited_for() {
    // The job ran (COMPLETED) but its result file shows up late, as on NFS. A helper thread
    // hides the result file as soon as it appears and brings it back 250 ms later. When the
    // runner reads the file before the thread hides it, that attempt did not exercise the late
    // path (the job folder is gone before the file could be put back): it is repeated, and the
    // test fails if no attempt ever saw the file late.
    for _ in 0..5 {
        let f = Fakes::new(&["RUNNING", "COMPLETED"]);
        let p = proj();
        let jobs = p.root().join(".artifact/slurm/jobs");
        let late_seen = AtomicBool::new(false);
        let res = std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..2000 {
                    for e in std::fs::read_dir(&jobs).into_iter().flatten().flatten() {
                        let r = e.path().join("result");
                        let late = e.path().join("late");
                        if r.exists() && std::fs::rename(&r, &late).is_ok() {
                            std::thread::sleep(Duration::from_millis(250));
                            if std::fs::rename(&late, &r).is_ok() {
                                late_seen.store(true, Ordering::SeqCst);
                            }
                            return;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            run_slurm(&p, &f, 1, None)
        });
        assert_eq!(res[0].status, Status::Ran, "{:?}", res[0].status);
        assert_eq!(p.read("out.txt"), "HELLO\n");
        if late_seen.load(Ordering::SeqCst) {
            return;
        }
    }
    panic!("in 5 attempts the runner never had to wait for a late result file");
}

#[test]
fn a_result_file_that_never_appears_fails() {
    // COMPLETED, but the job never ran the wrapper (so no result file ever appears).
    let f = Fakes::new(&["RUNNING", "COMPLETED"]);
    let p = proj();
    let res = without_job_script(&p, &f);
    let Status::Failed(m) = &res[0].status else {
        panic!("{:?}", res[0].status)
    };
    assert!(m.contains("never appeared"), "{m}");
}

const TWO: &str = r#"version: 1
stages:
  x:
    kind: command
    executor: slurm
    outputs: [x.txt]
    with: { run: "echo x > x.txt" }
  y:
    kind: command
    executor: slurm
    outputs: [y.txt]
    with: { run: "echo y > y.txt" }
"#;

#[test]
fn polling_is_one_batched_squeue_per_interval() {
    let f = Fakes::new(&[
        "PENDING",
        "PENDING",
        "RUNNING",
        "RUNNING",
        "RUNNING",
        "COMPLETED",
    ]);
    let p = Proj::new(TWO, &[]);
    let res = run_slurm(&p, &f, 2, None);
    assert!(res.iter().all(|r| r.status == Status::Ran), "{res:?}");
    let calls = f.lines("squeue.log");
    // Both jobs appear in one call at least once (batched), and there are no more calls than
    // two stages' worth of their own states.
    assert!(
        calls
            .iter()
            .any(|c| c.contains("101,102") || c.contains("100,101")),
        "{calls:?}"
    );
    assert!(calls.len() <= 12, "{} squeue calls: {calls:?}", calls.len());
}

#[test]
fn ctrl_c_cancels_every_job_with_one_scancel() {
    let f = Fakes::new(&["RUNNING"]);
    let p = Proj::new(TWO, &[]);
    let res = run_slurm(&p, &f, 2, Some(Duration::from_millis(300)));
    assert!(res.iter().all(|r| r.status == Status::Cancelled), "{res:?}");
    let sc = f.lines("scancel.log");
    assert_eq!(sc.len(), 1, "{sc:?}");
    assert_eq!(sc[0].split_whitespace().count(), 2, "{sc:?}");
    assert!(!p.root().join("x.txt").exists());
}

/// The key digest stage `name` would run with now.
fn key_of(p: &Proj, name: &str) -> String {
    let pipeline = p.pipeline();
    let plan = Plan::new(&pipeline).unwrap();
    let cancel = AtomicBool::new(false);
    let engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
    let i = pipeline.stages.iter().position(|s| s.name == name).unwrap();
    engine.evaluate(i, &Default::default(), false).unwrap().1
}

/// Saves, as a killed run would have, job 77 for stage `job`, running `script` when it ends.
fn saved_job(p: &Proj, f: &Fakes, key: &str, states: &[&str]) -> PathBuf {
    let dir = p.root().join(".artifact/slurm/jobs/job.old");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "#!/bin/sh\nJ='{d}'\ncd '{r}' && tr a-z A-Z < in.txt > out.txt && printf 'exit 0\\n%s  out.txt\\n' $(sha256sum out.txt | cut -d' ' -f1) > \"$J/result\"\n",
        d = dir.display(),
        r = p.root().display()
    );
    std::fs::write(f.path().join("jobs/77.script"), script).unwrap();
    std::fs::write(f.path().join("jobs/77.states"), states.join("\n") + "\n").unwrap();
    std::fs::write(f.path().join("jobs/77.n"), "0\n").unwrap();
    let saved = serde_json::json!({"job": {"id": "77", "key_digest": key, "dir": dir}});
    p.write(".artifact/slurm/jobs.json", &saved.to_string());
    dir
}

#[test]
fn a_new_run_reattaches_to_a_job_running_the_same_key() {
    let f = Fakes::new(&["COMPLETED"]);
    let p = proj();
    let key = key_of(&p, "job");
    saved_job(&p, &f, &key, &["RUNNING", "RUNNING", "COMPLETED"]);
    let res = run_slurm(&p, &f, 1, None);
    assert_eq!(res[0].status, Status::Ran, "{:?}", res[0].status);
    assert!(
        f.lines("sbatch.log").is_empty(),
        "nothing submitted: reattached"
    );
    assert!(f.lines("scancel.log").is_empty());
    assert_eq!(p.read("out.txt"), "HELLO\n");
}

#[test]
fn a_new_run_cancels_a_job_of_an_older_key_before_submitting() {
    let f = Fakes::new(&["RUNNING", "COMPLETED"]);
    let p = proj();
    saved_job(&p, &f, &"0".repeat(64), &["RUNNING"]);
    let res = run_slurm(&p, &f, 1, None);
    assert_eq!(res[0].status, Status::Ran, "{:?}", res[0].status);
    assert_eq!(f.lines("scancel.log"), ["77"]);
    assert_eq!(f.lines("sbatch.log").len(), 1);
}

#[test]
fn leftover_jobs_of_stages_not_run_are_cancelled() {
    let f = Fakes::new(&["COMPLETED"]);
    let p = proj();
    saved_job(&p, &f, &"0".repeat(64), &["RUNNING"]);
    let s = Slurm::new(f.settings(), &p.root().join(".artifact"));
    let msgs = s.cancel_leftovers();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(f.lines("scancel.log"), ["77"]);
    assert_eq!(p.read(".artifact/slurm/jobs.json").trim(), "{}");
}

#[test]
fn hints_are_allowed_on_command_stages_only_and_checked() {
    let p = Proj::new(
        r#"version: 1
stages:
  a:
    kind: fake
    executor: slurm
    outputs: [a.txt]
  b:
    kind: command
    executor: cluster
    resources: { cpus: 0, mem: 4GB, time: 1h, gpu: 1 }
    outputs: [b.txt]
    with: { run: "true" }
"#,
        &[],
    );
    let err = crate::spec::load(&p.root().join("pipeline.yaml"), &p.registry)
        .unwrap_err()
        .to_string();
    for want in [
        "pipeline.yaml:5:5: error: `executor` and `resources` are allowed on `command` stages only; stage \"a\" is of kind fake",
        "pipeline.yaml:9:15: error: in stage \"b\": unknown executor \"cluster\"",
        "pipeline.yaml:10:24: error: in stage \"b\": `resources.cpus`: expected an integer of at least 1, found 0",
        "pipeline.yaml:10:32: error: in stage \"b\": `resources.mem`: expected MiB or a size like 4G",
        "error: in stage \"b\": `resources.time`: expected minutes or a time like 1:30:00 or 2-00:00:00, found \"1h\"",
        "error: in stage \"b\": unknown key \"gpu\" in `resources`",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
}

#[test]
fn hints_do_not_change_the_key() {
    let p = proj();
    let with = key_of(&p, "job");
    p.write(
        "pipeline.yaml",
        &ONE.replace(
            "    executor: slurm\n    resources: { cpus: 2, mem: 1G, time: \"10:00\" }\n",
            "",
        ),
    );
    assert_eq!(key_of(&p, "job"), with);
}

#[test]
fn the_cache_transport_without_a_writable_remote_fails_before_submitting() {
    use crate::remote::RemoteCache;
    use crate::remote::fake::{FakeRemote, Shared};
    let f = Fakes::new(&["COMPLETED"]);
    let p = proj();
    let failure = |remote: Option<RemoteCache>| {
        let pipeline = p.pipeline();
        let plan = Plan::new(&pipeline).unwrap();
        let cancel = AtomicBool::new(false);
        let mut engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
        let settings = Settings {
            transport: Transport::Cache,
            ..f.settings()
        };
        engine.slurm = Some(Slurm::new(settings, &engine.cache.dir));
        engine.remote = remote;
        let opts = Options {
            jobs: 1,
            force: false,
        };
        match engine.run(&[], &opts, &mut |_| {}).remove(0).status {
            Status::Failed(m) => m,
            s => panic!("{s:?}"),
        }
    };
    let need = "the SLURM cache transport needs a remote cache with writes on, and this run has";
    assert_eq!(failure(None), format!("{need} no remote cache"));
    let fake = std::sync::Arc::new(FakeRemote::default());
    let shared = |write| {
        Some(RemoteCache::new(
            Box::new(Shared(fake.clone())),
            true,
            write,
        ))
    };
    assert_eq!(failure(shared(false)), format!("{need} writes off"));
    // One that writes but is no HTTP server the nodes could reach (the in-memory fake).
    assert_eq!(
        failure(shared(true)),
        format!("{need} fake://remote, which is not an HTTP server the nodes can reach")
    );
    assert!(f.lines("sbatch.log").is_empty(), "nothing was submitted");
}
