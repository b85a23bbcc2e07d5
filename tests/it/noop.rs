//! The no-op fast path (`.artifact/noop.json`, see `engine::noop`): it answers only when
//! nothing that a key or a verdict depends on has changed, and every change sends the run
//! down the full path, which reruns or restores exactly what the full path always did.

use crate::util::{Project, Run};

const PIPE: &str = r#"version: 1
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
  greet:
    kind: command
    outputs: [out/greet.txt]
    with: { run: "mkdir -p out && echo \"$WHO\" > out/greet.txt", env: [WHO] }
"#;

fn project() -> Project {
    let p = Project::new(PIPE);
    p.write("data/raw.csv", "a,b\n1,2\n");
    p
}

/// `run --json` with `WHO` set: (answered by the snapshot?, [(stage, status)]).
fn run_json(p: &Project, who: &str) -> (bool, Vec<(String, String)>) {
    let out = p
        .cmd(&["--json", "run", "-j", "1"])
        .env("WHO", who)
        .output()
        .expect("spawn");
    Run::from(out).json_finished()
}

fn all(status: &str) -> Vec<(String, String)> {
    ["clean", "count", "greet"]
        .iter()
        .map(|s| (s.to_string(), status.to_string()))
        .collect()
}

#[track_caller]
fn settled(p: &Project) {
    // After any change: a full-path run brings everything up to date and writes the snapshot,
    // the next run is answered by it.
    run_json(p, "world");
    let (snap, st) = run_json(p, "world");
    assert!(snap, "the snapshot should answer an unchanged project");
    assert_eq!(st, all("cached"));
}

#[test]
fn noop_snapshot_answers_only_an_unchanged_project() {
    let p = project();
    let (snap, st) = run_json(&p, "world");
    assert!(!snap);
    assert_eq!(st, all("ran"));
    let (snap, st) = run_json(&p, "world");
    assert!(snap, "a complete run writes the snapshot");
    assert_eq!(st, all("cached"));
    // The plain summary is the full path's.
    let r = p.cmd(&["run"]).env("WHO", "world").output().unwrap();
    let r = Run::from(r);
    r.code(0);
    r.says("3 stages: 0 ran, 0 restored, 3 cached");
    assert_eq!(r.stages(), ["cached clean", "cached count", "cached greet"]);
    let key = |p: &Project| -> serde_json::Value {
        let out = p
            .cmd(&["--json", "run"])
            .env("WHO", "world")
            .output()
            .unwrap();
        let s = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(s.lines().nth(1).unwrap()).unwrap();
        v["key"].clone()
    };
    assert!(
        key(&p).is_string(),
        "the fast path reports the key digest too"
    );
}

#[test]
fn noop_snapshot_misses_on_a_same_size_source_edit() {
    let p = project();
    settled(&p);
    p.write("data/raw.csv", "a,b\n3,4\n");
    let (snap, st) = run_json(&p, "world");
    assert!(!snap);
    assert_eq!(
        st,
        vec![
            ("clean".into(), "ran".into()),
            ("count".into(), "ran".into()),
            ("greet".into(), "cached".into()),
        ]
    );
    assert_eq!(p.read("out/clean.csv"), "a,b\n3,4\n");
    settled(&p);
}

#[test]
fn noop_snapshot_misses_on_a_pipeline_edit_and_still_validates() {
    let p = project();
    settled(&p);
    p.write("pipeline.yaml", &PIPE.replace("wc -l <", "wc -c <"));
    let (snap, st) = run_json(&p, "world");
    assert!(!snap);
    assert!(st.contains(&("count".into(), "ran".into())), "{st:?}");
    settled(&p);
    p.write(
        "pipeline.yaml",
        &PIPE.replace(
            "kind: command\n    inputs: [data/raw.csv]",
            "kind: comand\n    inputs: [data/raw.csv]",
        ),
    );
    let r = p.run(&["run"]);
    r.code(3);
    assert!(r.stderr.contains("unknown kind \"comand\""), "{}", r.stderr);
}

#[test]
fn noop_snapshot_misses_on_a_deleted_or_edited_output() {
    let p = project();
    settled(&p);
    std::fs::remove_file(p.path("out/count.txt")).unwrap();
    let (snap, st) = run_json(&p, "world");
    assert!(!snap);
    assert!(st.contains(&("count".into(), "restored".into())), "{st:?}");
    settled(&p);
    p.write("out/clean.csv", "edited\n");
    let (snap, st) = run_json(&p, "world");
    assert!(!snap);
    assert!(st.contains(&("clean".into(), "restored".into())), "{st:?}");
    assert_eq!(p.read("out/clean.csv"), "a,b\n1,2\n");
}

#[test]
fn noop_snapshot_misses_when_a_passed_through_variable_changes() {
    let p = project();
    settled(&p);
    let (snap, st) = run_json(&p, "moon");
    assert!(!snap);
    assert!(st.contains(&("greet".into(), "ran".into())), "{st:?}");
    assert_eq!(p.read("out/greet.txt"), "moon\n");
}

#[test]
fn noop_snapshot_that_is_corrupt_or_foreign_is_ignored() {
    let p = project();
    settled(&p);
    for junk in ["", "{", "\u{0}\u{1}garbage", "{\"format\": 99}", "[]"] {
        p.write(".artifact/noop.json", junk);
        let (snap, st) = run_json(&p, "world");
        assert!(!snap, "{junk:?} answered");
        assert_eq!(st, all("cached"));
    }
    // A deleted pipeline.lock is regenerated by the full path.
    settled(&p);
    std::fs::remove_file(p.path("pipeline.lock")).unwrap();
    let (snap, _) = run_json(&p, "world");
    assert!(!snap);
    assert!(p.path("pipeline.lock").is_file());
}

#[test]
fn named_stages_and_force_take_the_full_path() {
    let p = project();
    settled(&p);
    let out = p
        .cmd(&["--json", "run", "count"])
        .env("WHO", "world")
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(!s.lines().next().unwrap().contains("snapshot"), "{s}");
    let out = p
        .cmd(&["--json", "run", "--force", "-j", "1"])
        .env("WHO", "world")
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(s.matches("\"status\":\"ran\"").count(), 3, "{s}");
}
