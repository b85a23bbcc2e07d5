//! The built-in stage kinds of the `artifact` binary, one file per kind. The generic `command`
//! kind lives in the engine crate; the kinds here add pinned downloads (`fetch`), schema-driven
//! validation into tidy tables (`validate`), aggregation with polars (`aggregate`), charts with
//! plotters (`plot`) and LaTeX tables with tera (`table`).

pub mod aggregate;
pub mod claims;
pub mod csvtab;
pub mod fetch;
#[cfg(test)]
mod fuzz;
pub mod numfmt;
pub mod plot;
pub mod table;
pub mod validate;

use engine::exec::CommandKind;
use engine::kind::Registry;

/// Every kind this binary offers.
pub fn registry() -> Registry {
    Registry::new()
        .with(CommandKind)
        .with(fetch::FetchKind)
        .with(validate::ValidateKind)
        .with(aggregate::AggregateKind)
        .with(plot::PlotKind)
        .with(table::TableKind)
        .with(claims::ClaimsKind)
}
