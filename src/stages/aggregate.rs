//! The `aggregate` kind: one SQL query (polars SQL) over named CSV tables, written as one CSV.
//!
//! This module owns running a query deterministically: it registers each CSV under its name
//! (a lazy scan whose schema is inferred from the whole file), runs the query with
//! `polars::sql::SQLContext`, and writes the result with fixed float formatting. It holds no
//! knowledge of any study: the queries live in `pipeline.yaml`.
//!
//! # `with:` keys
//! - `tables` (required): a mapping of SQL table names (`[A-Za-z_][A-Za-z0-9_]*`) to CSV paths;
//!   every path must also be one of the stage's `inputs`.
//! - `query` (required): one `SELECT` statement (CTEs allowed). It must end with a top-level
//!   `ORDER BY` (outside any parentheses), because row order must not depend on hashing; the
//!   `ORDER BY` keys must identify rows uniquely (ties would be written in arbitrary order).
//! - `float_decimals` (optional, default 1): every floating-point column is written with exactly
//!   this many decimals (round percentages in the query with `ROUND(x, n)` too, to be explicit).
//!
//! # Outputs
//! Exactly one declared output, a `.csv` file: header, LF line endings, nulls as empty cells.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::exec::{Kind, Problem, StageCtx, StageError, params};
use engine::spec::StageSpec;
use polars::prelude::*;
use polars::sql::SQLContext;
use serde::Deserialize;

/// Parameters of an `aggregate` stage (see the module docs).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub tables: BTreeMap<String, String>,
    pub query: String,
    #[serde(default = "default_decimals")]
    pub float_decimals: usize,
}

fn default_decimals() -> usize {
    1
}

/// True when `name` is a plain SQL identifier.
fn valid_table_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Whether `query` has an `ORDER BY` outside every parenthesis (so it orders the final result,
/// not a subquery or a window). String literals, quoted identifiers and comments are skipped.
pub fn has_top_level_order_by(query: &str) -> bool {
    let b = query.as_bytes();
    let mut depth = 0i32;
    let mut words: Vec<(i32, String)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => {
                // quoted: skip to the closing quote (a doubled quote is an escape)
                i += 1;
                while i < b.len() {
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                words.push((depth, String::new()));
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                words.push((depth, query[start..i].to_ascii_uppercase()));
            }
            _ if c.is_ascii_whitespace() => i += 1,
            _ => {
                words.push((depth, String::new()));
                i += 1;
            }
        }
    }
    words
        .windows(2)
        .any(|w| w[0].0 == 0 && w[1].0 == 0 && w[0].1 == "ORDER" && w[1].1 == "BY")
}

/// Scans a CSV as a lazy frame, inferring column types from the whole file.
pub fn scan_csv(path: &Path) -> PolarsResult<LazyFrame> {
    LazyCsvReader::new(PlRefPath::new(path.to_string_lossy().as_ref()))
        .with_has_header(true)
        .with_infer_schema_length(None)
        .finish()
}

/// Runs `query` over the named CSV tables and returns the collected result.
pub fn run_query(tables: &[(String, PathBuf)], query: &str) -> Result<DataFrame, StageError> {
    let mut ctx = SQLContext::new();
    for (name, path) in tables {
        let lf = scan_csv(path)
            .map_err(|e| format!("cannot read table {name:?} ({}): {e}", path.display()))?;
        ctx.register(name, lf);
    }
    let df = ctx
        .execute(query)
        .and_then(LazyFrame::collect)
        .map_err(|e| format!("query failed: {e}"))?;
    Ok(df)
}

/// See the module docs.
pub struct AggregateKind;

impl Kind for AggregateKind {
    fn name(&self) -> &'static str {
        "aggregate"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "run one SQL query (polars SQL) over named CSV tables and write the result as CSV"
    }
    fn check(&self, stage: &StageSpec) -> Vec<Problem> {
        let p: Params = match params(stage) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let mut v = Vec::new();
        if p.tables.is_empty() {
            v.push(Problem::new(
                None,
                "`tables` is empty (name at least one CSV)",
            ));
        }
        for (name, path) in &p.tables {
            if !valid_table_name(name) {
                v.push(Problem::new(
                    None,
                    format!(
                        "table name {name:?} is not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)"
                    ),
                ));
            }
            if !stage.inputs.iter().any(|i| &i.path == path) {
                v.push(Problem::new(
                    None,
                    format!("table {name:?}: {path:?} must also be listed in the stage's `inputs`"),
                ));
            }
        }
        if p.query.trim().is_empty() {
            v.push(Problem::new(None, "`query` is empty"));
        } else if !has_top_level_order_by(&p.query) {
            v.push(Problem::new(
                None,
                "`query` has no top-level ORDER BY: end it with an ORDER BY whose keys identify rows uniquely, so the output's row order is deterministic",
            ));
        }
        if p.float_decimals > 12 {
            v.push(Problem::new(None, "`float_decimals` must be at most 12"));
        }
        match stage.outputs.as_slice() {
            [o] if o.path.ends_with(".csv") => {}
            [o] => v.push(Problem::new(
                Some(o.loc),
                format!("output {:?} must be a .csv file", o.path),
            )),
            _ => v.push(Problem::new(
                None,
                format!(
                    "an aggregate stage writes exactly one CSV, but {} outputs are declared",
                    stage.outputs.len()
                ),
            )),
        }
        v
    }
    fn run(&self, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let p: Params = params(ctx.stage).map_err(|e| {
            e.iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let mut tables = Vec::new();
        for (name, rel) in &p.tables {
            tables.push((name.clone(), ctx.declared_input(rel)?));
        }
        let mut df = run_query(&tables, &p.query)?;
        let out = ctx
            .stage
            .outputs
            .first()
            .ok_or("an aggregate stage needs one output")?;
        super::clean::write_csv(&mut df, &ctx.output(&out.path)?, Some(p.float_decimals))
    }
}
