//! A stage may wait for another: stages run on threads of their own, never as jobs of a rayon
//! pool, where a worker waiting for rayon work inside one stage could take up another stage
//! and run it on top of itself (that stage then never returns if it waits for the first).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::exec::{Engine, Options};
use crate::kind::{Kind, Registry, RunEnv, StageCtx, StageError};
use crate::plan::Plan;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockerParams {
    /// Hold the lock while waiting for rayon work; else wait for the lock.
    hold: bool,
}

/// Shares one lock between its stages (as the column store of the `aggregate` kind shares a
/// table being read).
#[derive(Clone, Default)]
struct Locker {
    lock: Arc<Mutex<()>>,
}

impl Kind for Locker {
    type Params = LockerParams;
    fn name(&self) -> &'static str {
        "locker"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, p: &LockerParams, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let nap = |ms| std::thread::sleep(Duration::from_millis(ms));
        if p.hold {
            let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            // Rayon work that outlasts the other stage's start: one arm may be stolen, and
            // this thread then waits for it.
            rayon::join(|| nap(200), || rayon::join(|| nap(200), || nap(200)));
        } else {
            nap(20);
            let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        }
        for o in &ctx.stage.outputs {
            std::fs::write(ctx.output(&o.path)?, "done")?;
        }
        Ok(())
    }
}

#[test]
fn a_stage_may_wait_for_another_that_waits_for_rayon_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = String::from("version: 1\nstages:\n");
    for i in 0..4 {
        text.push_str(&format!(
            "  h{i}:\n    kind: locker\n    outputs: [h{i}.txt]\n    with: {{hold: true}}\n  w{i}:\n    kind: locker\n    outputs: [w{i}.txt]\n    with: {{hold: false}}\n"
        ));
    }
    std::fs::write(dir.path().join("pipeline.yaml"), &text).expect("write");
    let root = dir.path().to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let registry = Registry::new().with(Locker::default());
        let pipeline = crate::spec::load(&root.join("pipeline.yaml"), &registry)
            .unwrap_or_else(|d| panic!("invalid pipeline:\n{d}"));
        let plan = Plan::new(&pipeline).expect("plan");
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let engine = Engine::new(&pipeline, &plan, &registry, RunEnv::default(), &cancel);
        let opts = Options {
            jobs: 2,
            force: false,
        };
        let res = engine.run(&[], &opts, &mut |_| {});
        let _ = tx.send(res.iter().all(|r| r.status.ok()) && res.len() == 8);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(ok) => assert!(ok, "every stage succeeds"),
        Err(_) => panic!("the run did not end within 60 s: a stage waits for one run on its stack"),
    }
}
