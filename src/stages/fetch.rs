//! The `fetch` kind (work in progress).

use engine::exec::{Kind, Problem, StageCtx, StageError};
use engine::spec::StageSpec;

pub struct FetchKind;

impl Kind for FetchKind {
    fn name(&self) -> &'static str {
        "fetch"
    }
    fn version(&self) -> u32 {
        1
    }
    fn check(&self, _stage: &StageSpec) -> Vec<Problem> {
        Vec::new()
    }
    fn run(&self, _ctx: &StageCtx<'_>) -> Result<(), StageError> {
        Err("the fetch kind is not implemented yet".into())
    }
}
