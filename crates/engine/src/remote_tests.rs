//! The remote-cache protocol logic against an in-memory [`FakeRemote`]: two clones sharing
//! results, and every way a remote can fail or lie.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::fake::{FakeRemote, Shared};
use super::*;
use crate::exec::{Engine, Options, RunEnv, StageResult, Status};
use crate::plan::Plan;
use crate::tests::Proj;

const PIPE: &str = r#"version: 1
stages:
  a:
    kind: fake
    inputs: [src.txt]
    outputs: [out/a.txt]
  b:
    kind: fake
    inputs: [out/a.txt]
    outputs: [out/b.txt, out/b2.txt]
    with: { text: "b" }
"#;

fn clone() -> Proj {
    Proj::new(PIPE, &[("src.txt", "one\n")])
}

/// Runs `p` with the remote `fake` (reads on, writes as given); returns (stages the fake kind
/// ran, results, warnings).
fn run(
    p: &Proj,
    fake: &Arc<FakeRemote>,
    write: bool,
    force: bool,
) -> (Vec<String>, Vec<StageResult>, Vec<String>) {
    p.fake.log.lock().unwrap().clear();
    let pipeline = p.pipeline();
    let plan = Plan::new(&pipeline).unwrap();
    let cancel = AtomicBool::new(false);
    let mut engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
    let mut rc = RemoteCache::new(Box::new(Shared(fake.clone())), true, write);
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = heard.clone();
    rc.on_warning = Some(Box::new(move |m| h.lock().unwrap().push(m.to_string())));
    engine.remote = Some(rc);
    let opts = Options { jobs: 1, force };
    let res = engine.run(&[], &opts, &mut |_| {});
    let warnings = engine.remote.as_ref().unwrap().warnings();
    // The engine prints nothing: each warning reaches the caller's hook once, as it happens.
    assert_eq!(*heard.lock().unwrap(), warnings);
    let mut log = p.fake.log.lock().unwrap().clone();
    log.sort();
    (log, res, warnings)
}

fn statuses(res: &[StageResult]) -> Vec<(String, Status, bool)> {
    res.iter()
        .map(|r| (r.stage.clone(), r.status.clone(), r.fetched))
        .collect()
}

fn cas_paths(fake: &FakeRemote) -> Vec<String> {
    fake.objects
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("cas/"))
        .cloned()
        .collect()
}

#[test]
fn a_second_clone_fetches_everything_and_runs_nothing() {
    let fake = Arc::new(FakeRemote::default());
    let a = clone();
    let (ran, _, w) = run(&a, &fake, true, false);
    assert_eq!(ran, ["a", "b"]);
    assert!(w.is_empty(), "{w:?}");
    // Blobs first, manifests last: every PUT of a manifest comes after its blobs.
    let log = fake.log.lock().unwrap().clone();
    let puts: Vec<&String> = log.iter().filter(|l| l.starts_with("PUT")).collect();
    assert_eq!(puts.iter().filter(|l| l.contains(" ac/")).count(), 2);
    assert!(puts.last().unwrap().contains(" ac/"), "{puts:?}");
    let b = clone();
    let (ran, res, w) = run(&b, &fake, false, false);
    assert!(ran.is_empty(), "clone B ran {ran:?}");
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(
        statuses(&res),
        [
            ("a".to_string(), Status::Restored, true),
            ("b".to_string(), Status::Restored, true)
        ]
    );
    for f in ["out/a.txt", "out/b.txt", "out/b2.txt"] {
        assert_eq!(a.read(f), b.read(f), "{f}");
    }
    // Reads only: clone B never wrote (A wrote 2 blobs, b's two outputs being equal, and 2
    // manifests).
    assert_eq!(fake.count("PUT"), 4, "{:?}", fake.log.lock().unwrap());
    // And B is now fresh locally without asking the remote.
    let before = fake.log.lock().unwrap().len();
    let (ran, res, _) = run(&b, &fake, false, false);
    assert!(ran.is_empty());
    assert!(res.iter().all(|r| r.status == Status::Fresh && !r.fetched));
    assert_eq!(fake.log.lock().unwrap().len(), before);
}

#[test]
fn writes_are_opt_in() {
    let fake = Arc::new(FakeRemote::default());
    let a = clone();
    run(&a, &fake, false, false);
    assert_eq!(fake.count("PUT"), 0);
    assert!(fake.objects.lock().unwrap().is_empty());
}

#[test]
fn a_tampered_blob_is_a_miss_and_the_stage_reruns() {
    let fake = Arc::new(FakeRemote::default());
    run(&clone(), &fake, true, false);
    // Replace a's output blob with other bytes under the same name (nginx accepts that).
    let a_digest = crate::hash::sha256_bytes(b"one\n");
    let path = format!("cas/{a_digest}");
    assert!(fake.objects.lock().unwrap().contains_key(&path));
    fake.objects
        .lock()
        .unwrap()
        .insert(path.clone(), b"evil\n".to_vec());
    let b = clone();
    let (ran, res, w) = run(&b, &fake, false, false);
    assert_eq!(
        ran,
        ["a"],
        "only the stage whose blob was tampered with reruns"
    );
    assert_eq!(b.read("out/a.txt"), "one\n");
    assert!(!res[0].fetched && res[0].status == Status::Ran);
    assert!(res[1].fetched, "b's own blobs are intact");
    assert!(
        w.iter()
            .any(|m| m.contains(&path) && m.contains("tampered")),
        "{w:?}"
    );
    // The bad bytes never reached the local store.
    let obj = b
        .root()
        .join(".artifact/objects")
        .join(&a_digest[..2])
        .join(&a_digest[2..]);
    assert_eq!(std::fs::read(obj).unwrap(), b"one\n");
}

#[test]
fn a_manifest_whose_blobs_are_gone_is_a_miss() {
    let fake = Arc::new(FakeRemote::default());
    run(&clone(), &fake, true, false);
    for k in cas_paths(&fake) {
        fake.objects.lock().unwrap().remove(&k);
    }
    let b = clone();
    let (ran, res, w) = run(&b, &fake, false, false);
    assert_eq!(ran, ["a", "b"]);
    assert!(res.iter().all(|r| r.status == Status::Ran));
    assert!(
        w.iter().any(|m| m.contains("is gone from the server")),
        "{w:?}"
    );
}

#[test]
fn a_foreign_or_garbled_manifest_is_a_miss() {
    let fake = Arc::new(FakeRemote::default());
    run(&clone(), &fake, true, false);
    let acs: Vec<String> = fake
        .objects
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("ac/"))
        .cloned()
        .collect();
    // One manifest is garbage, the other names outputs the stage does not declare.
    let mut objs = fake.objects.lock().unwrap();
    let mut first = true;
    for k in &acs {
        if first {
            objs.insert(k.clone(), b"{not json".to_vec());
            first = false;
        } else {
            let mut m: Manifest = serde_json::from_slice(&objs[k]).unwrap();
            let d = m.outputs.values().next().unwrap().clone();
            m.outputs.insert("../../etc/passwd".into(), d);
            objs.insert(k.clone(), serde_json::to_vec(&m).unwrap());
        }
    }
    drop(objs);
    let b = clone();
    let (ran, _, w) = run(&b, &fake, false, false);
    assert_eq!(ran, ["a", "b"]);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().all(|m| m.contains("treated as a miss")), "{w:?}");
}

#[test]
fn an_unreachable_server_is_asked_once_and_the_run_completes_locally() {
    let fake = Arc::new(FakeRemote::default());
    *fake.fail.lock().unwrap() = Some(RemoteError::Unreachable("connection refused".into()));
    let a = clone();
    let (ran, res, w) = run(&a, &fake, true, false);
    assert_eq!(ran, ["a", "b"]);
    assert!(res.iter().all(|r| r.status == Status::Ran));
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("continuing without the remote cache"),
        "{w:?}"
    );
    assert_eq!(
        fake.log.lock().unwrap().len(),
        1,
        "asked once, then left alone"
    );
}

#[test]
fn server_errors_are_misses_with_a_warning() {
    let fake = Arc::new(FakeRemote::default());
    *fake.fail.lock().unwrap() = Some(RemoteError::Status(503, "Service Unavailable".into()));
    let (ran, res, w) = run(&clone(), &fake, true, false);
    assert_eq!(ran, ["a", "b"]);
    assert!(res.iter().all(|r| r.status.ok()));
    assert!(w.iter().any(|m| m.contains("503")), "{w:?}");
}

#[test]
fn a_write_without_credentials_is_refused_and_reads_still_work() {
    let fake = Arc::new(FakeRemote::default());
    run(&clone(), &fake, true, false);
    fake.read_only.store(true, Ordering::SeqCst);
    // Another clone with a different input: runs, cannot upload (401), says so once.
    let c = Proj::new(PIPE, &[("src.txt", "two\n")]);
    let (ran, res, w) = run(&c, &fake, true, false);
    assert_eq!(ran, ["a", "b"]);
    assert!(res.iter().all(|r| r.status == Status::Ran));
    assert!(w.iter().any(|m| m.contains("401")), "{w:?}");
    // Reads still work for the original input.
    let (ran, _, _) = run(&clone(), &fake, true, false);
    assert!(ran.is_empty());
}

#[test]
fn a_failed_stage_uploads_nothing() {
    let fake = Arc::new(FakeRemote::default());
    let p = Proj::new(
        "version: 1\nstages:\n  bad:\n    kind: fake\n    outputs: [o.txt]\n    with: { fail: true }\n",
        &[],
    );
    let (_, res, _) = run(&p, &fake, true, false);
    assert!(matches!(res[0].status, Status::Failed(_)));
    assert_eq!(fake.count("PUT"), 0);
}

#[test]
fn a_command_that_edits_its_input_is_not_uploaded() {
    let fake = Arc::new(FakeRemote::default());
    let p = Proj::new(
        "version: 1\nstages:\n  sneaky:\n    kind: command\n    inputs: [in.txt]\n    outputs: [o.txt]\n    with: { run: \"cp in.txt o.txt && echo more >> in.txt\" }\n",
        &[("in.txt", "x\n")],
    );
    // Such a stage fails (its outputs are recorded nowhere, locally or remotely): see
    // `tests::trust::an_input_edited_while_its_stage_runs_fails_the_stage`.
    let (_, res, _) = run(&p, &fake, true, false);
    let failed = matches!(&res[0].status, Status::Failed(m) if m.starts_with("input in.txt changed while the stage ran"));
    assert!(failed, "{:?}", res[0].status);
    assert_eq!(fake.count("PUT"), 0, "{:?}", fake.log.lock().unwrap());
}

#[test]
fn a_forced_run_does_not_fetch() {
    let fake = Arc::new(FakeRemote::default());
    run(&clone(), &fake, true, false);
    let b = clone();
    let (ran, _, _) = run(&b, &fake, false, true);
    assert_eq!(ran, ["a", "b"]);
}

#[test]
fn push_then_pull_fills_a_clone_without_running() {
    let fake = Arc::new(FakeRemote::default());
    let a = clone();
    run(&a, &fake, false, false);
    assert!(fake.objects.lock().unwrap().is_empty());
    let with_engine = |p: &Proj, f: &dyn Fn(&Engine<'_>) -> Transfer| -> Transfer {
        let pipeline = p.pipeline();
        let plan = Plan::new(&pipeline).unwrap();
        let cancel = AtomicBool::new(false);
        let mut engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
        engine.remote = Some(RemoteCache::new(Box::new(Shared(fake.clone())), true, true));
        f(&engine)
    };
    let t = with_engine(&a, &|e| e.push());
    assert_eq!(t.done, ["a", "b"]);
    assert_eq!(t.blobs, 2, "b's two outputs are the same bytes: one blob");
    let t = with_engine(&a, &|e| e.push());
    assert_eq!(t.present, ["a", "b"], "a second push sends nothing");
    assert!(t.done.is_empty());
    let b = clone();
    let t = with_engine(&b, &|e| e.pull());
    assert_eq!(t.done, ["a", "b"]);
    assert!(
        !b.root().join("out/a.txt").exists(),
        "pull only fills the cache"
    );
    // A run without any remote now restores everything from the local cache.
    let (ran, res) = b.run_with(&Options::default(), &[]);
    assert!(ran.is_empty());
    assert!(
        res.iter()
            .all(|r| r.status == Status::Restored && !r.fetched)
    );
    assert_eq!(b.read("out/b.txt"), a.read("out/b.txt"));
}

#[test]
fn the_manifest_name_mixes_in_the_format() {
    let k = "0".repeat(64);
    assert_ne!(ac_key(&k), k);
    assert_eq!(ac_key(&k).len(), 64);
}
