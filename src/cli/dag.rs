//! `artifact dag`: the stage graph as Graphviz DOT or Mermaid.

use clap::{Args, ValueEnum};
use engine::exit;

use super::Global;
use super::project::Project;

use super::error::Result;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Dot,
    Mermaid,
}

#[derive(Args, Debug)]
pub struct DagArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    pub format: Format,
}

pub fn run(g: &Global, a: &DagArgs) -> Result<i32> {
    let p = Project::load(g)?;
    match a.format {
        Format::Dot => out!("{}", p.plan.dot(&p.pipeline)),
        Format::Mermaid => out!("{}", p.plan.mermaid(&p.pipeline)),
    }
    Ok(exit::OK)
}
