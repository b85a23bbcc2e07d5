use super::*;

/// src.txt -> a -> b -> d ; src.txt -> c -> d ; other.txt -> e
const DIAMOND: &str = r#"version: 1
stages:
  a:
    kind: fake
    inputs: [src.txt]
    outputs: [out/a.txt]
  b:
    kind: fake
    inputs: [out/a.txt]
    outputs: [out/b.txt]
    with: { text: "b" }
  c:
    kind: fake
    inputs: [src.txt]
    outputs: [out/c.txt]
  d:
    kind: fake
    inputs: [out/b.txt, out/c.txt]
    outputs: [out/d.txt]
  e:
    kind: fake
    inputs: [other.txt]
    outputs: [out/e.txt]
"#;

fn diamond() -> Proj {
    Proj::new(DIAMOND, &[("src.txt", "one\ntwo\n"), ("other.txt", "x\n")])
}

#[test]
fn first_run_runs_all_second_run_nothing() {
    let p = diamond();
    assert_eq!(p.run(), ["a", "b", "c", "d", "e"]);
    assert_eq!(p.read("out/d.txt"), "one\ntwo\nbone\ntwo\n");
    assert!(p.run().is_empty());
    let (_, res) = p.run_with(&Options::default(), &[]);
    assert!(res.iter().all(|r| r.status == Status::Fresh));
}

#[test]
fn order_respects_edges_and_is_sorted_single_threaded() {
    let p = diamond();
    let (log, _) = p.run_with(
        &Options {
            jobs: 1,
            force: false,
        },
        &[],
    );
    assert_eq!(log, ["a", "b", "c", "d", "e"]);
}

#[test]
fn editing_an_input_reruns_exactly_its_dependents() {
    let p = diamond();
    p.run();
    p.write("other.txt", "y\n");
    assert_eq!(p.run(), ["e"]);
    p.write("src.txt", "uno\ntwo\n");
    assert_eq!(p.run(), ["a", "b", "c", "d"]);
}

#[test]
fn param_change_reruns_stage_and_dependents() {
    let p = diamond();
    p.run();
    p.write(
        "pipeline.yaml",
        &DIAMOND.replace("text: \"b\"", "text: \"B\""),
    );
    assert_eq!(p.run(), ["b", "d"]);
}

#[test]
fn touch_and_fresh_copy_rerun_nothing() {
    let p = diamond();
    p.run();
    // touch: new mtime, same content
    let f = std::fs::File::options()
        .append(true)
        .open(p.root().join("src.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    assert!(p.run().is_empty());
    // a fresh copy of the whole project, cache included (new inodes and mtimes everywhere)
    let copy = Proj::new(DIAMOND, &[]);
    copy_tree(p.root(), copy.root());
    assert!(copy.run().is_empty());
    assert_eq!(copy.read("out/d.txt"), p.read("out/d.txt"));
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

#[test]
fn deleted_or_edited_output_is_restored_without_running() {
    let p = diamond();
    p.run();
    let before = p.read("out/b.txt");
    std::fs::remove_file(p.root().join("out/b.txt")).unwrap();
    p.write("out/c.txt", "tampered");
    let (log, res) = p.run_with(&Options::default(), &[]);
    assert!(log.is_empty(), "nothing runs, got {log:?}");
    assert_eq!(status_of(&res, "b"), &Status::Restored);
    assert_eq!(status_of(&res, "c"), &Status::Restored);
    assert_eq!(status_of(&res, "d"), &Status::Fresh);
    assert_eq!(p.read("out/b.txt"), before);
    assert_eq!(p.read("out/c.txt"), "one\ntwo\n");
}

#[test]
fn corrupt_object_is_discarded_and_the_stage_reruns() {
    let p = diamond();
    p.run();
    let digest = crate::hash::sha256_file(&p.root().join("out/a.txt")).unwrap();
    let cache = crate::cache::Cache::new(p.root());
    std::fs::write(cache.object_path(&digest), "garbage").unwrap();
    std::fs::remove_file(p.root().join("out/a.txt")).unwrap();
    let (log, res) = p.run_with(&Options::default(), &[]);
    assert_eq!(log, ["a"]);
    assert_eq!(status_of(&res, "a"), &Status::Ran);
    assert_eq!(
        status_of(&res, "b"),
        &Status::Fresh,
        "same bytes: dependents stay cached"
    );
    assert_eq!(
        crate::hash::sha256_file(&cache.object_path(&digest)).unwrap(),
        digest
    );
}

#[test]
fn early_cutoff_keeps_dependents_cached() {
    let yaml = r#"version: 1
stages:
  head:
    kind: fake
    inputs: [src.txt]
    outputs: [head.txt]
    with: { first_line: true }
  after:
    kind: fake
    inputs: [head.txt]
    outputs: [after.txt]
"#;
    let p = Proj::new(yaml, &[("src.txt", "one\ntwo\n")]);
    p.run();
    p.write("src.txt", "one\nTWO\n");
    let (log, res) = p.run_with(&Options::default(), &[]);
    assert_eq!(log, ["head"]);
    assert_eq!(status_of(&res, "head"), &Status::Ran);
    assert_eq!(status_of(&res, "after"), &Status::Fresh);
}

#[test]
fn reverting_an_edit_restores_from_the_run_cache() {
    let p = diamond();
    p.run();
    p.write("other.txt", "y\n");
    assert_eq!(p.run(), ["e"]);
    p.write("other.txt", "x\n");
    let (log, res) = p.run_with(&Options::default(), &[]);
    assert!(log.is_empty());
    assert_eq!(status_of(&res, "e"), &Status::Restored);
    assert_eq!(p.read("out/e.txt"), "x\n");
}

#[test]
fn failure_keeps_previous_outputs_finishes_siblings_skips_dependents() {
    let p = diamond();
    p.run();
    let good_b = p.read("out/b.txt");
    p.write(
        "pipeline.yaml",
        &DIAMOND.replace(
            "with: { text: \"b\" }",
            "with: { text: \"b2\", fail: true }",
        ),
    );
    p.write("src.txt", "changed\n");
    let (log, res) = p.run_with(&Options::default(), &[]);
    assert_eq!(status_of(&res, "a"), &Status::Ran);
    assert!(matches!(status_of(&res, "b"), Status::Failed(m) if m == "boom"));
    assert_eq!(
        status_of(&res, "c"),
        &Status::Ran,
        "independent sibling finishes"
    );
    assert!(matches!(status_of(&res, "d"), Status::Skipped(m) if m.contains("b")));
    assert!(!log.contains(&"d".to_string()));
    assert_eq!(p.read("out/b.txt"), good_b, "previous good output stays");
}

#[test]
fn failing_command_in_place_gets_previous_outputs_back() {
    let yaml = r#"version: 1
stages:
  clean:
    kind: command
    inputs: [data/raw.csv]
    outputs: [out/clean.csv]
    with: { run: "mkdir -p out && cat data/raw.csv > out/clean.csv" }
"#;
    let p = Proj::new(yaml, &[("data/raw.csv", "a,b\n1,2\n")]);
    p.run();
    assert_eq!(p.read("out/clean.csv"), "a,b\n1,2\n");
    p.write(
        "pipeline.yaml",
        &yaml.replace(
            "cat data/raw.csv > out/clean.csv",
            "echo half > out/clean.csv; exit 3",
        ),
    );
    let (_, res) = p.run_with(&Options::default(), &[]);
    assert!(matches!(status_of(&res, "clean"), Status::Failed(m) if m.contains("exit code 3")));
    assert_eq!(p.read("out/clean.csv"), "a,b\n1,2\n");
    // The runner's own peak memory says nothing of a command: none is reported for it.
    let clean = res.iter().find(|r| r.stage == "clean").expect("result");
    assert_eq!(clean.peak_rss_kib, None);
}

#[test]
fn command_environment_is_fixed() {
    let yaml = r#"version: 1
stages:
  env:
    kind: command
    outputs: [env.txt]
    with: { run: "env | grep -v '^PWD=' | grep -v '^SHLVL=' | grep -v '^_=' | sort > env.txt" }
"#;
    let p = Proj::new(yaml, &[]);
    p.run();
    let env = p.read("env.txt");
    let names: Vec<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(names, ["LC_ALL", "PATH", "SOURCE_DATE_EPOCH", "TZ"]);
    assert!(env.contains("TZ=UTC\n") && env.contains("LC_ALL=C\n"));
}

#[test]
fn targets_run_only_their_upstream() {
    let p = diamond();
    let (log, res) = p.run_with(&Options::default(), &["b"]);
    let mut log = log;
    log.sort();
    assert_eq!(log, ["a", "b"]);
    assert_eq!(res.len(), 2);
}

#[test]
fn force_reruns_selected_stages() {
    let p = diamond();
    p.run();
    let (log, _) = p.run_with(
        &Options {
            jobs: 0,
            force: true,
        },
        &["e"],
    );
    assert_eq!(log, ["e"]);
}

#[test]
fn lock_file_lists_keys_and_outputs_sorted() {
    let p = diamond();
    p.run();
    let lock = p.read("pipeline.lock");
    let parsed = crate::lockfile::LockFile::read(&p.root().join("pipeline.lock"))
        .unwrap()
        .unwrap();
    assert_eq!(
        parsed.stages.keys().collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        parsed.stages["e"].outputs["out/e.txt"],
        crate::hash::sha256_bytes(b"x\n")
    );
    // A second run leaves the file byte-identical.
    p.run();
    assert_eq!(p.read("pipeline.lock"), lock);
}

#[test]
fn a_second_lock_holder_waits_or_fails() {
    let p = diamond();
    let cache = crate::cache::Cache::new(p.root());
    let held = cache.lock(false, || {}).unwrap();
    let err = cache.lock(false, || {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    // The waiter reports that it waits (a channel, not a sleep); only then is the lock
    // released, and the waiter gets it.
    let (waiting, waits) = std::sync::mpsc::channel();
    let c2 = cache.clone();
    let t = std::thread::spawn(move || {
        let _l = c2.lock(true, || waiting.send(()).unwrap()).unwrap();
    });
    // A generous guard against a hang, not a timing assertion.
    waits
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the second lock waits for the first");
    drop(held);
    t.join().unwrap();
}

#[test]
fn gc_drops_unreferenced_objects_only() {
    let p = diamond();
    p.run();
    p.write("other.txt", "y\n");
    p.run();
    let cache = crate::cache::Cache::new(p.root());
    cache.drop_old_runs().unwrap();
    let (n, _) = cache.gc().unwrap();
    assert_eq!(n, 1, "only the old out/e.txt content goes");
    std::fs::remove_file(p.root().join("out/e.txt")).unwrap();
    let (log, _) = p.run_with(&Options::default(), &[]);
    assert!(log.is_empty(), "current outputs still restore");
}

#[test]
fn a_lost_stage_index_loses_nothing() {
    // As if the previous run was killed after its stages finished but before the index was
    // written: the run records still say what each key produced.
    let p = diamond();
    p.run();
    std::fs::remove_file(p.root().join(".artifact/stages.json")).unwrap();
    let (log, res) = p.run_with(&Options::default(), &[]);
    assert!(log.is_empty(), "nothing reruns, got {log:?}");
    assert!(res.iter().all(|r| r.status == Status::Restored));
    assert!(p.run().is_empty());
}

#[test]
fn a_failed_rerun_after_a_damaged_cache_still_puts_every_output_back() {
    // b.txt is edited by hand and its stored copy is gone, so the stage must rerun; the rerun
    // half-writes a.txt and fails: a.txt must get its previous content back even though it was
    // already hashed (unchanged) earlier in the same run.
    let yaml = r#"version: 1
stages:
  two:
    kind: command
    outputs: [a.txt, b.txt]
    with: { run: "if test -f fail; then printf partial > a.txt; exit 1; fi; printf A > a.txt; printf B > b.txt" }
"#;
    let p = Proj::new(yaml, &[]);
    p.run();
    let cache = crate::cache::Cache::new(p.root());
    std::fs::remove_file(cache.object_path(&crate::hash::sha256_bytes(b"B"))).unwrap();
    p.write("b.txt", "edited");
    p.write("fail", "");
    let (_, res) = p.run_with(&Options::default(), &[]);
    assert!(matches!(status_of(&res, "two"), Status::Failed(_)));
    assert_eq!(p.read("a.txt"), "A");
}
