//! The CLI end to end on small `command` pipelines: exit codes, messages, plan/why/status,
//! verify, dag, clean, gc, concurrency and the determinism audit.

use crate::util::Project;

const CHAIN: &str = r#"version: 1
stages:
  clean:
    kind: command
    inputs: [data/raw.csv]
    outputs: [out/clean.csv]
    with: { run: "mkdir -p out && cat data/raw.csv > out/clean.csv" }
  count:
    kind: command
    inputs: [out/clean.csv]
    outputs: [out/count.txt]
    with: { run: "wc -l < out/clean.csv > out/count.txt" }
  side:
    kind: command
    inputs: [data/other.txt]
    outputs: [out/side.txt]
    with: { run: "cp data/other.txt out/side.txt" }
"#;

fn chain() -> Project {
    let p = Project::new(CHAIN);
    p.write("data/raw.csv", "a,b\n1,2\n")
        .write("data/other.txt", "x\n");
    std::fs::create_dir_all(p.path("out")).unwrap();
    p
}

#[test]
fn run_then_noop_then_edit() {
    let p = chain();
    let r = p.run(&["run", "-j", "1"]);
    r.code(0);
    assert_eq!(r.stages(), ["ran clean", "ran count", "ran side"]);
    assert_eq!(p.read("out/count.txt").trim(), "2");
    let r = p.run(&["run"]);
    r.code(0);
    assert_eq!(r.stages(), ["cached clean", "cached count", "cached side"]);
    r.says("3 stages: 0 ran, 0 restored, 3 cached");
    p.write("data/raw.csv", "a,b\n1,2\n3,4\n");
    let r = p.run(&["run", "-j", "1"]);
    r.code(0);
    assert_eq!(r.stages(), ["ran clean", "ran count", "cached side"]);
    assert!(
        r.stdout.contains("ran       clean (") && r.stdout.contains("input data/raw.csv changed: "),
        "{}",
        r.stdout
    );
}

#[test]
fn plan_and_why_explain_reruns() {
    let p = chain();
    let r = p.run(&["plan"]);
    r.code(0);
    assert_eq!(
        r.stdout,
        "run      clean: new (never ran)\n\
         run      count: upstream stage clean runs first\n\
         run      side: new (never ran)\n\
         3 stages: 3 would run, 0 would be restored from the cache, 0 cached\n"
    );
    p.run(&["run"]).code(0);
    p.write("data/other.txt", "y\n");
    let r = p.run(&["plan"]);
    r.says("cached   clean\n");
    assert!(
        r.stdout
            .contains("run      side: input data/other.txt changed: "),
        "{}",
        r.stdout
    );
    let r = p.run(&["why", "side"]);
    r.code(0);
    r.says("  - input data/other.txt changed: ");
    r.says("  => would run");
    let r = p.run(&["why", "clean"]);
    assert!(
        r.stdout.contains("same key as the last successful run")
            && r.stdout.contains("=> up to date"),
        "{}",
        r.stdout
    );
    let r = p.run(&["why", "nope"]);
    r.code(4);
    assert!(r.stderr.contains("no stage named \"nope\""), "{}", r.stderr);
}

#[test]
fn param_edit_is_named_by_why() {
    let p = chain();
    p.run(&["run"]).code(0);
    p.write("pipeline.yaml", &CHAIN.replace("wc -l <", "wc -l  <"));
    let r = p.run(&["why", "count"]);
    r.says(r#"  - param changed: with.run = "wc -l < out/clean.csv > out/count.txt" -> with.run = "wc -l  < out/clean.csv > out/count.txt""#);
}

#[test]
fn validation_errors_exit_3_sorted_with_locations() {
    let p = Project::new(
        "version: 1\nstages:\n  b:\n    kind: nope\n    outputs: [x]\n  a:\n    kind: command\n    inputs: [missing.txt]\n    outputs: [y]\n    with: { run: true, shell: bash }\n",
    );
    let r = p.run(&["run"]);
    r.code(3);
    assert_eq!(
        r.stderr,
        "pipeline.yaml:4:11: error: unknown kind \"nope\" in stage \"b\" (expected one of: aggregate, claims, command, fetch, plot, table, validate)\n\
         pipeline.yaml:8:14: error: input \"missing.txt\" of stage \"a\" is neither an existing file nor an output of any stage\n\
         pipeline.yaml:10:18: error: in `with` of stage \"a\" (kind command): invalid type: boolean `true`, expected a string\n\
         pipeline.yaml:10:24: error: in `with` of stage \"a\" (kind command): unknown key \"shell\" (expected one of: run, env)\n\
         4 problems in pipeline.yaml\n"
    );
}

#[test]
fn cycle_exits_4_naming_the_cycle() {
    let p = Project::new(
        "version: 1\nstages:\n  x:\n    kind: command\n    inputs: [b]\n    outputs: [a]\n    with: { run: 'cp b a' }\n  y:\n    kind: command\n    inputs: [a]\n    outputs: [b]\n    with: { run: 'cp a b' }\n",
    );
    let r = p.run(&["plan"]);
    r.code(4);
    assert_eq!(
        r.stderr,
        "pipeline.yaml: error: the stages form a cycle: x -> y -> x\n"
    );
}

#[test]
fn failure_exits_5_and_lists_skipped() {
    let p = chain();
    p.run(&["run"]).code(0);
    p.write(
        "pipeline.yaml",
        &CHAIN.replace("cat data/raw.csv > out/clean.csv", "echo oops >&2; exit 7"),
    );
    let r = p.run(&["run", "-j", "1"]);
    r.code(5);
    assert_eq!(r.stages(), ["FAILED clean", "skipped count", "cached side"]);
    assert!(
        r.stdout
            .contains("skipped because an upstream stage failed: count"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("stage clean failed: command failed with exit code 7; end of its stderr (all of it in .artifact/logs/clean.log):\noops"),
        "{}",
        r.stderr
    );
    assert_eq!(
        p.read("out/clean.csv"),
        "a,b\n1,2\n",
        "previous output stays"
    );
}

#[test]
fn restore_verify_and_clean() {
    let p = chain();
    p.run(&["run"]).code(0);
    p.run(&["verify"]).code(0);
    p.write("out/count.txt", "999\n");
    let r = p.run(&["verify"]);
    r.code(6);
    r.says("MISMATCH out/count.txt (stage count)");
    let r = p.run(&["run"]);
    r.code(0);
    r.says("restored  count");
    r.says("output out/count.txt altered");
    p.run(&["verify"]).code(0);
    p.run(&["clean"]).code(0);
    assert!(!p.path("out/clean.csv").exists());
    // `why` agrees with `run`: upstream outputs come from the records, not from the disk.
    let r = p.run(&["why", "count"]);
    r.code(0);
    assert!(
        r.stdout
            .contains("=> would be restored from the cache (output out/count.txt missing)"),
        "{}",
        r.stdout
    );
    let r = p.run(&["run", "-j", "1"]);
    assert_eq!(
        r.stages(),
        ["restored clean", "restored count", "restored side"]
    );
}

#[test]
fn touch_and_fresh_clone_run_nothing() {
    let p = chain();
    p.run(&["run"]).code(0);
    let q = Project::new(CHAIN);
    // Copy everything (sources, outputs, cache) to a new folder: new inodes and mtimes.
    let status = std::process::Command::new("cp")
        .args(["-r", "."])
        .arg(q.root())
        .current_dir(p.root())
        .status()
        .unwrap();
    assert!(status.success());
    let r = q.run(&["run"]);
    r.code(0);
    r.says("0 ran, 0 restored, 3 cached");
}

#[test]
fn dag_formats() {
    let p = chain();
    let r = p.run(&["dag"]);
    r.code(0);
    assert!(r.stdout.starts_with("digraph pipeline {"));
    assert!(r.stdout.contains("\"clean\" -> \"count\";"));
    let r = p.run(&["dag", "--format", "mermaid"]);
    r.says("s0 --> s1");
}

#[test]
fn json_events() {
    let p = chain();
    let r = p.run(&["--json", "run", "-j", "1"]);
    r.code(0);
    let lines: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["event"], "begin");
    let finished: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["event"] == "finished").collect();
    assert_eq!(finished.len(), 3);
    assert_eq!(finished[0]["stage"], "clean");
    assert_eq!(finished[0]["status"], "ran");
}

#[test]
fn concurrent_run_waits_or_fails_clearly() {
    let p = Project::new(
        "version: 1\nstages:\n  slow:\n    kind: command\n    outputs: [s.txt]\n    with: { run: 'touch started; while [ ! -e release ]; do sleep 0.01; done; echo done > s.txt' }\n",
    );
    // Markers instead of a timed sleep: the first run holds the lock until the test creates
    // `release`, which it does only once the second run has said that it waits.
    let first = p.cmd(&["run"]).spawn().unwrap();
    // The stage runs only once the first run holds the lock.
    wait_for(&p.path("started"));
    let r = p.run(&["run", "--no-wait"]);
    r.code(7);
    assert!(
        r.stderr.contains("another artifact run holds the lock"),
        "{}",
        r.stderr
    );
    // `clean` and `gc` do not wait either: busy, not a bug (they exited 1, "internal").
    for cmd in ["clean", "gc"] {
        let r = p.run(&[cmd]);
        r.code(7);
        let want =
            format!("another artifact run holds the lock on this project (`{cmd}` does not wait");
        assert!(r.stderr.contains(&want), "{cmd}: {}", r.stderr);
    }
    let mut second = p
        .cmd(&["run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open until the run ends (a closed stderr would fail its later writes).
    let mut stderr = std::io::BufReader::new(second.stderr.take().unwrap());
    let mut waiting = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut waiting).unwrap();
    assert!(
        waiting.contains("waiting for another artifact run"),
        "{waiting}"
    );
    std::fs::write(p.path("release"), "").unwrap();
    let out = second.wait_with_output().unwrap();
    drop(stderr);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cached    slow"), "{stdout}");
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success());
}

#[test]
fn audit_catches_a_stage_that_writes_a_timestamp() {
    let p = Project::new(
        "version: 1\nstages:\n  stamp:\n    kind: command\n    outputs: [t.txt]\n    with: { run: 'date +%s%N > t.txt' }\n  pure:\n    kind: command\n    outputs: [p.txt]\n    with: { run: 'echo $SOURCE_DATE_EPOCH > p.txt' }\n",
    );
    let r = p.run(&["run", "--check"]);
    r.code(6);
    assert!(
        r.stdout.contains("audit DIFFERS   stamp: t.txt (cached "),
        "{}",
        r.stdout
    );
    r.says("audit identical pure");
    assert!(
        r.stdout
            .contains("determinism audit: 1 of 2 stages reproduce byte for byte"),
        "{}",
        r.stdout
    );
}

#[test]
fn interrupt_stops_cleanly_with_130() {
    let p = Project::new(
        "version: 1\nstages:\n  slow:\n    kind: command\n    outputs: [s.txt]\n    with: { run: 'echo partial > s.txt; touch started; sleep 5; echo done >> s.txt' }\n",
    );
    let child = p.cmd(&["run"]).spawn().unwrap();
    wait_for(&p.path("started"));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!p.path("s.txt").exists(), "no half-written output survives");
}

#[test]
fn help_lists_exit_codes() {
    let p = chain();
    let r = p.run(&["--help"]);
    r.code(0);
    r.says("130  interrupted");
    r.says("7    another run holds the project's lock (run --no-wait, clean, gc)");
    p.run(&["bogus"]).code(2);
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let p = chain();
    let mut child = p
        .cmd(&["dag", "--format", "mermaid"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls until `path` exists (10 s at most).
fn wait_for(path: &std::path::Path) {
    for _ in 0..1000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn a_broken_lock_file_is_regenerated_whole_with_a_warning() {
    let p = chain();
    p.run(&["run"]).code(0);
    let good = p.read("pipeline.lock");
    let variants: [(&str, Vec<u8>); 4] = [
        (
            "conflict",
            format!("<<<<<<< HEAD\n{good}=======\n{good}>>>>>>> theirs\n").into_bytes(),
        ),
        ("truncated", good.as_bytes()[..good.len() / 3].to_vec()),
        ("empty", Vec::new()),
        ("binary", vec![0xff, 0, 0xfe, 7, 0x80]),
    ];
    for (what, bytes) in variants {
        std::fs::write(p.path("pipeline.lock"), bytes).unwrap();
        let r = p.run(&["verify"]);
        r.code(1);
        assert!(
            r.stderr.contains("pipeline.lock")
                && r.stderr.contains("run `artifact run` to regenerate it"),
            "{what}: {}",
            r.stderr
        );
        // Even a run of one stage puts every stage's entry back, not only that stage's.
        let r = p.run(&["run", "side"]);
        r.code(0);
        assert!(
            r.stderr.contains("warning: ")
                && r.stderr.contains("pipeline.lock")
                && r.stderr.contains("regenerating"),
            "{what}: {}",
            r.stderr
        );
        assert_eq!(p.read("pipeline.lock"), good, "{what}");
        p.run(&["verify"]).code(0);
    }
}

#[test]
fn a_corrupt_last_run_record_is_rewritten_by_the_next_run() {
    let p = chain();
    p.run(&["run"]).code(0);
    p.write(".artifact/last-run.json", "{\"stages\": [tru");
    p.run(&["run"]).code(0);
    let v: serde_json::Value = serde_json::from_str(&p.read(".artifact/last-run.json")).unwrap();
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(3));
}

#[test]
fn why_on_a_damaged_stage_record_does_not_panic() {
    let p = chain();
    p.run(&["run"]).code(0);
    let idx = p.read(".artifact/stages.json");
    let mut v: serde_json::Value = serde_json::from_str(&idx).unwrap();
    v["side"]["key_digest"] = "ab".into();
    v["count"]["key_digest"] = "é".repeat(9).into();
    p.write(".artifact/stages.json", &v.to_string());
    for stage in ["side", "count"] {
        let r = p.run(&["why", stage]);
        r.code(0);
        r.says("last successful run had key");
    }
}

#[test]
fn jobs_beyond_the_cap_is_a_usage_error() {
    let p = chain();
    let t = std::time::Instant::now();
    let r = p.run(&["run", "-j", "30000"]);
    r.code(2);
    assert!(r.stderr.contains("at most 256"), "{}", r.stderr);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    p.run(&["run", "-j", "256"]).code(0);
}

#[test]
fn env_secrets_are_never_stored_or_printed() {
    let p = Project::new(
        "version: 1\nstages:\n  a:\n    kind: command\n    outputs: [a.txt]\n    with: { run: 'test -n \"$AWS_SECRET\" && echo ok > a.txt', env: [AWS_SECRET] }\n",
    );
    let run = |secret: &str, args: &[&str]| {
        let out = p.cmd(args).env("AWS_SECRET", secret).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), all)
    };
    let (code, out) = run("hunter2-first", &["run"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(p.read("a.txt"), "ok\n");
    let mut printed = String::new();
    for args in [
        &["plan"][..],
        &["why", "a"],
        &["why", "a", "--key"],
        &["--json", "why", "a"],
        &["status"],
        &["run"],
    ] {
        let (_, out) = run("hunter2-second", args);
        printed.push_str(&out);
    }
    assert!(printed.contains("env.AWS_SECRET changed"), "{printed}");
    for secret in ["hunter2-first", "hunter2-second"] {
        assert!(!printed.contains(secret), "printed: {printed}");
        let grep = std::process::Command::new("grep")
            .args(["-rl", secret, ".artifact", "pipeline.lock"])
            .current_dir(p.root())
            .output()
            .unwrap();
        assert_eq!(
            grep.status.code(),
            Some(1),
            "{secret} stored in: {}",
            String::from_utf8_lossy(&grep.stdout)
        );
    }
}

#[test]
fn killed_run_leaves_no_orphan_writing_outputs() {
    let p = Project::new(
        "version: 1\nstages:\n  a: {kind: command, outputs: [out/a], with: {run: \"mkdir -p out; sleep 2; date +%s%N > out/a\"}}\n",
    );
    p.run(&["run", "-q"]).code(0);
    let mut child = p.cmd(&["run", "--force"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    p.run(&["run"]).code(0);
    p.run(&["verify"]).code(0);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    p.run(&["verify"]).code(0);
}

/// `kill -9` of the runner, and no run after it: the runner's guard stops the whole process
/// group of the running command, what it started in the background included.
#[test]
fn a_killed_runner_takes_its_commands_children_with_it() {
    let p = Project::new(
        "version: 1\nstages:\n  slow: {kind: command, outputs: [s.txt], with: {run: 'echo $$ > pid; sleep 30 & echo $! > bg; wait'}}\n",
    );
    let mut child = p.cmd(&["run"]).spawn().unwrap();
    wait_for(&p.path("bg"));
    child.kill().unwrap(); // SIGKILL: the runner cleans up nothing itself
    let _ = child.wait();
    for f in ["pid", "bg"] {
        let pid = p.read(f).trim().to_string();
        assert!(gone(&pid), "process {pid} ({f}) outlived the killed run");
    }
}

#[test]
fn sigterm_is_handled_like_ctrl_c_and_leaves_no_process() {
    let p = Project::new(
        "version: 1\nstages:\n  slow: {kind: command, outputs: [s.txt], with: {run: 'echo $$ > pid; sleep 30 & echo $! > bg; wait'}}\n  after: {kind: command, inputs: [s.txt], outputs: [t.txt], with: {run: 'cp s.txt t.txt'}}\n",
    );
    let child = p
        .cmd(&["run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&p.path("bg"));
    std::thread::sleep(std::time::Duration::from_millis(100));
    kill("-TERM", child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(!stdout.contains("skipped because"), "{stdout}");
    for f in ["pid", "bg"] {
        let pid = p.read(f).trim().to_string();
        assert!(gone(&pid), "process {pid} ({f}) survived the run");
    }
}

#[test]
fn second_interrupt_kills_a_command_that_ignores_sigterm() {
    let p = Project::new(
        "version: 1\nstages:\n  stubborn: {kind: command, outputs: [s.txt], with: {run: \"trap '' TERM INT; echo $$ > pid; sleep 30\"}}\n",
    );
    let t = std::time::Instant::now();
    let child = p.cmd(&["run"]).spawn().unwrap();
    wait_for(&p.path("pid"));
    kill("-INT", child.id());
    std::thread::sleep(std::time::Duration::from_millis(300));
    kill("-INT", child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t.elapsed()
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = p.read("pid").trim().to_string();
    assert!(gone(&pid), "the stage's shell {pid} survived");
}

fn kill(sig: &str, pid: u32) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Whether process `pid` no longer runs (gone, or a zombie nobody reaped yet).
fn gone(pid: &str) -> bool {
    for _ in 0..100 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(s)
                if s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')) =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    false
}

const FAILS_ON_NOTES: &str = "version: 1\nstages:\n  s: {kind: command, outputs: [data/notes.txt], with: {run: \"exit 1\"}}\n";

#[test]
fn failing_stage_keeps_preexisting_untracked_output() {
    let p = Project::new(FAILS_ON_NOTES);
    p.write("data/notes.txt", "precious\n");
    p.run(&["run"]).code(5);
    assert_eq!(p.read("data/notes.txt"), "precious\n");
}

#[test]
fn clean_keeps_outputs_the_cache_cannot_restore() {
    let p = Project::new(FAILS_ON_NOTES);
    p.write("data/notes.txt", "precious\n");
    p.run(&["run"]).code(5);
    let r = p.run(&["clean"]);
    r.code(0);
    assert_eq!(p.read("data/notes.txt"), "precious\n");
    assert!(
        r.stdout
            .contains("kept data/notes.txt: no recorded run of stage s produced it")
            && r.stdout.contains("removed 0 output file(s), kept 1"),
        "{}",
        r.stdout
    );
    // A restorable output goes; one edited since its run stays.
    let p = chain();
    p.run(&["run"]).code(0);
    p.write("out/side.txt", "edited by hand\n");
    let r = p.run(&["clean"]);
    r.code(0);
    assert!(!p.path("out/clean.csv").exists() && !p.path("out/count.txt").exists());
    assert_eq!(p.read("out/side.txt"), "edited by hand\n");
    assert!(
        r.stdout.contains(
            "kept out/side.txt: it differs from what the last run of stage side produced"
        ) && r.stdout.contains("removed 2 output file(s), kept 1"),
        "{}",
        r.stdout
    );
}

#[test]
fn clean_racing_a_symlink_swap_never_deletes_outside_the_project() {
    // `out` is a symlink to `real` (inside) when the pipeline is checked; a thread keeps
    // flipping it to a folder outside the project holding a file of the same name and bytes.
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("a.txt");
    std::fs::write(&victim, "a\n").unwrap();
    let p = Project::new(
        "version: 1\nstages:\n  s: {kind: command, outputs: [out/a.txt], with: {run: \"echo a > out/a.txt\"}}\n",
    );
    std::fs::create_dir_all(p.path("real")).unwrap();
    std::os::unix::fs::symlink("real", p.path("out")).unwrap();
    p.run(&["run"]).code(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let tmp = p.path("out.new");
            for i in 0..400 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let target: &std::path::Path = if i % 2 == 0 {
                    outside.path()
                } else {
                    std::path::Path::new("real")
                };
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, p.path("out")).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        for _ in 0..40 {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            std::fs::write(p.path("real/a.txt"), "a\n").unwrap();
            let _ = p.run(&["clean"]);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "a\n");
}

#[test]
fn gc_removes_stale_temp_files_left_by_a_killed_restore() {
    // `kill -9` during a restore leaves `.NAME.tmp.PID.N` beside the output; PIDs above the
    // kernel's maximum (4194304) are never alive, this process's own PID is.
    let p = chain();
    p.run(&["run"]).code(0);
    let me = std::process::id();
    p.write("out/.count.txt.tmp.999999999.0", "")
        .write(&format!("out/.side.txt.tmp.{me}.0"), "");
    let r = p.run(&["gc"]);
    r.code(0);
    r.says("1 stale temporary file(s)");
    assert!(!p.path("out/.count.txt.tmp.999999999.0").exists());
    assert!(p.path(&format!("out/.side.txt.tmp.{me}.0")).exists());
}

/// `artifact dag | head -1`: the reader closes the pipe long before the 3,000-stage graph
/// (about 190 KiB, more than a pipe holds) is written, so a write fails with EPIPE; the command
/// ends quietly with exit 0, no panic message.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let mut yaml = String::from("version: 1\nstages:\n");
    for i in 0..3000 {
        yaml.push_str(&format!(
            "  stage_with_a_long_name_{i:05}:\n    kind: command\n    outputs: [out/file_with_a_long_name_{i:05}.txt]\n    with: {{ run: 'true' }}\n"
        ));
    }
    let p = Project::new(&yaml);
    let mut child = p
        .cmd(&["dag"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("some output");
    drop(stdout);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
}
