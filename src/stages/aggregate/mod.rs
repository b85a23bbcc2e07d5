//! The `aggregate` kind: one SQL query (polars SQL) over named CSV tables, written as one CSV.
//!
//! This module owns running a query deterministically: it registers each CSV under its name
//! (typed from all its cells, see [`read_table`]), runs the query with
//! `polars::sql::SQLContext`, and writes the result with fixed float formatting. It holds no
//! knowledge of any study: the queries live in `pipeline.yaml`.
//!
//! # `with:` keys
//! - `tables` (optional when the stage names its inputs): a mapping of SQL table names
//!   (`[A-Za-z_][A-Za-z0-9_]*`) to CSV paths (or input names); every path must also be one of
//!   the stage's `inputs`. Left out, each named input (`inputs: {bugs: data/bugs.csv}`) is a
//!   table of its name.
//! - `query` (required): one `SELECT` statement (CTEs allowed). It must end with a top-level
//!   `ORDER BY` (outside any parentheses), because row order must not depend on hashing; the
//!   `ORDER BY` keys must identify rows uniquely (ties would be written in arbitrary order).
//! - `float_decimals` (optional, default 1): every floating-point column is written with exactly
//!   this many decimals (round percentages in the query with `ROUND(x, n)` too, to be explicit).
//!
//! # Outputs
//! Exactly one declared output, a `.csv` file: header, LF line endings, nulls as empty cells.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use engine::kind::{InputPath, Kind, Located, Problem, StageCtx, StageError};
use engine::spec::StageSpec;
use polars::prelude::*;
use polars::sql::SQLContext;
use serde::Deserialize;

pub use tables::{Tables, read_table};

mod tables;

/// Parameters of an `aggregate` stage (see the module docs).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default)]
    pub tables: Option<Located<BTreeMap<String, InputPath>>>,
    pub query: Located<String>,
    #[serde(default)]
    pub float_decimals: Option<Located<usize>>,
}

impl Params {
    /// The SQL tables `(name, project-relative path, where the name is written)`: `tables`, or
    /// else the stage's named inputs (`None` when it has neither).
    pub fn tables(&self, stage: &StageSpec) -> Option<Vec<(String, String, engine::diag::Loc)>> {
        match &self.tables {
            Some(t) => Some(
                t.iter()
                    .map(|(n, p)| (n.clone(), p.as_str().to_string(), p.loc()))
                    .collect(),
            ),
            None => stage
                .inputs
                .iter()
                .map(|i| Some((i.name.clone()?, i.path.clone(), i.loc)))
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty()),
        }
    }

    /// Decimals of float columns in the CSV (default 1).
    pub fn float_decimals(&self) -> usize {
        self.float_decimals.as_ref().map_or(1, |d| d.value)
    }
}

/// True when `name` is a plain SQL identifier.
fn valid_table_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// What a [`Word`] of a query is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WordKind {
    /// A keyword or an unquoted identifier (its text upper-cased).
    Bare,
    /// A quoted identifier (`"x"` or `` `x` ``; its text as written, escapes resolved).
    Quoted,
    /// A string literal (no text).
    Literal,
    /// Any other character outside parentheses (its text is that character).
    Punct,
}

/// One word of a query, outside comments.
#[derive(Clone, Debug)]
struct Word {
    /// Parenthesis depth.
    depth: i32,
    kind: WordKind,
    text: String,
    /// Byte offset in the query.
    at: usize,
}

/// The words of `query` outside comments, each with its parenthesis depth (see [`Word`]).
fn words(query: &str) -> Vec<Word> {
    let b = query.as_bytes();
    let mut depth = 0i32;
    let mut words: Vec<Word> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' | b'`' => {
                let start = i;
                // quoted: skip to the closing quote (a doubled quote is an escape)
                let mut text = Vec::new();
                i += 1;
                while i < b.len() {
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            text.push(c);
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    text.push(b[i]);
                    i += 1;
                }
                let (kind, text) = if c == b'\'' {
                    (WordKind::Literal, String::new())
                } else {
                    (
                        WordKind::Quoted,
                        String::from_utf8_lossy(&text).into_owned(),
                    )
                };
                words.push(Word {
                    depth,
                    kind,
                    text,
                    at: start,
                });
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
            // A word: ASCII letters, digits, `_`, and any non-ASCII character (`Größe` is one
            // identifier to polars; it was split at the `ö` and its column never read).
            _ if c.is_ascii_alphanumeric() || c == b'_' || !c.is_ascii() => {
                let start = i;
                let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || !c.is_ascii();
                while i < b.len() && word(b[i]) {
                    i += 1;
                }
                words.push(Word {
                    depth,
                    kind: WordKind::Bare,
                    text: query[start..i].to_ascii_uppercase(),
                    at: start,
                });
            }
            _ if c.is_ascii_whitespace() => i += 1,
            _ => {
                let ch = query[i..].chars().next().unwrap_or(' ');
                words.push(Word {
                    depth,
                    kind: WordKind::Punct,
                    text: ch.to_string(),
                    at: i,
                });
                i += ch.len_utf8();
            }
        }
    }
    words
}

/// Whether `query` has an `ORDER BY` outside every parenthesis (so it orders the final result,
/// not a subquery or a window). String literals, quoted identifiers and comments are skipped.
pub fn has_top_level_order_by(query: &str) -> bool {
    let bare = |w: &Word, t: &str| w.depth == 0 && w.kind == WordKind::Bare && w.text == t;
    words(query)
        .windows(2)
        .any(|w| bare(&w[0], "ORDER") && bare(&w[1], "BY"))
}

/// The columns of a table with `header` that `query` may read, in header order, or `None` when
/// it may read all of them. Reading only these is what makes an aggregate over a wide table
/// cheap: polars pushes the selection into its CSV scan, and the other columns are neither
/// stored nor typed.
///
/// SQL names a column only by its name, bare (matched here in any case) or quoted, so a column
/// whose name the query never writes cannot be read, except through a wildcard: `*` other than
/// in `COUNT(*)` (`SELECT *`, `t.*`), `COLUMNS(...)`, or a `NATURAL` join (on the columns both
/// sides share); then every column is kept. This over-approximates (a column named like a
/// keyword or like another table's column is kept), never the reverse.
pub fn used_columns(query: &str, header: &[String]) -> Option<Vec<String>> {
    let w = words(query);
    let wildcard = w.iter().enumerate().any(|(k, x)| match x.kind {
        WordKind::Punct if x.text == "*" => {
            !(k > 0
                && w[k - 1].kind == WordKind::Bare
                && w[k - 1].text == "COUNT"
                && w[k - 1].depth + 1 == x.depth)
        }
        WordKind::Bare => x.text == "COLUMNS" || x.text == "NATURAL",
        _ => false,
    });
    if wildcard {
        return None;
    }
    let named = |h: &String| {
        w.iter().any(|x| {
            let word = matches!(x.kind, WordKind::Bare | WordKind::Quoted);
            word && (x.text.eq_ignore_ascii_case(h) || x.text.to_lowercase() == h.to_lowercase())
        })
    };
    let mut used: Vec<String> = header.iter().filter(|h| named(h)).cloned().collect();
    // `COUNT(*)` alone still needs the rows: keep one column to count them.
    if used.is_empty() {
        used.extend(header.first().cloned());
    }
    Some(used)
}

/// polars SQL's table functions, which read a file named in the query (`FROM read_csv('x')`);
/// matched in any case. Other `read_*` / `scan_*` names are refused too (later polars versions
/// may add them), unless they are tables declared in `tables`.
const FILE_FUNCTIONS: &[&str] = &[
    "read_csv",
    "read_parquet",
    "read_ipc",
    "read_json",
    "read_ndjson",
];

fn reads_files(name: &str, declared: &dyn Fn(&str) -> bool) -> bool {
    let l = name.to_ascii_lowercase();
    FILE_FUNCTIONS.contains(&l.as_str())
        || ((l.starts_with("read_") || l.starts_with("scan_")) && !declared(name))
}

/// 1-based line and column of the first word `name` (any case) outside strings and comments.
fn locate(query: &str, name: &str) -> Option<(usize, usize)> {
    let up = name.to_ascii_uppercase();
    let at = words(query)
        .into_iter()
        .find(|w| w.kind == WordKind::Bare && w.text == up)?
        .at;
    let before = &query[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

/// Every way `query` could read something other than the declared tables, one message each;
/// `Err` when polars cannot parse it.
///
/// Only the CSVs under `tables` are fingerprinted (they are `inputs`), so nothing else may be
/// readable: polars SQL's table functions (`read_csv('/any/path')`, `read_parquet`, ...) would
/// read any file, unfingerprinted. The relations come from polars' own SQL parser
/// ([`polars::sql::extract_table_identifiers`]: the sqlparser AST polars executes, same dialect
/// and options), so case, whitespace, comments (`READ_CSV /**/ (`), quoting, CTEs, subqueries,
/// joins and set operations cannot hide one, and a `read_csv(` inside a string literal or a
/// comment is not mistaken for one (a text search would do both). Every part of a dotted name
/// is checked, since polars runs a table function by the first part.
pub fn file_access(query: &str, declared: &dyn Fn(&str) -> bool) -> Result<Vec<String>, String> {
    let relations = polars::sql::extract_table_identifiers(query, true, true)
        .map_err(|e| format!("`query` is not valid SQL: {}", first_line(&e.to_string())))?;
    let mut out = Vec::new();
    for rel in relations {
        for part in rel.split('.') {
            if reads_files(part, declared) {
                let at = locate(query, part)
                    .map(|(l, c)| format!(" (line {l}, column {c} of the query)"))
                    .unwrap_or_default();
                out.push(format!(
                    "`query` reads a file through `{part}(...)`{at}: an aggregate may read only \
                     the CSVs named under `tables` (they are listed in `inputs`, so their content \
                     is part of the cache key). Add the file to `inputs` and `tables` and select \
                     from its table name instead."
                ));
            }
        }
    }
    Ok(out)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Queries over at least this many rows (all their tables together) take [`ALONE`] first.
static ALONE_ROWS: AtomicUsize = AtomicUsize::new(2_000_000);
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `query` over the named CSV tables and returns the collected result. A query that could
/// read any other file is refused (see [`file_access`]; `check` reports it first, with its
/// location in `pipeline.yaml`).
pub fn run_query(tables: &[(String, PathBuf)], query: &str) -> Result<DataFrame, StageError> {
    let declared = |n: &str| tables.iter().any(|(t, _)| t == n);
    let refused = file_access(query, &declared)?;
    if !refused.is_empty() {
        return Err(refused.join("\n").into());
    }
    let mut ctx = SQLContext::new();
    let (mut rows, mut headers) = (0, Vec::new());
    for (name, path) in tables {
        let header = std::cell::RefCell::new(Vec::new());
        let used = |h: &[String]| {
            header.replace(h.to_vec());
            used_columns(query, h)
        };
        let df = Tables::get(path, &used)
            .map_err(|e| format!("cannot read table {name:?} ({}): {e}", path.display()))?;
        headers.push(format!("{name}({})", header.take().join(", ")));
        rows += df.height();
        ctx.register(name, df.lazy());
    }
    // Large queries run one at a time: two at once (at -j 2) each held their working set, and
    // the run at 10^7 rows peaked at 7.0-8.3 GiB over six runs, around the 8 GiB it must stay
    // within; polars already spreads one query over every core. Stages run on plain threads,
    // not in polars' pool, so a stage waiting here holds up no worker a running query needs;
    // no table's lock is held while waiting (the frames above share their columns).
    let alone = rows >= ALONE_ROWS.load(Ordering::Relaxed);
    let _alone = alone.then(|| ALONE.lock().unwrap_or_else(|e| e.into_inner()));
    let df = ctx
        .execute(query)
        .and_then(LazyFrame::collect)
        .map_err(|e| {
            // polars lists only the columns this query reads: list every table's.
            let msg = e.to_string();
            let msg = match msg.split_once("; valid columns:") {
                Some((missing, _)) => format!("{missing}; the tables: {}", headers.join("; ")),
                None => msg,
            };
            format!("query failed: {}", explain_sql_error(&msg, query))
        })?;
    Ok(df)
}

/// polars' message for a failed query, without its advice for the Python API (`.alias`,
/// `suffix=`), which a SQL author cannot follow: what went wrong in SQL terms and how to fix
/// it, then the query itself.
pub fn explain_sql_error(msg: &str, query: &str) -> String {
    let quoted = |s: &str| s.split('\'').nth(1).map(str::to_string).unwrap_or_default();
    let first = first_line(msg).trim();
    let text = if msg.contains("try renaming the columns with `.alias") {
        let name = quoted(first);
        format!(
            "two result columns are both named {name:?}: give each output column its own \
             name with `AS`, e.g. `SELECT COUNT(*) AS n, COUNT(DISTINCT bug) AS bugs` or \
             `t.x AS t_x, u.x AS u_x`"
        )
    } else if msg.contains("renaming the column prior to joining") {
        let name = quoted(first);
        format!(
            "the join produces a column {name:?} that already exists: select the columns you \
             need with distinct names (`a.col AS a_col`) instead of `*` on both sides"
        )
    } else if first.contains("not supported for dtype `str`") {
        format!(
            "{first}: the column is text, because at least one of its cells is not a number (a \
             column is read as numbers only when every non-empty cell is one)"
        )
    } else {
        // polars' first line is the message; later lines are advice for its Python API.
        msg.split("\n\n").next().unwrap_or(msg).trim().to_string()
    };
    let sql: Vec<String> = query
        .trim()
        .lines()
        .map(|l| format!("    {}", l.trim_end()))
        .collect();
    format!("{text}\n  in the query:\n{}", sql.join("\n"))
}

/// See the module docs.
pub struct AggregateKind;

impl Kind for AggregateKind {
    type Params = Params;
    fn name(&self) -> &'static str {
        "aggregate"
    }
    /// 2: booleans and ISO dates are typed when read (they were text). 3: a header naming a
    /// column twice or holding a `"` is an error (polars renamed or misread it), and non-ASCII
    /// column names are read (they failed).
    fn version(&self) -> u32 {
        3
    }
    fn about(&self) -> &'static str {
        "run one SQL query (polars SQL) over named CSV tables and write the result as CSV"
    }
    fn validate_stage(&self, stage: &StageSpec) -> Vec<Problem> {
        let named = !stage.inputs.is_empty() && stage.inputs.iter().all(|i| i.name.is_some());
        if named || stage.with_loc(&["tables"]).is_some() {
            return Vec::new();
        }
        vec![Problem::new(
            None,
            "missing required key \"tables\": name the stage's inputs (`inputs: {bugs: data/bugs.csv}`, each a table of that name) or list `tables: {name: path}`",
        )]
    }
    fn validate(&self, p: &Params, stage: &StageSpec) -> Vec<Problem> {
        let mut v = Vec::new();
        let tables = p.tables(stage).unwrap_or_default();
        match &p.tables {
            Some(t) if t.is_empty() => v.push(Problem::at(
                t.loc,
                "`tables` is empty (name at least one CSV)",
            )),
            // `validate_stage` reports a missing `tables`.
            _ => {}
        }
        for (name, _, loc) in &tables {
            if !valid_table_name(name) {
                v.push(Problem::at(
                    *loc,
                    format!(
                        "table name {name:?} is not a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*)"
                    ),
                ));
            }
            if FILE_FUNCTIONS.contains(&name.to_ascii_lowercase().as_str()) {
                v.push(Problem::at(
                    *loc,
                    format!(
                        "table name {name:?} is the name of a polars SQL function that reads \
                         files: choose another name"
                    ),
                ));
            }
        }
        let query_loc = p.query.loc;
        let declared = |n: &str| tables.iter().any(|(t, _, _)| t == n);
        // The ORDER BY rule is checked on SQL that parses (an unclosed string hid it).
        let mut parsed = false;
        if p.query.trim().is_empty() {
            v.push(Problem::at(query_loc, "`query` is empty"));
        } else {
            match file_access(&p.query, &declared) {
                Ok(refused) => {
                    parsed = true;
                    v.extend(refused.into_iter().map(|m| Problem::at(query_loc, m)));
                }
                Err(e) => v.push(Problem::at(query_loc, e)),
            }
        }
        let w = words(&p.query);
        let semicolon = |x: &Word| x.depth == 0 && x.kind == WordKind::Punct && x.text == ";";
        if w.iter()
            .position(semicolon)
            .is_some_and(|i| i + 1 < w.len())
        {
            let msg =
                "`query` holds more than one statement (after a `;`): an aggregate runs one SELECT";
            v.push(Problem::at(query_loc, msg));
        }
        if parsed && !has_top_level_order_by(&p.query) {
            v.push(Problem::at(
                query_loc,
                "`query` has no top-level ORDER BY: end it with an ORDER BY whose keys identify rows uniquely, so the output's row order is deterministic",
            ));
        }
        if let Some(d) = &p.float_decimals
            && d.value > 12
        {
            v.push(Problem::at(d.loc, "`float_decimals` must be at most 12"));
        }
        match stage.outputs.as_slice() {
            // No outputs at all is the engine's to report (an empty list, or paths it refused).
            [] => {}
            [o] if o.path.ends_with(".csv") => {}
            [o] => v.push(Problem::new(
                Some(o.loc),
                format!("output {:?} must be a .csv file", o.path),
            )),
            _ => v.push(Problem::new(
                stage.outputs.get(1).map(|o| o.loc),
                format!(
                    "an aggregate stage writes exactly one CSV, but {} outputs are declared",
                    stage.outputs.len()
                ),
            )),
        }
        v
    }
    fn run(&self, p: &Params, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let named =
            (p.tables(ctx.stage)).ok_or("an aggregate stage needs `tables` or named inputs")?;
        let tables: Vec<(String, PathBuf)> = (named.iter())
            .map(|(name, path, _)| (name.clone(), ctx.input(path)))
            .collect();
        // Errors name each table's file by its path in the project, not the absolute one.
        let mut df = run_query(&tables, &p.query).map_err(|e| {
            let abs = tables.iter().map(|(_, a)| a.display().to_string());
            let rel = named.iter().map(|(_, path, _)| path.to_string());
            let e = abs
                .zip(rel)
                .fold(e.to_string(), |e, (a, r)| e.replace(&a, &r));
            StageError::from(e)
        })?;
        let out = ctx
            .stage
            .outputs
            .first()
            .ok_or("an aggregate stage needs one output")?;
        super::csvtab::write_csv(&mut df, &ctx.output(&out.path)?, Some(p.float_decimals()))
    }
}

/// Helpers for tests (here and in `tests/it/paper.rs`, through the library): load the real
/// `pipeline.yaml` with this module's kinds and stubs for the others, and run its `clean` and
/// `aggregate` stages in a scratch folder.
#[doc(hidden)]
pub mod testkit {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicBool;

    use engine::kind::{DynKind, Kind, Registry, RunEnv, StageCtx, StageError};
    use engine::spec::{Node, Pipeline, StageSpec};

    use super::super::validate::ValidateKind;
    use super::AggregateKind;

    /// The project root (where `pipeline.yaml` lives).
    pub fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// A kind owned elsewhere: accepts any `with:`, never runs.
    struct Stub(&'static str);

    impl Kind for Stub {
        type Params = serde::de::IgnoredAny;
        fn name(&self) -> &'static str {
            self.0
        }
        fn version(&self) -> u32 {
            0
        }
        fn run(&self, _: &Self::Params, _ctx: &StageCtx<'_>) -> Result<(), StageError> {
            Err(format!("kind {:?} is a stub in these tests", self.0).into())
        }
    }

    /// The real `validate` and `aggregate` kinds plus a stub for every other kind `text` names.
    pub fn registry_for(text: &str) -> Registry {
        let mut r = Registry::new().with(ValidateKind).with(AggregateKind);
        let Ok(doc) = Node::parse(text) else { return r };
        let stages = doc
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("stages")))
            .and_then(|(_, v)| v.as_map())
            .unwrap_or(&[]);
        for (_, s) in stages {
            let kind = s
                .as_map()
                .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("kind")))
                .and_then(|(_, v)| v.as_str());
            if let Some(k) = kind
                && r.get(k).is_none()
            {
                r.add(Box::new(Stub(Box::leak(k.to_string().into_boxed_str()))));
            }
        }
        r
    }

    /// Parses and validates pipeline text with `root` as the project root.
    pub fn parse(text: &str, root: &Path) -> Pipeline {
        let reg = registry_for(text);
        engine::spec::parse(text, "pipeline.yaml", root, &reg)
            .unwrap_or_else(|d| panic!("pipeline.yaml is invalid:\n{d}"))
    }

    /// The project's real `pipeline.yaml`.
    pub fn pipeline() -> Pipeline {
        let text =
            std::fs::read_to_string(root().join("pipeline.yaml")).expect("read pipeline.yaml");
        parse(&text, &root())
    }

    /// Runs one `validate` or `aggregate` stage with `dir` as both input and output root.
    pub fn run_stage(stage: &StageSpec, dir: &Path) -> Result<(), StageError> {
        let kind: Box<dyn DynKind> = match stage.kind.as_str() {
            "validate" => Box::new(ValidateKind),
            "aggregate" => Box::new(AggregateKind),
            other => panic!(
                "stage {}: kind {other} is not run by these tests",
                stage.name
            ),
        };
        let env = RunEnv::default();
        let cancel = AtomicBool::new(false);
        let ctx = StageCtx {
            stage,
            root: dir,
            out_root: dir,
            env: &env,
            key_digest: "0000000000000000",
            cancel: &cancel,
        };
        kind.run(&ctx)
    }

    /// Runs every `validate` and `aggregate` stage of `p` in dependency order in `dir` (whose
    /// other inputs must already be in place); returns the stage names in the order run, each
    /// with its wall time in seconds.
    pub fn run_all(p: &Pipeline, dir: &Path) -> Vec<(String, f64)> {
        let mut pending: Vec<&StageSpec> = p
            .stages
            .iter()
            .filter(|s| s.kind == "validate" || s.kind == "aggregate")
            .collect();
        let mut done = Vec::new();
        while !pending.is_empty() {
            let i = pending
                .iter()
                .position(|s| s.inputs.iter().all(|i| dir.join(&i.path).is_file()))
                .unwrap_or_else(|| {
                    panic!(
                        "no runnable stage among {:?}",
                        pending.iter().map(|s| &s.name).collect::<Vec<_>>()
                    )
                });
            let s = pending.remove(i);
            let t = std::time::Instant::now();
            run_stage(s, dir).unwrap_or_else(|e| panic!("stage {}: {e}", s.name));
            done.push((s.name.clone(), t.elapsed().as_secs_f64()));
        }
        done
    }

    /// Copies `from` to `dir/rel`, creating folders.
    pub fn place(from: &Path, dir: &Path, rel: &str) {
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }

    /// Reads a file as text, naming it on failure.
    pub fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::{self, place, read};
    use super::*;

    #[test]
    fn top_level_order_by_is_detected() {
        assert!(has_top_level_order_by("SELECT a FROM t ORDER BY a"));
        assert!(has_top_level_order_by(
            "WITH x AS (SELECT a FROM t ORDER BY a) SELECT a FROM x\norder\n  by a DESC"
        ));
        assert!(!has_top_level_order_by("SELECT a FROM t"));
        assert!(!has_top_level_order_by(
            "WITH x AS (SELECT a FROM t ORDER BY a) SELECT a FROM x"
        ));
        assert!(!has_top_level_order_by(
            "SELECT SUM(a) OVER (ORDER BY b) AS s FROM t"
        ));
        assert!(!has_top_level_order_by(
            "SELECT 'ORDER BY' AS s FROM t -- ORDER BY s"
        ));
        assert!(!has_top_level_order_by(
            "SELECT \"order by\" FROM t /* ORDER BY x */"
        ));
        assert!(!has_top_level_order_by("SELECT order_by FROM t"));
    }

    #[test]
    fn only_the_columns_a_query_names_are_read() {
        let h: Vec<String> = ["bug", "url", "Engine", "phase", "n"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let used = |q: &str| used_columns(q, &h);
        let some = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        // Bare names in any case, qualified names, quoted names; header order.
        assert_eq!(
            used("SELECT b.engine, COUNT(*) AS x FROM bugs b GROUP BY b.engine ORDER BY BUG"),
            some(&["bug", "Engine"])
        );
        assert_eq!(
            used("SELECT \"phase\" FROM t ORDER BY `n`"),
            some(&["phase", "n"])
        );
        // A name only in a literal or a comment is not a use.
        assert_eq!(
            used("SELECT bug FROM t WHERE bug <> 'url' -- phase\n/* n */ ORDER BY bug"),
            some(&["bug"])
        );
        // COUNT(*) alone still reads one column, to count rows.
        assert_eq!(
            used("SELECT COUNT(*) AS n0 FROM t ORDER BY 1"),
            some(&["bug"])
        );
        assert_eq!(
            used("SELECT count ( * ) AS total FROM t ORDER BY total"),
            some(&["bug"])
        );
        // Wildcards and joins on shared names keep every column.
        for q in [
            "SELECT * FROM t ORDER BY bug",
            "SELECT t.* FROM t ORDER BY bug",
            "SELECT bug * 2 AS d FROM t ORDER BY d",
            "SELECT bug FROM t NATURAL JOIN u ORDER BY bug",
            "SELECT COLUMNS('^p.*$') FROM t ORDER BY 1",
            "SELECT COUNT(DISTINCT *) AS d FROM t ORDER BY d",
        ] {
            assert_eq!(used(q), None, "{q}");
        }
    }

    /// A large query waits while another holds the big-query lock, a small one does not, and
    /// the waiting one then gets the result it gets alone.
    #[test]
    fn large_queries_run_one_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (big, small) = (dir.path().join("big.csv"), dir.path().join("small.csv"));
        let rows: String = (0..40).map(|i| format!("{},{}\n", i % 3, i)).collect();
        std::fs::write(&big, format!("k,v\n{rows}")).expect("write");
        std::fs::write(&small, "k,v\n1,2\n").expect("write");
        let q = "SELECT k, SUM(v) AS s FROM t GROUP BY k ORDER BY k";
        let query = |path: &std::path::Path| {
            let (tx, rx) = std::sync::mpsc::channel();
            let tables = [("t".to_string(), path.to_path_buf())];
            std::thread::spawn(move || tx.send(run_query(&tables, q).map_err(|e| e.to_string())));
            rx
        };
        let alone = query(&big).recv().expect("result").expect("query");
        // (The threshold is the process's: other tests' queries over 10 rows or more may wait
        // here a moment too.)
        ALONE_ROWS.store(10, Ordering::Relaxed);
        let held = ALONE.lock().expect("lock");
        let (waiting, quick) = (query(&big), query(&small));
        let quick = quick.recv_timeout(std::time::Duration::from_secs(60));
        assert!(
            matches!(quick, Ok(Ok(_))),
            "a small query does not wait: {quick:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        let early = waiting.try_recv();
        drop(held);
        ALONE_ROWS.store(2_000_000, Ordering::Relaxed);
        assert!(
            early.is_err(),
            "a large query ran beside another: {early:?}"
        );
        let got = waiting
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("it ran after");
        assert_eq!(got.expect("query"), alone);
    }

    /// Over its budget the store drops columns (least recently used first) and reads them
    /// again when asked: the same table comes back.
    #[test]
    fn the_table_store_keeps_to_its_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path().join("t.csv");
        std::fs::write(&t, "a,b\n1,x\n2,y\n").expect("write");
        // (The budget is the process's: other tests only lose their cached columns.)
        tables::set_budget(0);
        let first = Tables::get(&t, &|_| None).expect("read");
        assert_eq!(tables::held(&t), 0, "nothing is held over a zero budget");
        let again = Tables::get(&t, &|_| None).expect("read");
        tables::set_budget(usize::MAX);
        assert_eq!(first, again);
        assert_eq!(again, read_table(&t).expect("read"));
        let kept = Tables::get(&t, &|_| None).expect("read");
        assert_eq!(kept, again);
        assert!(tables::held(&t) > 0, "kept under the budget");
    }

    /// Reading only the named columns changes no result: the columns a query does not name
    /// (here one that would fail any typing and one of a million-character cell) are never
    /// read, and a wildcard still sees them all.
    #[test]
    fn a_query_reads_its_columns_only_and_gets_the_same_result() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path().join("t.csv");
        let big = "x".repeat(1_000_000);
        std::fs::write(
            &t,
            format!("a,junk,b,Wide\n1,oops,2.5,{big}\n2,3,,\n1,,0.5,w\n"),
        )
        .expect("write");
        let tables = [("t".to_string(), t.clone())];
        let narrow = run_query(
            &tables,
            "SELECT a, SUM(b) AS s, COUNT(*) AS n FROM t GROUP BY a ORDER BY a",
        )
        .expect("query");
        assert_eq!(narrow.get_column_names(), ["a", "s", "n"]);
        let all = read_table(&t).expect("read");
        assert_eq!(all.width(), 4);
        let cols = |q: &str| Tables::get(&t, &|h| used_columns(q, h)).expect("read");
        let projected = cols("SELECT a FROM t ORDER BY a");
        assert_eq!(projected.get_column_names(), ["a"]);
        assert_eq!(projected.column("a").ok(), all.column("a").ok());
        assert_eq!(cols("SELECT * FROM t ORDER BY a").width(), 4);
        assert_eq!(
            cols("SELECT b, a FROM t ORDER BY a").get_column_names(),
            ["a", "b"]
        );
        // A new version of the file is read again, not served from the store.
        std::fs::write(&t, "a,b\n7,8\n").expect("write");
        let again = cols("SELECT a FROM t ORDER BY a");
        assert_eq!(again.height(), 1);
        assert_eq!(
            again.column("a").ok(),
            read_table(&t).expect("read").column("a").ok()
        );
        // A ragged row is reported even where the query reads only the first column.
        std::fs::write(&t, "a,b\n7,8\n9,10,11\n").expect("write");
        let e = Tables::get(&t, &|h| used_columns("SELECT a FROM t ORDER BY a", h))
            .expect_err("ragged");
        assert!(
            e.contains("row 3 (line 3) has 3 cell(s) but the header has 2"),
            "{e}"
        );
        let mut narrow = narrow;
        let out = dir.path().join("out.csv");
        crate::stages::csvtab::write_csv(&mut narrow, &out, Some(2)).expect("write");
        assert_eq!(
            std::fs::read_to_string(&out).expect("read"),
            "a,s,n\n1,3.00,2\n2,,1\n"
        );
    }

    /// Booleans and ISO dates are typed when read and written back as the same texts, so a
    /// query downstream of another aggregate (or of `validate`) uses them as such; a column
    /// with one other value stays text.
    #[test]
    fn booleans_and_dates_survive_from_stage_to_stage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = dir.path().join("first.csv");
        std::fs::write(
            &first,
            "id,ok,day,maybe,notdate\n1,true,2024-02-29,true,2024-02-30\n2,false,,maybe,2024-03-01\n3,,1999-12-31,false,\n",
        )
        .expect("write");
        let df = read_table(&first).expect("read");
        let types: Vec<String> = df.dtypes().iter().map(ToString::to_string).collect();
        assert_eq!(types, ["i64", "bool", "date", "str", "str"]);
        // A first stage passes them through; the second uses them natively.
        let tables = [("t".to_string(), first)];
        let mut mid = run_query(
            &tables,
            "SELECT id, ok, day FROM t WHERE day >= '2000-01-01' OR day IS NULL ORDER BY id",
        )
        .expect("query");
        let second = dir.path().join("second.csv");
        crate::stages::csvtab::write_csv(&mut mid, &second, None).expect("write");
        assert_eq!(
            std::fs::read_to_string(&second).expect("read"),
            "id,ok,day\n1,true,2024-02-29\n2,false,\n"
        );
        let out = run_query(
            &[("m".to_string(), second)],
            "SELECT id, NOT ok AS not_ok, day + INTERVAL '1 day' AS next FROM m WHERE ok OR NOT ok ORDER BY id",
        )
        .expect("query");
        let types: Vec<String> = out.dtypes().iter().map(ToString::to_string).collect();
        assert_eq!(types, ["i64", "bool", "date"]);
    }

    const STAGE: &str = r#"version: 1
stages:
  agg:
    kind: aggregate
    inputs: [t.csv]
    outputs: [out.csv]
    with:
      tables: {t: t.csv}
      query: SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a
"#;

    fn project(pipeline: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.csv"), "a,b\nx,1.25\ny,2\nx,0.5\n").expect("write");
        std::fs::write(dir.path().join("pipeline.yaml"), pipeline).expect("write");
        dir
    }

    /// Runs the one stage of `pipeline` over [`project`]'s table and returns its `out.csv`.
    fn output_of(pipeline: &str) -> String {
        let dir = project(pipeline);
        let p = testkit::parse(pipeline, dir.path());
        testkit::run_stage(&p.stages[0], dir.path()).expect("run");
        read(&dir.path().join("out.csv"))
    }

    fn problems(pipeline: &str) -> String {
        let dir = project(pipeline);
        let reg = testkit::registry_for(pipeline);
        match engine::spec::parse(pipeline, "pipeline.yaml", dir.path(), &reg) {
            Ok(_) => String::new(),
            Err(d) => d.to_string(),
        }
    }

    #[test]
    fn a_valid_stage_runs_and_sorts() {
        assert_eq!(problems(STAGE), "");
        assert_eq!(output_of(STAGE), "a,n\nx,2\ny,1\n");
    }

    #[test]
    fn floats_have_fixed_decimals() {
        let text = STAGE.replace(
            "SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a",
            "SELECT a, SUM(b) AS s, ROUND(100.0 * COUNT(*) / 3, 1) AS pct FROM t GROUP BY a ORDER BY a",
        );
        assert_eq!(output_of(&text), "a,s,pct\nx,1.8,66.7\ny,2.0,33.3\n");
    }

    #[test]
    fn check_reports_every_problem() {
        let text = STAGE
            .replace("ORDER BY a", "")
            .replace("{t: t.csv}", "{t: t.csv, 2bad: other.csv}")
            .replace("outputs: [out.csv]", "outputs: [out.csv, more.csv]");
        let d = problems(&text);
        assert!(d.contains("no top-level ORDER BY"), "{d}");
        assert!(d.contains("\"2bad\" is not a plain SQL identifier"), "{d}");
        assert!(
            d.contains("`2bad: \"other.csv\"` is not one of the stage's inputs (t.csv)"),
            "{d}"
        );
        assert!(d.contains("exactly one CSV, but 2 outputs"), "{d}");
        let d = problems(&STAGE.replace("      tables:", "      bogus: 1\n      tables:"));
        assert!(d.contains("unknown key \"bogus\""), "{d}");
        // Found by an adversarial helper: a second statement failed only when run, and an
        // unclosed string also reported a missing ORDER BY.
        let q = |q: &str| STAGE.replace("SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a", q);
        let d = problems(&q("SELECT a FROM t ORDER BY a; SELECT a FROM t ORDER BY a"));
        assert!(d.contains("more than one statement"), "{d}");
        let d = problems(&q("\"SELECT a FROM t WHERE a = 'x ORDER BY a\""));
        assert!(
            d.contains("not valid SQL") && !d.contains("ORDER BY:"),
            "{d}"
        );
        assert_eq!(problems(&q("SELECT a FROM t ORDER BY a;")), "");
    }

    /// `read_csv('/tmp/secret.csv')` read any file, unfingerprinted: every table function that
    /// reads files is refused when the pipeline is loaded, at the query's line, however it is
    /// spelled; a string or comment mentioning one is fine.
    #[test]
    fn sql_reading_files_is_refused_at_validation() {
        let secret = tempfile::tempdir().expect("tempdir");
        let secret_csv = secret.path().join("secret.csv");
        std::fs::write(&secret_csv, "a,n\nsecret,1\n").expect("write");
        let bad = [
            format!(
                "SELECT * FROM read_csv('{}') ORDER BY a",
                secret_csv.display()
            ),
            "SELECT a FROM READ_CSV ('../t.csv') ORDER BY a".to_string(),
            "SELECT a FROM read_csv/**/('t.csv') ORDER BY a".to_string(),
            "SELECT a FROM Read_Csv\n  -- comment\n  ('.artifact/stat.json') ORDER BY a"
                .to_string(),
            "SELECT a FROM \"read_csv\"('t.csv') ORDER BY a".to_string(),
            "SELECT a FROM read_parquet('*.parquet') ORDER BY a".to_string(),
            "SELECT a FROM read_ipc('x') ORDER BY a".to_string(),
            "SELECT a FROM read_json('x') ORDER BY a".to_string(),
            "SELECT a FROM read_ndjson('x') ORDER BY a".to_string(),
            "SELECT a FROM scan_csv('x') ORDER BY a".to_string(),
            "WITH s AS (SELECT a FROM read_csv('x')) SELECT a FROM s ORDER BY a".to_string(),
            "SELECT a FROM t WHERE a IN (SELECT a FROM read_csv('x')) ORDER BY a".to_string(),
            "SELECT t.a FROM t JOIN read_csv('x') AS r ON t.a = r.a ORDER BY t.a".to_string(),
            "SELECT a FROM t UNION ALL SELECT a FROM read_csv('x') ORDER BY a".to_string(),
            "SELECT a FROM read_csv.x('t.csv') ORDER BY a".to_string(),
        ];
        for q in &bad {
            let text = STAGE.replace(
                "query: SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a",
                &format!("query: {}", serde_json::to_string(q).expect("json")),
            );
            let d = problems(&text);
            assert!(
                d.contains("pipeline.yaml:9:14: ") && d.contains("`query` reads a file through `"),
                "{q}: {d}"
            );
            assert!(
                d.contains("may read only the CSVs named under `tables`"),
                "{q}: {d}"
            );
            // The run refuses too (should `check` be bypassed), before reading anything.
            let e = run_query(&[("t".to_string(), secret_csv.clone())], q)
                .expect_err("refused")
                .to_string();
            assert!(e.contains("reads a file through"), "{q}: {e}");
        }
        let d = problems(&STAGE.replace(
            "query: SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a",
            "query: \"SELECT a FROM\\n  read_csv('x') ORDER BY a\"",
        ));
        assert!(d.contains("line 2, column 3 of the query"), "{d}");
        // Mentions in strings, comments and column names are not reads.
        for q in [
            "SELECT a, 'read_csv(x)' AS s FROM t ORDER BY a -- read_csv('y')",
            "SELECT a AS read_csv_count /* read_csv('z') */ FROM t ORDER BY a",
        ] {
            let text = STAGE.replace(
                "query: SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a",
                &format!("query: {}", serde_json::to_string(q).expect("json")),
            );
            assert_eq!(problems(&text), "", "{q}");
        }
        // A query polars cannot parse is reported when the pipeline is loaded.
        let d = problems(&STAGE.replace("GROUP BY a ORDER BY a", "GROUP BY ORDER BY a"));
        assert!(d.contains("`query` is not valid SQL"), "{d}");
    }

    /// `docs/data.md` promises an empty cell when a percentage's whole is 0; a division by zero
    /// wrote `NaN` / `inf`.
    #[test]
    fn division_by_zero_writes_an_empty_cell_not_nan_or_inf() {
        let text = STAGE.replace(
            "SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a",
            "SELECT a, 100.0 * SUM(b) / (SUM(b) - SUM(b)) AS pct, (SUM(b) - SUM(b)) / (SUM(b) - SUM(b)) AS nan, -1.0 / (SUM(b) - SUM(b)) AS neg, SUM(b) AS s FROM t GROUP BY a ORDER BY a",
        );
        assert_eq!(output_of(&text), "a,pct,nan,neg,s\nx,,,,1.8\ny,,,,2.0\n");
    }

    /// polars' advice for its Python API (`.alias`, `truncate_ragged_lines`) is replaced by
    /// what to change in the SQL or the CSV, and where.
    #[test]
    fn errors_say_what_to_fix_without_polars_python_advice() {
        let text = STAGE.replace(
            "SELECT a, COUNT(*) AS n FROM t GROUP BY a ORDER BY a",
            "SELECT a, COUNT(*), COUNT(*) FROM t GROUP BY a ORDER BY a",
        );
        let dir = project(&text);
        let p = testkit::parse(&text, dir.path());
        let e = testkit::run_stage(&p.stages[0], dir.path())
            .expect_err("duplicate names")
            .to_string();
        assert!(!e.contains(".alias"), "{e}");
        assert!(
            e.contains("give each output column its own name with `AS`"),
            "{e}"
        );
        assert!(
            e.contains("in the query:\n    SELECT a, COUNT(*), COUNT(*)"),
            "{e}"
        );

        // A ragged row: the row, the line and the fix, not `truncate_ragged_lines`.
        std::fs::write(dir.path().join("t.csv"), "a,b\nx,1\ny,2,3\n").expect("write");
        let p = testkit::parse(STAGE, dir.path());
        let e = testkit::run_stage(&p.stages[0], dir.path())
            .expect_err("ragged")
            .to_string();
        assert!(!e.contains("truncate_ragged_lines"), "{e}");
        assert!(
            e.contains("row 3 (line 3) has 3 cell(s) but the header has 2"),
            "{e}"
        );
        // An unclosed quote: where it opens, not the rest of the file.
        let mut csv = String::from("a,b\nx,\"1\n");
        for i in 0..3000 {
            csv.push_str(&format!("y{i},{i}\n"));
        }
        std::fs::write(dir.path().join("t.csv"), &csv).expect("write");
        match testkit::run_stage(&p.stages[0], dir.path()) {
            Ok(()) => {}
            Err(e) => {
                let e = e.to_string();
                assert!(e.lines().count() < 5 && e.len() < 1000, "{e}");
                assert!(
                    e.contains("row 2 (line 2): a quoted cell opens here"),
                    "{e}"
                );
            }
        }
    }

    /// Found by an adversarial helper: a non-ASCII column was split at its first non-ASCII
    /// letter and never read, a missing column was reported against the few columns read, and
    /// polars renamed a duplicated column and kept `""` in a quoted name.
    #[test]
    fn headers_are_read_as_written_or_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let query = |csv: &str, q: &str| {
            let path = dir.path().join("t.csv");
            std::fs::write(&path, csv).expect("write");
            let df = run_query(&[("t".to_string(), path)], q).map_err(|e| e.to_string())?;
            Ok::<_, String>(
                df.get_column_names()
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        };
        let csv = "a,Größe,other\n1,3,z\n";
        assert_eq!(
            query(csv, "SELECT Größe AS g FROM t ORDER BY g"),
            Ok("g".into())
        );
        let e = query(csv, "SELECT a, nope FROM t ORDER BY a").expect_err("no column");
        assert!(
            e.contains("\"nope\"; the tables: t(a, Größe, other)"),
            "{e}"
        );
        let e = query("a\n1\nfoo\n", "SELECT SUM(a) AS s FROM t ORDER BY s").expect_err("text");
        assert!(
            e.contains("the column is text, because at least one"),
            "{e}"
        );
        let e = query("a,a\n1,2\n", "SELECT * FROM t ORDER BY 1").expect_err("twice");
        assert!(
            e.contains("column \"a\" appears twice in the header"),
            "{e}"
        );
        let e = query("\"a\"\"q\",b\n1,x\n", "SELECT * FROM t ORDER BY b").expect_err("quote");
        assert!(e.contains("holding `\"` cannot be read"), "{e}");
    }

    #[test]
    fn query_errors_name_the_problem() {
        let text = STAGE.replace("COUNT(*) AS n FROM t", "COUNT(*) AS n FROM nowhere");
        let dir = project(&text);
        let p = testkit::parse(&text, dir.path());
        let e = testkit::run_stage(&p.stages[0], dir.path()).expect_err("must fail");
        assert!(e.to_string().starts_with("query failed:"), "{e}");
        assert!(!dir.path().join("out.csv").exists());
    }

    /// The shipped queries of `pipeline.yaml`, run on the fixture dataset and taxonomy, give the
    /// hand-computed tables in `tests/fixtures/aggregate/expected/` (one per aggregate stage),
    /// and the validate stage gives `tests/fixtures/validate/expected/`; a second run is identical.
    #[test]
    fn shipped_queries_on_fixture_match_hand_computed() {
        let root = testkit::root();
        let p = testkit::pipeline();
        let fixtures = root.join("tests/fixtures");
        let run = || {
            let dir = tempfile::tempdir().expect("tempdir");
            place(
                &fixtures.join("validate/dataset.csv"),
                dir.path(),
                "data/raw/dataset.csv",
            );
            place(
                &fixtures.join("validate/taxonomy.yaml"),
                dir.path(),
                "data/taxonomy.yaml",
            );
            place(
                &root.join("data/corrections.yaml"),
                dir.path(),
                "data/corrections.yaml",
            );
            testkit::run_all(&p, dir.path());
            dir
        };
        let dir = run();
        let mut checked = Vec::new();
        for s in &p.stages {
            let expected_dir = match s.kind.as_str() {
                "validate" => fixtures.join("validate/expected"),
                "aggregate" => fixtures.join("aggregate/expected"),
                _ => continue,
            };
            for o in &s.outputs {
                let file = o.path.rsplit('/').next().expect("file name");
                let want = read(&expected_dir.join(file));
                let got = read(&dir.path().join(&o.path));
                assert_eq!(
                    got, want,
                    "{} (stage {}) differs from the hand-computed {file}",
                    o.path, s.name
                );
                checked.push(format!("{}/{file}", s.kind));
            }
        }
        // every hand-computed file is used by some stage
        for kind in ["validate", "aggregate"] {
            for e in std::fs::read_dir(fixtures.join(kind).join("expected")).expect("read_dir") {
                let name = e.expect("entry").file_name().to_string_lossy().into_owned();
                assert!(
                    checked.contains(&format!("{kind}/{name}")),
                    "{kind}/expected/{name} is not produced by any stage"
                );
            }
        }
        let again = run();
        for s in p
            .stages
            .iter()
            .filter(|s| s.kind == "validate" || s.kind == "aggregate")
        {
            for o in &s.outputs {
                assert_eq!(
                    std::fs::read(dir.path().join(&o.path)).expect("read"),
                    std::fs::read(again.path().join(&o.path)).expect("read"),
                    "{} differs between two runs",
                    o.path
                );
            }
        }
    }
}
