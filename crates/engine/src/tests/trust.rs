//! Never lose a file: outputs that existed before a stage first ran, in-place stages that do not
//! rewrite their outputs, writes and deletes that a symlink could redirect, leftover temporary
//! files.

use std::sync::atomic::Ordering;

use super::*;

fn failed_message(res: &[StageResult], stage: &str) -> String {
    match status_of(res, stage) {
        Status::Failed(m) => m.clone(),
        other => panic!("stage {stage} ended {other:?}"),
    }
}

const FAILS: &str = "version: 1\nstages:\n  s: {kind: command, outputs: [data/notes.txt], with: {run: \"exit 1\"}}\n";

#[test]
fn failing_stage_keeps_preexisting_untracked_output() {
    let p = Proj::new(FAILS, &[("data/notes.txt", "precious\n")]);
    let (_, res) = p.run_with(&Options::default(), &[]);
    failed_message(&res, "s");
    assert_eq!(p.read("data/notes.txt"), "precious\n");
    // It waited aside (a rename, which a killed run's successor undoes:
    // `outputs_a_killed_run_moved_aside_come_back`) and came back: nothing was replaced, so
    // nothing is kept.
    assert!(!p.root().join(".artifact/kept").exists());
    // Nothing is left aside in the scratch folder.
    assert_eq!(
        std::fs::read_dir(p.root().join(".artifact/tmp"))
            .unwrap()
            .count(),
        0
    );
}

/// The run's one aside folder: every stage's previous outputs wait there (output paths are
/// unique, so they never collide), each stage's files go when it succeeds, and the folder goes
/// at the end of the run.
#[test]
fn stages_rewriting_their_outputs_share_one_aside_folder_that_the_run_removes() {
    let yaml = "version: 1\nstages:\n  a: {kind: command, outputs: [x/a.txt], with: {run: \"echo new-a > x/a.txt\"}}\n  b: {kind: command, outputs: [x/b.txt], with: {run: \"echo new-b > x/b.txt\"}}\n  c: {kind: command, outputs: [c.txt], with: {run: \"echo new-c > c.txt\"}}\n";
    let old = [
        ("x/a.txt", "old-a\n"),
        ("x/b.txt", "old-b\n"),
        ("c.txt", "old-c\n"),
    ];
    let p = Proj::new(yaml, &old);
    let opts = Options {
        jobs: 2,
        ..Options::default()
    };
    let (_, res) = p.run_with(&opts, &[]);
    for (s, path) in [("a", "x/a.txt"), ("b", "x/b.txt"), ("c", "c.txt")] {
        assert_eq!(status_of(&res, s), &Status::Ran);
        assert_eq!(p.read(path), format!("new-{s}\n"));
    }
    // The files replaced were the user's (no run made them): kept, where `gc` never looks.
    crate::cache::Cache::new(p.root()).gc().unwrap();
    for (path, text) in old {
        assert_eq!(p.read(&format!(".artifact/kept/{path}")), text);
    }
    let left: Vec<_> = std::fs::read_dir(p.root().join(".artifact/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn failing_stage_that_half_wrote_keeps_preexisting_untracked_output() {
    let yaml = "version: 1\nstages:\n  s: {kind: command, outputs: [data/notes.txt], with: {run: \"echo junk > data/notes.txt; exit 1\"}}\n";
    let p = Proj::new(yaml, &[("data/notes.txt", "precious\n")]);
    let (_, res) = p.run_with(&Options::default(), &[]);
    failed_message(&res, "s");
    assert_eq!(p.read("data/notes.txt"), "precious\n");
}

#[test]
fn interrupted_first_run_keeps_preexisting_untracked_output() {
    let yaml = "version: 1\nstages:\n  s: {kind: command, outputs: [data/notes.txt], with: {run: \"echo junk > data/notes.txt; sleep 5\"}}\n";
    let p = Proj::new(yaml, &[("data/notes.txt", "precious\n")]);
    let pipeline = p.pipeline();
    let plan = Plan::new(&pipeline).unwrap();
    let cancel = AtomicBool::new(false);
    let engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
    let res = std::thread::scope(|sc| {
        sc.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            cancel.store(true, Ordering::SeqCst);
        });
        engine.run(&[], &Options::default(), &mut |_| {})
    });
    assert_eq!(status_of(&res, "s"), &Status::Cancelled);
    assert_eq!(p.read("data/notes.txt"), "precious\n");
}

#[test]
fn in_place_stage_that_does_not_rewrite_its_output_fails_and_keeps_the_old_one() {
    let yaml = |run: &str| {
        format!(
            "version: 1\nstages:\n  s: {{kind: command, outputs: [out/a], with: {{run: \"{run}\"}}}}\n"
        )
    };
    let p = Proj::new(&yaml("mkdir -p out; echo v1 > out/a"), &[]);
    p.run();
    assert_eq!(p.read("out/a"), "v1\n");
    p.write("pipeline.yaml", &yaml("mkdir -p out; echo v2 > out/A"));
    let (_, res) = p.run_with(&Options::default(), &[]);
    let msg = failed_message(&res, "s");
    assert!(
        msg.contains("did not write its declared output out/a"),
        "{msg}"
    );
    assert_eq!(p.read("out/a"), "v1\n", "the previous output is put back");
    // Still the record of the v1 run: nothing claims the old bytes are the new command's.
    let lock = p.read("pipeline.lock");
    assert!(lock.contains(&crate::hash::sha256_bytes(b"v1\n")), "{lock}");
}

#[test]
fn missing_outputs_are_all_named() {
    let yaml = "version: 1\nstages:\n  s: {kind: command, outputs: [a, b, c], with: {run: \"echo > b\"}}\n";
    let p = Proj::new(yaml, &[]);
    let (_, res) = p.run_with(&Options::default(), &[]);
    let msg = failed_message(&res, "s");
    assert!(msg.contains("declared outputs a, c"), "{msg}");
    assert!(
        !p.root().join("b").exists(),
        "what the failed stage wrote goes"
    );
}

#[test]
fn restoring_over_a_hand_edited_output_stores_the_edit_first() {
    let yaml =
        "version: 1\nstages:\n  s: {kind: command, outputs: [a], with: {run: \"echo one > a\"}}\n";
    let p = Proj::new(yaml, &[]);
    p.run();
    p.write("a", "my edit\n");
    let (_, res) = p.run_with(&Options::default(), &[]);
    assert_eq!(status_of(&res, "s"), &Status::Restored);
    assert_eq!(p.read("a"), "one\n");
    // Kept for good: `gc` deleted the store's copy, the only one (an adversarial helper).
    crate::cache::Cache::new(p.root()).gc().unwrap();
    assert_eq!(p.read(".artifact/kept/a"), "my edit\n");
    // A second, different edit does not overwrite the first.
    p.write("a", "my second edit\n");
    p.run_with(&Options::default(), &[]);
    assert_eq!(p.read(".artifact/kept/a.1"), "my second edit\n");
    assert_eq!(p.read(".artifact/kept/a"), "my edit\n");
}

/// The same content a stage writes again needs no copy: a fresh clone with committed outputs
/// keeps nothing.
#[test]
fn replacing_a_file_with_the_same_content_keeps_nothing() {
    let yaml = "version: 1\nstages:\n  a: {kind: fake, outputs: [out/a.txt], with: {text: new}}\n  c: {kind: command, outputs: [c.txt], with: {run: \"echo c > c.txt\"}}\n";
    let p = Proj::new(yaml, &[("out/a.txt", "new"), ("c.txt", "c\n")]);
    p.run();
    assert!(!p.root().join(".artifact/kept").exists());
}

#[test]
fn scratch_stage_replacing_an_untracked_file_stores_it_first() {
    let yaml = "version: 1\nstages:\n  a: {kind: fake, outputs: [out/a.txt], with: {text: new}}\n";
    let p = Proj::new(yaml, &[("out/a.txt", "made by hand\n")]);
    assert_eq!(p.run(), ["a"]);
    assert_eq!(p.read("out/a.txt"), "new");
    crate::cache::Cache::new(p.root()).gc().unwrap();
    assert_eq!(p.read(".artifact/kept/out/a.txt"), "made by hand\n");
}

#[test]
fn delete_does_not_follow_a_folder_swapped_for_a_symlink_after_loading() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("a.txt"), "outside\n").unwrap();
    let p = Proj::new("version: 1\nstages: {}\n", &[("real/a.txt", "inside\n")]);
    std::os::unix::fs::symlink("real", p.root().join("out")).unwrap();
    let proj = crate::fsutil::Confined::new(p.root());
    // Checked when loaded: `out` was inside. Now it points outside.
    std::fs::remove_file(p.root().join("out")).unwrap();
    std::os::unix::fs::symlink(outside.path(), p.root().join("out")).unwrap();
    let e = proj.remove("out/a.txt").unwrap_err();
    assert!(e.to_string().contains("outside the project"), "{e}");
    let e = proj
        .copy_in(&p.root().join("real/a.txt"), "out/a.txt")
        .unwrap_err();
    assert!(e.to_string().contains("outside the project"), "{e}");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("a.txt")).unwrap(),
        "outside\n"
    );
    // Through a symlink that stays inside, it works.
    std::fs::remove_file(p.root().join("out")).unwrap();
    std::os::unix::fs::symlink("real", p.root().join("out")).unwrap();
    proj.remove("out/a.txt").unwrap();
    assert!(!p.root().join("real/a.txt").exists());
}

#[test]
fn delete_racing_a_symlink_swap_never_leaves_the_project() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("a.txt");
    std::fs::write(&victim, "outside\n").unwrap();
    let p = Proj::new("version: 1\nstages: {}\n", &[("real/a.txt", "inside\n")]);
    std::os::unix::fs::symlink("real", p.root().join("out")).unwrap();
    let proj = crate::fsutil::Confined::new(p.root());
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let tmp = p.root().join("out.new");
            for i in 0..400 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let target: &Path = if i % 2 == 0 {
                    outside.path()
                } else {
                    Path::new("real")
                };
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, p.root().join("out")).unwrap();
            }
            stop.store(true, Ordering::SeqCst);
        });
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) && n < 400 {
            let _ = std::fs::write(p.root().join("real/a.txt"), "inside\n");
            let _ = proj.remove("out/a.txt");
            n += 1;
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "outside\n");
}

#[test]
fn stale_temp_files_next_to_outputs_and_in_the_cache_are_swept() {
    let yaml = "version: 1\nstages:\n  s: {kind: command, outputs: [out/a], with: {run: \"mkdir -p out; echo one > out/a\"}}\n";
    let me = std::process::id();
    // PIDs above the kernel's maximum (4194304) are never alive.
    let p = Proj::new(
        yaml,
        &[
            ("out/.a.tmp.999999999.3", ""),
            ("out/.b.tex.tmp.999999998.0", ""),
            (&format!("out/.c.tmp.{me}.1"), ""),
            ("out/.notes.tmp", "mine"),
            ("out/x.tmp.999999999.1", "not ours: no leading dot"),
            (".artifact/tmp/.s.tmp.999999999.0/out/a", "scratch"),
            (".artifact/.stat.json.tmp.999999999.5", "half a stat cache"),
            (".artifact/runs/.abc.json.tmp.999999999.2", "half a record"),
        ],
    );
    p.run();
    // The cache's own state files are written through temporary siblings too (found by
    // scripts/chaos.sh: a kill -9 while the stat cache was being saved).
    assert!(
        !p.root()
            .join(".artifact/.stat.json.tmp.999999999.5")
            .exists()
    );
    assert!(
        !p.root()
            .join(".artifact/runs/.abc.json.tmp.999999999.2")
            .exists()
    );
    let left: BTreeSet<String> = std::fs::read_dir(p.root().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        BTreeSet::from([
            "a".to_string(),
            format!(".c.tmp.{me}.1"),
            ".notes.tmp".to_string(),
            "x.tmp.999999999.1".to_string(),
        ])
    );
    assert!(!p.root().join(".artifact/tmp/.s.tmp.999999999.0").exists());
}

#[test]
fn outputs_a_killed_run_moved_aside_come_back() {
    // As this version leaves them (one flat file per output) and as older versions did (the
    // output's own subfolders).
    for (slot, name) in [("data%2Fnotes.txt", "flat"), ("data/notes.txt", "nested")] {
        let p = Proj::new(
            FAILS,
            &[(
                &format!(".artifact/tmp/.aside+s.tmp.999999999.0/{slot}"),
                "precious\n",
            )],
        );
        let (_, res) = p.run_with(&Options::default(), &[]);
        failed_message(&res, "s");
        assert_eq!(p.read("data/notes.txt"), "precious\n", "{name}");
        assert!(
            !p.root()
                .join(".artifact/tmp/.aside+s.tmp.999999999.0")
                .exists(),
            "{name}"
        );
    }
}

/// A run killed while its command wrote the output: the file moved aside is the good one and
/// comes back over the half-written one, which is kept (an adversarial helper found the half
/// file kept and the good one dropped, then deleted by `gc`).
#[test]
fn a_half_written_output_of_a_killed_run_gives_way_to_the_file_moved_aside() {
    let p = Proj::new(
        FAILS,
        &[
            (
                ".artifact/tmp/.aside+s.tmp.999999999.0/data%2Fnotes.txt",
                "precious\n",
            ),
            ("data/notes.txt", "half writ"),
        ],
    );
    let (_, res) = p.run_with(&Options::default(), &[]);
    failed_message(&res, "s");
    crate::cache::Cache::new(p.root()).gc().unwrap();
    assert_eq!(p.read("data/notes.txt"), "precious\n");
    assert_eq!(p.read(".artifact/kept/data/notes.txt"), "half writ");
}

/// An output whose aside name would be longer than a file name may be: it waits at its own
/// path instead (every rerun failed with "File name too long").
#[test]
fn an_output_with_a_long_path_can_run_again() {
    let long = format!("out/{}/{}.txt", "d".repeat(130), "f".repeat(130));
    let yaml = format!(
        "version: 1\nstages:\n  s: {{kind: command, outputs: [\"{long}\"], with: {{run: \"mkdir -p out/{} && echo x > {long}\"}}}}\n",
        "d".repeat(130)
    );
    let p = Proj::new(&yaml, &[]);
    let (_, res) = p.run_with(&Options::default(), &[]);
    assert_eq!(status_of(&res, "s"), &Status::Ran);
    let (_, res) = p.run_with(
        &Options {
            force: true,
            ..Options::default()
        },
        &[],
    );
    assert_eq!(status_of(&res, "s"), &Status::Ran);
}

#[test]
fn temp_files_of_a_killed_run_not_yet_reaped_are_swept() {
    // A run killed with SIGKILL is a zombie until its parent waits for it, but its lock is
    // already released: the run that gets the lock next must sweep its aside folders and temp
    // files (scripts/chaos.sh found them kept, then never swept by the no-op fast path).
    let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
    let zpid = child.id();
    // Wait for the child to become a zombie: its state in /proc turns to Z once it exits.
    let stat = format!("/proc/{zpid}/stat");
    while !std::fs::read_to_string(&stat)
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
    {
        std::thread::yield_now();
    }
    assert!(!crate::fsutil::pid_alive(zpid), "a zombie counts as gone");
    let aside = format!(".artifact/tmp/.aside+s.tmp.{zpid}.0");
    let p = Proj::new(
        FAILS,
        &[
            (&format!("{aside}/data/notes.txt"), "precious\n"),
            (&format!("data/.notes.txt.tmp.{zpid}.1"), "half"),
        ],
    );
    let (_, res) = p.run_with(&Options::default(), &[]);
    child.wait().unwrap();
    failed_message(&res, "s");
    assert_eq!(p.read("data/notes.txt"), "precious\n");
    assert!(!p.root().join(&aside).exists());
    assert!(
        !p.root()
            .join(format!("data/.notes.txt.tmp.{zpid}.1"))
            .exists()
    );
}

#[test]
fn temp_names_are_recognised() {
    use crate::fsutil::temp_owner;
    assert_eq!(temp_owner(".taxonomy.tex.tmp.123.4"), Some(123));
    assert_eq!(temp_owner(".a.tmp.1.0"), Some(1));
    assert_eq!(temp_owner("a.tmp.1.0"), None);
    assert_eq!(temp_owner(".tmp.1.0"), None);
    assert_eq!(temp_owner(".a.tmp.x.0"), None);
    assert_eq!(temp_owner(".a.tmp.1."), None);
    assert_eq!(temp_owner(".a.txt"), None);
}

use std::collections::BTreeSet;

/// An input edited while its stage runs (here by the command itself, as an editor saving during
/// a long stage would): the outputs may come from either version, so they are not recorded
/// under the first version's key (they were, and restoring that state later brought back
/// output "B" for input "A"; an adversarial helper found it).
#[test]
fn an_input_edited_while_its_stage_runs_fails_the_stage() {
    let yaml = "version: 1\nstages:\n  s: {kind: command, inputs: [in.txt], outputs: [out.txt], with: {run: \"echo B > in.txt && cat in.txt > out.txt\"}}\n";
    let p = Proj::new(yaml, &[("in.txt", "A\n"), ("out.txt", "old\n")]);
    let (_, res) = p.run_with(&Options::default(), &[]);
    let msg = failed_message(&res, "s");
    assert!(
        msg.starts_with("input in.txt changed while the stage ran"),
        "{msg}"
    );
    // The previous output is back, and nothing was recorded.
    assert_eq!(p.read("out.txt"), "old\n");
    assert!(crate::cache::Cache::new(p.root()).last("s").is_none());
}
