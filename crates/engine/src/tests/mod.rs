//! Engine behaviour tests with a fake kind that logs what it runs: ordering, caching,
//! invalidation, restore, early cutoff, failures, locking and validation messages.

mod behaviour;
mod blocking;
mod matrix;
mod procs;
mod property;
mod state_fuzz;
mod trust;
mod validation;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::exec::{CommandKind, Engine, Options, StageResult, Status};
use crate::kind::{Kind, Registry, RunEnv, StageCtx, StageError};
use crate::plan::Plan;
use crate::spec::Pipeline;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FakeParams {
    #[serde(default)]
    text: String,
    #[serde(default)]
    first_line: bool,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    sleep_ms: u64,
    /// Sets the cancel flag (as a Ctrl-C would) and fails.
    #[serde(default)]
    interrupt: bool,
}

/// Writes, to each output, its inputs' contents concatenated plus `text` (or only the first
/// line of that with `first_line`), and logs its name.
#[derive(Clone, Default)]
pub(crate) struct Fake {
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Kind for Fake {
    type Params = FakeParams;
    fn name(&self) -> &'static str {
        "fake"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, p: &FakeParams, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        self.log.lock().unwrap().push(ctx.stage.name.clone());
        if p.sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(p.sleep_ms));
        }
        if p.fail {
            return Err("boom".into());
        }
        if p.interrupt {
            ctx.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            return Err("interrupted".into());
        }
        let mut s = String::new();
        for i in &ctx.stage.inputs {
            s.push_str(&std::fs::read_to_string(ctx.input(&i.path))?);
        }
        s.push_str(&p.text);
        if p.first_line {
            s = s.lines().next().unwrap_or("").to_string();
        }
        for o in &ctx.stage.outputs {
            std::fs::write(ctx.output(&o.path)?, &s)?;
        }
        Ok(())
    }
}

pub(crate) struct Proj {
    pub dir: tempfile::TempDir,
    pub fake: Fake,
    pub registry: Registry,
    /// The warnings of the last [`Proj::run_with`] (run events, then the lock update).
    pub warnings: Mutex<Vec<String>>,
}

impl Proj {
    pub fn new(pipeline: &str, files: &[(&str, &str)]) -> Proj {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::default();
        let registry = Registry::new().with(fake.clone()).with(CommandKind);
        let p = Proj {
            dir,
            fake,
            registry,
            warnings: Mutex::new(Vec::new()),
        };
        p.write("pipeline.yaml", pipeline);
        for (f, c) in files {
            p.write(f, c);
        }
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root().join(rel)).unwrap()
    }

    pub fn pipeline(&self) -> Pipeline {
        crate::spec::load(&self.root().join("pipeline.yaml"), &self.registry)
            .unwrap_or_else(|d| panic!("invalid pipeline:\n{d}"))
    }

    /// Runs everything; returns (names of stages the fake kind ran, in order; results).
    pub fn run_with(&self, opts: &Options, targets: &[&str]) -> (Vec<String>, Vec<StageResult>) {
        self.fake.log.lock().unwrap().clear();
        let pipeline = self.pipeline();
        let plan = Plan::new(&pipeline).unwrap();
        let cancel = AtomicBool::new(false);
        let engine = Engine::new(&pipeline, &plan, &self.registry, RunEnv::default(), &cancel);
        let idx: Vec<usize> = targets
            .iter()
            .map(|t| pipeline.stages.iter().position(|s| s.name == *t).unwrap())
            .collect();
        let mut warnings = Vec::new();
        let res = engine.run(&idx, opts, &mut |e| {
            if let crate::exec::Event::Warning(w) = e {
                warnings.push(w.to_string());
            }
        });
        let (_, w) = engine
            .update_lock(&self.root().join("pipeline.lock"), &res)
            .unwrap();
        warnings.extend(w.map(|w| w.to_string()));
        *self.warnings.lock().unwrap() = warnings;
        (self.fake.log.lock().unwrap().clone(), res)
    }

    pub fn run(&self) -> Vec<String> {
        let (log, res) = self.run_with(&Options::default(), &[]);
        for r in &res {
            assert!(r.status.ok(), "stage {} ended {:?}", r.stage, r.status);
        }
        let mut log = log;
        log.sort();
        log
    }
}

pub(crate) fn status_of<'a>(res: &'a [StageResult], stage: &str) -> &'a Status {
    &res.iter().find(|r| r.stage == stage).unwrap().status
}

#[allow(dead_code)]
pub(crate) fn path(p: &Proj, rel: &str) -> PathBuf {
    p.root().join(rel)
}
