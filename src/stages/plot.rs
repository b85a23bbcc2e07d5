//! The `plot` kind (work in progress).

use engine::exec::{Kind, Problem, StageCtx, StageError};
use engine::spec::StageSpec;

pub struct PlotKind;

impl Kind for PlotKind {
    fn name(&self) -> &'static str {
        "plot"
    }
    fn version(&self) -> u32 {
        1
    }
    fn check(&self, _stage: &StageSpec) -> Vec<Problem> {
        Vec::new()
    }
    fn run(&self, _ctx: &StageCtx<'_>) -> Result<(), StageError> {
        Err("the plot kind is not implemented yet".into())
    }
}
