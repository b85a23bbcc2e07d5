//! The `table` kind (work in progress).

use engine::exec::{Kind, Problem, StageCtx, StageError};
use engine::spec::StageSpec;

pub struct TableKind;

impl Kind for TableKind {
    fn name(&self) -> &'static str {
        "table"
    }
    fn version(&self) -> u32 {
        1
    }
    fn check(&self, _stage: &StageSpec) -> Vec<Problem> {
        Vec::new()
    }
    fn run(&self, _ctx: &StageCtx<'_>) -> Result<(), StageError> {
        Err("the table kind is not implemented yet".into())
    }
}
