//! Processes, secrets and robustness (issue 8): commands die with their run and never overlap
//! a later one, signals are named, stderr is bounded and logged, `env:` values never reach
//! disk or messages, interrupts are reported as such, an unreadable lock is regenerated, and
//! YAML errors speak of the file, not of the library.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::*;
use crate::exec::procs::{self, Group};

fn failure(res: &[StageResult], stage: &str) -> String {
    match status_of(res, stage) {
        Status::Failed(m) => m.clone(),
        other => panic!("stage {stage} ended {other:?}"),
    }
}

/// A `sleep` in a process group of its own, as a killed run's command would leave it.
fn orphan_group() -> Child {
    Command::new("/bin/sh")
        .args(["-c", "sleep 30"])
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Waits (at most `limit`) for `c` to end; returns whether it did.
fn ended_within(c: &mut Child, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if c.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Writes a journal in which `groups` started (and one other group started and ended), ending
/// in a line cut short as a kill would leave it.
fn record_groups(p: &Proj, groups: &[Group]) {
    let mut j = String::new();
    for g in groups {
        j.push_str(&serde_json::to_string(&procs::Event::Started(g.clone())).unwrap());
        j.push('\n');
    }
    j.push_str("{\"pgid\":1,\"start\":1,\"stage\":\"x\"}\n{\"ended\":1}\n{\"pgid\":99");
    p.write(".artifact/running.log", &j);
}

#[test]
fn journal_replay_keeps_groups_started_and_not_ended() {
    let j = b"{\"pgid\":5,\"start\":7,\"stage\":\"a\"}\n{\"pgid\":6,\"start\":8,\"stage\":\"b\"}\n{\"ended\":5}\n\n{\"pgid\":9,\"sta";
    let open = procs::replay(j);
    assert_eq!(
        open,
        vec![Group {
            pgid: 6,
            start: 8,
            stage: "b".into()
        }]
    );
}

const ONE_FAKE: &str =
    "version: 1\nstages:\n  a: {kind: fake, outputs: [a.txt], with: {text: a}}\n";

#[test]
fn command_left_running_by_a_killed_run_is_stopped_before_the_next_run() {
    let p = Proj::new(ONE_FAKE, &[]);
    let mut orphan = orphan_group();
    let pgid = orphan.id() as i32;
    record_groups(
        &p,
        &[Group {
            pgid,
            start: procs::start_time(pgid),
            stage: "a".into(),
        }],
    );
    p.run();
    assert!(
        ended_within(&mut orphan, Duration::from_secs(1)),
        "the leftover group still runs after the next run started"
    );
    // Said through the run's events (the engine prints nothing), naming the stage.
    let warnings = p.warnings.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("stage a"), "{warnings:?}");
    assert!(!p.root().join(".artifact/running.log").exists());
}

#[test]
fn command_recorded_by_an_older_version_is_stopped_too() {
    let p = Proj::new(ONE_FAKE, &[]);
    let mut orphan = orphan_group();
    let pgid = orphan.id() as i32;
    let g = Group {
        pgid,
        start: procs::start_time(pgid),
        stage: "a".into(),
    };
    p.write(
        ".artifact/running.json",
        &serde_json::to_string(&[g]).unwrap(),
    );
    p.run();
    assert!(
        ended_within(&mut orphan, Duration::from_secs(1)),
        "the group in the older whole-file record still runs after the next run started"
    );
    assert!(!p.root().join(".artifact/running.json").exists());
}

#[test]
fn reused_process_id_of_an_unrelated_group_is_left_alone() {
    let p = Proj::new(ONE_FAKE, &[]);
    let mut other = orphan_group();
    let pgid = other.id() as i32;
    // Same process id, but its leader started at another time: not the group the record means.
    record_groups(
        &p,
        &[Group {
            pgid,
            start: procs::start_time(pgid) + 12345,
            stage: "a".into(),
        }],
    );
    p.run();
    let alive = other.try_wait().unwrap().is_none();
    procs::killpg(pgid, rustix::process::Signal::KILL);
    let _ = other.wait();
    assert!(alive, "an unrelated process group was killed");
}

#[test]
fn running_commands_are_recorded_while_they_run() {
    let p = Proj::new(
        // The record is written right after the spawn, so the command waits for it (bounded)
        // rather than race the runner for its first instruction.
        "version: 1\nstages:\n  a: {kind: command, outputs: [a], with: {run: \"i=0; while [ ! -s .artifact/running.log ] && [ $i -lt 2000 ]; do i=$((i+1)); sleep 0.01; done; cat .artifact/running.log > a\"}}\n",
        &[],
    );
    p.run();
    let rec = procs::replay(p.read("a").as_bytes());
    assert_eq!(rec.len(), 1, "{}", p.read("a"));
    assert_eq!(rec[0].stage, "a");
    assert!(rec[0].start > 0);
    assert!(!p.root().join(".artifact/running.log").exists());
}

#[test]
fn command_killed_by_a_signal_names_the_signal() {
    let p = Proj::new(
        "version: 1\nstages:\n  a: {kind: command, outputs: [a], with: {run: \"kill -9 $$\"}}\n  b: {kind: command, outputs: [b], with: {run: \"sh -c 'kill -SEGV $$'\"}}\n",
        &[],
    );
    let (_, res) = p.run_with(&Options::default(), &[]);
    let a = failure(&res, "a");
    assert!(a.contains("killed by signal 9 (SIGKILL)"), "{a}");
    let b = failure(&res, "b");
    assert!(b.contains("exit code 139 (128 + 11"), "{b}");
    assert!(b.contains("SIGSEGV"), "{b}");
}

#[test]
fn huge_or_binary_stderr_is_kept_as_a_bounded_tail_and_logged_whole() {
    let p = Proj::new(
        "version: 1\nstages:\n  a: {kind: command, outputs: [a], with: {run: \"head -c 3000000 /dev/zero | tr '\\\\0' x >&2; printf '\\\\n\\\\377\\\\376 the last line\\\\n' >&2; exit 3\"}}\n",
        &[],
    );
    let (_, res) = p.run_with(&Options::default(), &[]);
    let m = failure(&res, "a");
    assert!(
        m.len() < crate::exec::STDERR_TAIL + 512,
        "{} bytes",
        m.len()
    );
    assert!(
        m.contains("exit code 3"),
        "{}",
        m.get(..200).unwrap_or(m.as_str())
    );
    assert!(
        m.contains("\u{FFFD}\u{FFFD} the last line"),
        "non-UTF-8 stderr dropped"
    );
    assert!(
        m.contains(".artifact/logs/a.log"),
        "the error names the log"
    );
    let log = std::fs::metadata(p.root().join(".artifact/logs/a.log")).unwrap();
    assert_eq!(log.len(), 3_000_000 + 18);
}

#[test]
fn env_values_never_reach_the_cache_key_records_or_messages() {
    // A variable cargo sets for tests, with a value found nowhere else in the project.
    let secret = env!("CARGO_MANIFEST_DIR");
    assert_eq!(std::env::var("CARGO_MANIFEST_DIR").as_deref(), Ok(secret));
    let yaml = |env: &str| {
        format!(
            "version: 1\nstages:\n  a: {{kind: command, outputs: [a], with: {{run: \"test -n \\\"$CARGO_MANIFEST_DIR\\\" && echo ok > a\", env: [{env}]}}}}\n"
        )
    };
    let p = Proj::new(&yaml("CARGO_MANIFEST_DIR"), &[]);
    p.run();
    assert_eq!(
        p.read("a"),
        "ok\n",
        "the variable still reaches the command"
    );
    p.write("pipeline.yaml", &yaml("CARGO_MANIFEST_DIR, CARGO_PKG_NAME"));
    let (_, res) = p.run_with(&Options::default(), &[]);
    let reason = res[0].reason.as_ref().unwrap().to_string();
    assert!(reason.ends_with("; env.CARGO_PKG_NAME changed"), "{reason}");
    let rec = res[0].record.as_ref().unwrap();
    assert!(
        rec.key.extra["env.CARGO_MANIFEST_DIR"].starts_with("sha256:"),
        "{:?}",
        rec.key.extra
    );
    for e in walk(p.root()) {
        let bytes = std::fs::read(&e).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{} holds the value of an `env:` variable",
            e.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn interrupt_marks_later_stages_interrupted_not_skipped() {
    let p = Proj::new(
        "version: 1\nstages:\n  a: {kind: fake, outputs: [a.txt], with: {interrupt: true}}\n  b: {kind: fake, inputs: [a.txt], outputs: [b.txt]}\n",
        &[],
    );
    let pipeline = p.pipeline();
    let plan = Plan::new(&pipeline).unwrap();
    let cancel = AtomicBool::new(false);
    let engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
    let res = engine.run(&[], &Options::default(), &mut |_| {});
    assert_eq!(status_of(&res, "a"), &Status::Cancelled);
    assert_eq!(status_of(&res, "b"), &Status::Cancelled);
    assert_eq!(Status::Cancelled.label(), "interrupted");
}

#[test]
fn command_ignoring_sigterm_is_killed_after_the_grace_period() {
    let p = Proj::new(
        "version: 1\nstages:\n  a: {kind: command, outputs: [a], with: {run: \"trap '' TERM; sleep 30; echo late > a\"}}\n",
        &[],
    );
    let pipeline = p.pipeline();
    let plan = Plan::new(&pipeline).unwrap();
    let cancel = AtomicBool::new(false);
    let engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
    let t = Instant::now();
    let res = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        engine.run(&[], &Options::default(), &mut |_| {})
    });
    let took = t.elapsed();
    assert_eq!(status_of(&res, "a"), &Status::Cancelled);
    assert!(
        took < procs::GRACE + Duration::from_secs(2),
        "took {took:?}"
    );
    assert!(!p.root().join("a").exists());
}

#[test]
fn unreadable_lock_file_is_regenerated_by_the_next_run() {
    let p = Proj::new(ONE_FAKE, &[]);
    p.run();
    let good = p.read("pipeline.lock");
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("binary", vec![0, 159, 146, 150, 255, 1, 2]),
        (
            "conflict markers",
            format!("<<<<<<< HEAD\n{good}=======\n{good}>>>>>>> other\n").into_bytes(),
        ),
    ];
    for (what, bytes) in variants {
        std::fs::write(p.root().join("pipeline.lock"), &bytes).unwrap();
        let err = crate::lockfile::LockFile::read(&p.root().join("pipeline.lock")).unwrap_err();
        assert!(
            matches!(err, crate::lockfile::LockError::Invalid { .. }),
            "{what}: {err:?}"
        );
        let err = err.to_string();
        assert!(
            err.contains("pipeline.lock: not a valid lock file: "),
            "{what}: {err}"
        );
        // A no-op run (nothing to do) still rewrites it whole, and says so (once, to its caller).
        p.run();
        assert_eq!(p.read("pipeline.lock"), good, "{what}");
        assert_eq!(
            *p.warnings.lock().unwrap(),
            [format!("{err}; regenerating it from the recorded runs")],
            "{what}"
        );
    }
}

fn load_error(yaml: &str) -> String {
    let p = Proj::new(yaml, &[]);
    match crate::spec::load(&p.root().join("pipeline.yaml"), &p.registry) {
        Ok(_) => panic!("accepted"),
        Err(d) => d.to_string(),
    }
}

#[test]
fn yaml_errors_name_the_mistake_not_the_library() {
    let dup = load_error(
        "version: 1\nstages:\n  a: {kind: fake, outputs: [a.txt]}\n  b: {kind: fake, outputs: [b.txt]}\n  a: {kind: fake, outputs: [c.txt]}\n",
    );
    assert!(dup.contains("duplicate key `a` (first at line 3)"), "{dup}");
    let multi =
        load_error("version: 1\nstages:\n  a: {kind: fake, outputs: [a.txt]}\n---\nversion: 1\n");
    assert!(
        multi.contains("the file holds several YAML documents (`---`); a pipeline file holds one"),
        "{multi}"
    );
    let mut big = String::from("version: 1\nstages: {}\nx: [");
    for _ in 0..260_000 {
        big.push_str("1,");
    }
    big.push_str("1]\n");
    let huge = load_error(&big);
    assert!(
        huge.contains("too large or too deeply nested (more than 250,000 nodes)"),
        "{huge}"
    );
    for e in [&dup, &multi, &huge] {
        for internal in [
            "DuplicateKeyPolicy",
            "from_str",
            "budget",
            "Nodes {",
            "Options",
        ] {
            assert!(!e.contains(internal), "{e}");
        }
    }
}
