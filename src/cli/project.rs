//! Loading a project: the pipeline file validated against this binary's kinds, its plan, and
//! stage-name resolution. Errors come back as [`Fail`] with the right exit code.

use std::path::PathBuf;

use engine::exec::{Engine, RunEnv};
use engine::exit;
use engine::plan::Plan;
use engine::spec::Pipeline;

use super::Global;

/// An error that already says everything, with its exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Fail {}

pub fn fail(code: i32, message: impl Into<String>) -> anyhow::Error {
    Fail {
        code,
        message: message.into(),
    }
    .into()
}

/// A loaded, validated project.
pub struct Project {
    pub file: PathBuf,
    pub pipeline: Pipeline,
    pub plan: Plan,
    pub registry: engine::kind::Registry,
    /// The pipeline's `report:` section (defaults when absent).
    pub report: super::report::ReportConfig,
}

impl Project {
    pub fn load(g: &Global) -> anyhow::Result<Project> {
        let registry = crate::stages::registry();
        let pipeline = engine::spec::load_as(&g.file, &g.file.display().to_string(), &registry)
            .map_err(|d| {
                let n = d.0.len();
                fail(
                    exit::INVALID,
                    format!(
                        "{d}\n{n} problem{} in {}",
                        if n == 1 { "" } else { "s" },
                        g.file.display()
                    ),
                )
            })?;
        let report = super::report::ReportConfig::from_pipeline(&pipeline).map_err(|errs| {
            let n = errs.len();
            fail(
                exit::INVALID,
                format!(
                    "{}\n{n} problem{} in {}",
                    errs.join("\n"),
                    if n == 1 { "" } else { "s" },
                    g.file.display()
                ),
            )
        })?;
        let plan = Plan::new(&pipeline)
            .map_err(|e| fail(exit::PLAN, format!("{}: error: {e}", g.file.display())))?;
        Ok(Project {
            file: g.file.clone(),
            pipeline,
            plan,
            registry,
            report,
        })
    }

    /// Indices of the named stages (a matrix stage's name stands for all its copies); an
    /// unknown name is a plan error listing close names.
    pub fn resolve(&self, names: &[String]) -> anyhow::Result<Vec<usize>> {
        let mut v = Vec::new();
        for n in names {
            // A stage's name, or a matrix stage's (every copy, `fig` -> `fig@engine=a`, ...).
            match self.pipeline.select(n) {
                found if !found.is_empty() => v.extend(found),
                _ => {
                    let close: Vec<&str> = self
                        .pipeline
                        .stages
                        .iter()
                        .map(|s| s.name.as_str())
                        .filter(|s| s.contains(n.as_str()) || n.contains(*s))
                        .take(5)
                        .collect();
                    let hint = if close.is_empty() {
                        String::from(" (`artifact status` lists the stages)")
                    } else {
                        format!(" (did you mean: {}?)", close.join(", "))
                    };
                    return Err(fail(
                        exit::PLAN,
                        format!("error: no stage named {n:?}{hint}"),
                    ));
                }
            }
        }
        Ok(v)
    }

    /// An engine over this project that watches the process's Ctrl-C flag.
    pub fn engine(&self, env: RunEnv) -> Engine<'_> {
        Engine::new(
            &self.pipeline,
            &self.plan,
            &self.registry,
            env,
            &super::interrupt::CANCEL,
        )
    }

    pub fn lock_path(&self) -> PathBuf {
        engine::lockfile::lock_path(&self.file)
    }
}
