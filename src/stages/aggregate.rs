//! The `aggregate` kind (work in progress).

use engine::exec::{Kind, Problem, StageCtx, StageError};
use engine::spec::StageSpec;

pub struct AggregateKind;

impl Kind for AggregateKind {
    fn name(&self) -> &'static str {
        "aggregate"
    }
    fn version(&self) -> u32 {
        1
    }
    fn check(&self, _stage: &StageSpec) -> Vec<Problem> {
        Vec::new()
    }
    fn run(&self, _ctx: &StageCtx<'_>) -> Result<(), StageError> {
        Err("the aggregate kind is not implemented yet".into())
    }
}
