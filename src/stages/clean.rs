//! The `clean` kind (work in progress).

use engine::exec::{Kind, Problem, StageCtx, StageError};
use engine::spec::StageSpec;

pub struct CleanKind;

impl Kind for CleanKind {
    fn name(&self) -> &'static str {
        "clean"
    }
    fn version(&self) -> u32 {
        1
    }
    fn check(&self, _stage: &StageSpec) -> Vec<Problem> {
        Vec::new()
    }
    fn run(&self, _ctx: &StageCtx<'_>) -> Result<(), StageError> {
        Err("the clean kind is not implemented yet".into())
    }
}
