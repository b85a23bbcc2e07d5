//! Loading a project: the pipeline file validated against this binary's kinds, its plan, and
//! stage-name resolution. Errors come back as [`Error`] variants (with their exit codes).

use std::path::PathBuf;

use engine::exec::{Engine, RunEnv};
use engine::plan::Plan;
use engine::spec::Pipeline;

use super::Global;

use super::error::{Error, Result};

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
    pub fn load(g: &Global) -> Result<Project> {
        let registry = crate::stages::registry();
        let pipeline = engine::spec::load_as(&g.file, &g.file.display().to_string(), &registry)
            .map_err(|d| Error::Invalid {
                problems: d.to_string(),
                count: d.0.len(),
                file: g.file.clone(),
            })?;
        let report = super::report::ReportConfig::from_pipeline(&pipeline).map_err(|errs| {
            Error::Invalid {
                problems: errs.join("\n"),
                count: errs.len(),
                file: g.file.clone(),
            }
        })?;
        let plan = Plan::new(&pipeline).map_err(|source| Error::Cycle {
            file: g.file.clone(),
            source,
        })?;
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
    pub fn resolve(&self, names: &[String]) -> Result<Vec<usize>> {
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
                    return Err(Error::UnknownStage {
                        name: n.clone(),
                        hint,
                    });
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
