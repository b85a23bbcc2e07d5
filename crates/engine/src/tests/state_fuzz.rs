//! Property test: every reader of a state file (`.artifact/stages.json`, `.artifact/runs/*.json`,
//! `.artifact/stat.json`, `pipeline.lock`, `.artifact/last-run.json`) and the pipeline YAML
//! loader, fed random bytes or random mutations of valid files, never panics; the engine then
//! plans, explains and runs on top of whatever it read.
//!
//! 256 cases (`CASES`), each one mutated file in a fresh copy of a project that ran once.

use proptest::prelude::*;

use super::*;
use crate::exec::Decision;

const CASES: u32 = 256;

const PIPELINE: &str = r#"version: 1
stages:
  a: {kind: fake, inputs: [in.txt], outputs: [out/a.txt], with: {text: "a"}}
  b: {kind: fake, inputs: [out/a.txt], outputs: [out/b.txt], with: {text: "b"}}
  c: {kind: command, outputs: [out/c.txt], with: {run: "mkdir -p out && echo c > out/c.txt", env: [HOME]}}
"#;

/// The state files of a project after one successful run: (relative path, bytes).
fn valid_state() -> Vec<(String, Vec<u8>)> {
    let p = Proj::new(PIPELINE, &[("in.txt", "x\n")]);
    p.run();
    p.write(
        ".artifact/last-run.json",
        r#"{"wall_millis": 3, "jobs": 0, "stages": [{"stage": "a", "kind": "fake", "status": "ran", "millis": 1}]}"#,
    );
    let mut files = vec![
        "pipeline.yaml".to_string(),
        "pipeline.lock".into(),
        ".artifact/stages.json".into(),
        ".artifact/stat.json".into(),
        ".artifact/last-run.json".into(),
    ];
    for e in std::fs::read_dir(p.root().join(".artifact/runs"))
        .unwrap()
        .flatten()
    {
        files.push(format!(
            ".artifact/runs/{}",
            e.file_name().to_string_lossy()
        ));
    }
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let b = std::fs::read(p.root().join(&f)).unwrap();
            (f, b)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Random(Vec<u8>),
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    /// Every 64-hex digest replaced by this (short, empty, non-hex, multibyte) text.
    Digests(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Mutation::Random),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        "[a-fé0-9\"\\\\{}]{0,20}".prop_map(Mutation::Digests),
    ]
}

fn apply(m: &Mutation, bytes: &[u8]) -> Vec<u8> {
    let at = |i: usize| if bytes.is_empty() { 0 } else { i % bytes.len() };
    match m {
        Mutation::Random(b) => b.clone(),
        Mutation::Truncate(i) => bytes.get(..at(*i)).unwrap_or_default().to_vec(),
        Mutation::Flip(i, b) => {
            let mut v = bytes.to_vec();
            if let Some(x) = v.get_mut(at(*i)) {
                *x ^= b | 1;
            }
            v
        }
        Mutation::Insert(i, b) => {
            let mut v = bytes.to_vec();
            let k = at(*i);
            v.splice(k..k, b.iter().copied());
            v
        }
        Mutation::Digests(s) => {
            let text = String::from_utf8_lossy(bytes);
            let mut out = String::new();
            let mut run = String::new();
            for ch in text.chars() {
                if ch.is_ascii_hexdigit() {
                    run.push(ch);
                    continue;
                }
                out.push_str(if run.len() == 64 { s } else { &run });
                run.clear();
                out.push(ch);
            }
            out.push_str(if run.len() == 64 { s } else { &run });
            out.into_bytes()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]
    #[test]
    fn state_file_readers_never_panic(file in any::<prop::sample::Index>(), m in mutation()) {
        let state = valid_state_cached();
        let (name, bytes) = &state[file.index(state.len())];
        let p = Proj::new(PIPELINE, &[("in.txt", "x\n")]);
        for (f, b) in state.iter() {
            let full = p.root().join(f);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, b).unwrap();
        }
        std::fs::create_dir_all(p.root().join("out")).unwrap();
        let mutated = apply(&m, bytes);
        std::fs::write(p.root().join(name), &mutated).unwrap();

        // Direct readers.
        let _ = crate::lockfile::LockFile::read(&p.root().join("pipeline.lock"));
        let _ = crate::lockfile::LockFile::read_or_regenerate(&p.root().join("pipeline.lock"));
        let stat = crate::hash::StatCache::load(&p.root().join(".artifact/stat.json"));
        let _ = stat.digest(p.root(), "in.txt");
        let cache = crate::cache::Cache::new(p.root());
        for s in ["a", "b", "c"] {
            if let Some(r) = cache.last(s) {
                let _ = cache.by_key(&r.key_digest);
                let _ = r.key.diff(&r.key).iter().map(ToString::to_string).count();
            }
        }
        let _ = serde_json::from_slice::<serde_json::Value>(&mutated);
        let Ok(pipeline) = crate::spec::load(&p.root().join("pipeline.yaml"), &p.registry) else {
            // The YAML loader rejected the mutated pipeline without panicking: enough.
            return Ok(());
        };
        // Consumers: plan, why (key diffs), run, lock update.
        let plan = Plan::new(&pipeline).unwrap();
        let cancel = AtomicBool::new(false);
        let engine = Engine::new(&pipeline, &plan, &p.registry, RunEnv::default(), &cancel);
        for (i, v) in engine.plan_decisions(&[]) {
            if let Ok(Decision::Restore(_, r) | Decision::Run(r)) = v {
                let _ = r.to_string();
            }
            let _ = engine.upstream_known(i);
            if let (Ok((key, _, _)), Some(last)) = (
                engine.evaluate(i, &Default::default(), false),
                engine.cache.last(&pipeline.stages[i].name),
            ) {
                let _ = key.diff(&last.key).iter().map(ToString::to_string).count();
            }
        }
        let res = engine.run(&[], &Options { jobs: 1, force: false }, &mut |_| {});
        // A damaged state file never fails a stage (a mutated pipeline may: its commands changed).
        for r in res.iter().filter(|_| name != "pipeline.yaml") {
            prop_assert!(r.status.ok(), "stage {} ended {:?} after {name} was mutated", r.stage, r.status);
        }
        prop_assert!(engine.update_lock(&p.root().join("pipeline.lock"), &res).is_ok());
    }
}

fn valid_state_cached() -> &'static [(String, Vec<u8>)] {
    static S: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    S.get_or_init(valid_state)
}
