//! The `claims` kind: checks numbers a paper states against the pipeline's result tables.
//!
//! Input: a claims file (YAML, `version: 1`, `claims: [...]`) and every CSV the claims read.
//! Each claim has an `id`, where it is printed (`source`), the value `printed` as in the paper
//! (`"929"`, `"1,053"`, `"65%"`, `"0.927"`), and either a `result` (how to compute it from a
//! CSV) or `needs` (the input the public data lacks). The comparison `rule` is `exact` (the
//! printed number equals the computed one), `rounded` (the computed number rounded to the
//! printed precision equals it; the default), `truncated` (cut, not rounded, to the printed
//! precision: 41.26 printed as 41.2) or `tolerance` (within `tolerance:` of the printed value).
//! A claim may carry `expect: mismatch` with a `reason`, so a known paper-vs-data discrepancy
//! stays visible without failing.
//!
//! `result` keys: `file` (a declared input CSV), `where` (column -> condition, all must hold: a
//! value the cell equals, or one operator `{ne: v}`, `{in: [a, b]}`, `{not_in: [...]}`,
//! `{gt|ge|lt|le: number}`), `column`, and `agg`: `value` (exactly one matching row; default), `sum`, `count`
//! (matching rows), `distinct` (distinct values of `column` among matching rows), `min`, `max`;
//! and `percent_of` (another query, same keys, `file` defaulting to this one's): the result is
//! then 100 x this / that, computed from unrounded counts (rounding an already-rounded
//! percentage twice can flip the last digit). `reason` explains a claim (required with
//! `expect: mismatch`); documented mismatches get no macro.
//!
//! Outputs (declared, in this order): a CSV with one row per claim (`id, source, printed,
//! computed, rule, status, expected, note`; status is `PASS`, `MISMATCH` or `NEEDS INPUT`), and
//! a LaTeX file of macros, one per computed claim (`\newcommand{\NumBugs}{929}`), formatted
//! with the printed precision, so a paper can `\input` its numbers from the pipeline.
//!
//! `with:` keys: `claims` (path of the claims file; must be a declared input).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, anyhow, bail};
use engine::kind::{InputPath, Kind, Problem, StageCtx, StageError};
use engine::spec::{Node, StageSpec, from_node};
use serde::{Deserialize, Serialize};

use super::csvtab::Table;
use super::numfmt::NumFormat;

/// `with:` of a `claims` stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    claims: InputPath,
}

/// The claims file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    pub version: u32,
    pub claims: Vec<Claim>,
    /// Analyses of the paper that print no single checkable number but cannot be redone from
    /// the public data either; the report lists them with the input each needs.
    #[serde(default)]
    pub unsupported: Vec<Unsupported>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsupported {
    pub what: String,
    pub source: String,
    pub needs: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub id: String,
    /// Where the number is printed: paper version and table / figure / section.
    pub source: String,
    /// What the number is, in words.
    #[serde(default)]
    pub what: String,
    /// The value as printed.
    pub printed: String,
    #[serde(default)]
    pub result: Option<Query>,
    #[serde(default)]
    pub rule: Rule,
    /// With `rule: tolerance`: the largest accepted distance from the printed value.
    #[serde(default)]
    pub tolerance: Option<f64>,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default)]
    pub reason: Option<String>,
    /// For claims the public data cannot support: the missing input.
    #[serde(default)]
    pub needs: Option<String>,
    /// Outputs of the pipeline that show this number (a figure or a table), for the report's
    /// links; the report adds the figures and tables made from the claim's `result` file.
    #[serde(default)]
    pub shown_in: Vec<String>,
    /// LaTeX macro name (letters only) for `values.tex`; default derived from `id`.
    #[serde(default, rename = "macro")]
    pub macro_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Required at the top level; inside `percent_of` it defaults to the outer query's file.
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Cond>,
    #[serde(default)]
    pub column: Option<String>,
    #[serde(default)]
    pub agg: Agg,
    /// When set, the result is 100 * (this query) / (that query): a percentage computed from
    /// unrounded counts, never from an already-rounded percentage column.
    #[serde(default)]
    pub percent_of: Option<Box<Query>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agg {
    #[default]
    Value,
    Sum,
    Count,
    Distinct,
    Min,
    Max,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Exact,
    #[default]
    Rounded,
    /// Cut toward zero at the printed precision (some papers truncate: 92/223 = 41.26 %
    /// printed as 41.2 %).
    Truncated,
    /// Within the claim's `tolerance` (absolute, in the printed unit) of the printed value.
    Tolerance,
}

/// One `where` condition on a column: a plain value (the cell equals it, as text or as a
/// number), or a map with one operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Eq(String),
    Ne(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    /// `gt`, `ge`, `lt`, `le` against a number.
    Cmp(&'static str, f64),
}

const OPERATORS: &str = "ne, in, not_in, gt, ge, lt, le";

/// A scalar YAML value as the text a CSV cell would hold.
fn scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Cond {
    fn from_value(v: &serde_json::Value) -> Result<Cond, String> {
        if let Some(t) = scalar_text(v) {
            return Ok(Cond::Eq(t));
        }
        let expected = format!("a value, or a map with one operator ({OPERATORS})");
        let serde_json::Value::Object(m) = v else {
            return Err(format!("expected {expected}"));
        };
        let mut it = m.iter();
        let (Some((op, arg)), None) = (it.next(), it.next()) else {
            return Err(format!("expected {expected}, found {} keys", m.len()));
        };
        let list = || -> Result<Vec<String>, String> {
            arg.as_array()
                .and_then(|a| a.iter().map(scalar_text).collect::<Option<Vec<_>>>())
                .ok_or_else(|| format!("`{op}` takes a list of values"))
        };
        let number = |name: &'static str| -> Result<Cond, String> {
            arg.as_f64()
                .map(|x| Cond::Cmp(name, x))
                .ok_or_else(|| format!("`{op}` takes a number"))
        };
        match op.as_str() {
            "ne" => scalar_text(arg)
                .map(Cond::Ne)
                .ok_or_else(|| "`ne` takes a value".to_string()),
            "in" => list().map(Cond::In),
            "not_in" => list().map(Cond::NotIn),
            "gt" => number("gt"),
            "ge" => number("ge"),
            "lt" => number("lt"),
            "le" => number("le"),
            other => Err(format!(
                "unknown operator `{other}` (expected one of {OPERATORS})"
            )),
        }
    }

    /// Whether `cell` satisfies the condition; `Err` when a comparison meets a cell that is not
    /// a number.
    fn holds(&self, cell: &str) -> Result<bool, String> {
        let same = |v: &str| {
            cell == v
                || matches!((cell.trim().parse::<f64>(), v.trim().parse::<f64>()), (Ok(a), Ok(b)) if a == b)
        };
        Ok(match self {
            Cond::Eq(v) => same(v),
            Cond::Ne(v) => !same(v),
            Cond::In(vs) => vs.iter().any(|v| same(v)),
            Cond::NotIn(vs) => !vs.iter().any(|v| same(v)),
            Cond::Cmp(op, x) => {
                let c: f64 = cell.trim().parse().map_err(|_| {
                    format!("value {cell:?} is not a number, so `{op}` cannot compare it")
                })?;
                match *op {
                    "gt" => c > *x,
                    "ge" => c >= *x,
                    "lt" => c < *x,
                    _ => c <= *x,
                }
            }
        })
    }
}

impl std::fmt::Display for Cond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cond::Eq(v) => write!(f, "= {v}"),
            Cond::Ne(v) => write!(f, "!= {v}"),
            Cond::In(vs) => write!(f, "in [{}]", vs.join(", ")),
            Cond::NotIn(vs) => write!(f, "not in [{}]", vs.join(", ")),
            Cond::Cmp(op, x) => {
                let sym = match *op {
                    "gt" => ">",
                    "ge" => ">=",
                    "lt" => "<",
                    _ => "<=",
                };
                write!(f, "{sym} {x}")
            }
        }
    }
}

impl<'de> Deserialize<'de> for Cond {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cond, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Cond::from_value(&v).map_err(serde::de::Error::custom)
    }
}

/// `where` as text for messages and the claims map: `engine = vLLM, bugs > 5`.
pub fn describe(filter: &BTreeMap<String, Cond>) -> String {
    filter
        .iter()
        .map(|(c, cond)| format!("{c} {cond}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    #[default]
    Pass,
    Mismatch,
}

/// A printed number: its value, decimals shown, and decoration.
#[derive(Debug, Clone, PartialEq)]
pub struct Printed {
    pub value: f64,
    pub decimals: usize,
    pub percent: bool,
    pub thousands: bool,
}

/// Parses "1,053", "65%", "0.927", "37.8".
pub fn parse_printed(s: &str) -> Option<Printed> {
    let t = s.trim();
    let (t, percent) = match t.strip_suffix('%') {
        Some(x) => (x.trim_end_matches('\\').trim(), true),
        None => (t, false),
    };
    // Digits, in groups of three after the first when commas group them, and a decimal
    // part: "1,2" (a decimal comma), "1,0,0", "1e3" and "NaN" are not printed numbers.
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    let (int, frac) = match unsigned.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (unsigned, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let mut groups = int.split(',');
    let lead = groups.next().unwrap_or_default();
    let lead_ok = digits(lead) && (lead.len() <= 3 || !int.contains(','));
    if !lead_ok || !groups.all(|g| g.len() == 3 && digits(g)) || !frac.is_none_or(digits) {
        return None;
    }
    let thousands = t.contains(',');
    let plain: String = t.chars().filter(|c| *c != ',').collect();
    let value: f64 = plain.parse().ok()?;
    let decimals = plain.split_once('.').map_or(0, |(_, d)| d.len());
    Some(Printed {
        value,
        decimals,
        percent,
        thousands,
    })
}

impl Printed {
    /// The [`NumFormat`] that prints a number the way this one was printed: its decimals,
    /// thousands commas if it had any, and its percent sign (`\%` when `latex`).
    pub fn num_format(&self, latex: bool) -> NumFormat {
        let f = NumFormat::new(self.decimals).thousands_if(self.thousands, ",");
        match (self.percent, latex) {
            (false, _) => f,
            (true, false) => f.percent("%"),
            (true, true) => f.percent("\\%"),
        }
    }
}

/// Formats `v` like `like` was printed (precision, thousands separator, percent sign as `\%`
/// when `latex`), rounding as every output does ([`crate::stages::numfmt`]).
pub fn format_like(v: f64, like: &Printed, latex: bool) -> String {
    like.num_format(latex).format(v)
}

/// A claim's verdict: `PASS`, `MISMATCH` or `NEEDS INPUT`, as written in the verdict CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClaimStatus {
    /// The computed number, formatted like the printed one, equals it.
    #[serde(rename = "PASS")]
    Pass,
    /// It does not.
    #[serde(rename = "MISMATCH")]
    Mismatch,
    /// The public data cannot compute it (the claim has `needs:` instead of `result:`).
    #[serde(rename = "NEEDS INPUT")]
    NeedsInput,
}

impl ClaimStatus {
    /// The label written in the CSV and printed by `check` and the report.
    pub fn label(self) -> &'static str {
        match self {
            ClaimStatus::Pass => "PASS",
            ClaimStatus::Mismatch => "MISMATCH",
            ClaimStatus::NeedsInput => "NEEDS INPUT",
        }
    }
}

impl std::fmt::Display for ClaimStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One row of the verdict CSV (the `claims` kind's first output): written here, read by
/// `artifact check` and `artifact report` through the same type. The field order is the CSV's
/// column order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimVerdict {
    pub id: String,
    pub source: String,
    pub printed: String,
    /// The computed number (integers as integers, else two more decimals than printed, to
    /// show the rounding); empty for `NEEDS INPUT`.
    pub computed: String,
    pub rule: Rule,
    pub status: ClaimStatus,
    /// `mismatch` when the claims file documents a paper-vs-data discrepancy.
    pub expected: Expect,
    pub note: String,
}

impl ClaimVerdict {
    pub fn expected_mismatch(&self) -> bool {
        self.expected == Expect::Mismatch
    }

    /// Mismatches not documented, and documented ones that no longer occur.
    pub fn unexpected(&self) -> bool {
        match self.status {
            ClaimStatus::Mismatch => !self.expected_mismatch(),
            ClaimStatus::Pass => self.expected_mismatch(),
            ClaimStatus::NeedsInput => false,
        }
    }
}

/// Reads a verdict CSV written by the `claims` kind.
pub fn read_verdicts(path: &std::path::Path) -> anyhow::Result<Vec<ClaimVerdict>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    rdr.deserialize()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|e| {
                anyhow!(
                    "{}: row {}: not a claim verdict ({e}); run the claims stage again",
                    path.display(),
                    i + 2
                )
            })
        })
        .collect()
}

/// One evaluated claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: String,
    pub source: String,
    pub printed: String,
    pub computed: Option<f64>,
    pub rule: Rule,
    pub status: ClaimStatus,
    pub expected_mismatch: bool,
    pub note: String,
}

fn lookup(
    q: &Query,
    default_file: Option<&str>,
    tables: &mut BTreeMap<String, Table>,
    ctx: &StageCtx<'_>,
) -> anyhow::Result<f64> {
    let file = q
        .file
        .as_deref()
        .or(default_file)
        .ok_or_else(|| anyhow!("`result` needs a `file`"))?
        .to_string();
    let value = lookup_one(q, &file, tables, ctx)?;
    match &q.percent_of {
        None => Ok(value),
        Some(d) => {
            let whole = lookup(d, Some(&file), tables, ctx)?;
            if whole == 0.0 {
                bail!("{file}: percent_of is zero");
            }
            Ok(100.0 * value / whole)
        }
    }
}

fn lookup_one(
    q: &Query,
    file: &str,
    tables: &mut BTreeMap<String, Table>,
    ctx: &StageCtx<'_>,
) -> anyhow::Result<f64> {
    if !tables.contains_key(file) {
        let path = ctx.declared_input(file).map_err(|e| anyhow!("{e}"))?;
        tables.insert(file.to_string(), Table::read(&path, file)?);
    }
    let q_file = file;
    let t = &tables[file];
    let mut filters = Vec::new();
    for (c, cond) in &q.filter {
        filters.push((t.col(c).with_context(|| q_file.to_string())?, c, cond));
    }
    let mut rows: Vec<&Vec<String>> = Vec::new();
    for r in &t.rows {
        let mut all = true;
        for (i, c, cond) in &filters {
            if !cond
                .holds(&r[*i])
                .map_err(|e| anyhow!("{q_file}: column {c:?}: {e}"))?
            {
                all = false;
                break;
            }
        }
        if all {
            rows.push(r);
        }
    }
    // When nothing matches, say which equality matched no row at all, and what the column has.
    let unmatched = || -> String {
        let mut hints = Vec::new();
        for (i, c, cond) in &filters {
            if let Cond::Eq(v) = cond
                && !t.rows.iter().any(|r| cond.holds(&r[*i]).unwrap_or(false))
            {
                // The first 13 distinct values (12 shown, the 13th only says there are more):
                // a column of a million distinct ids is not scanned against all the others.
                let mut seen: Vec<&str> = Vec::new();
                for r in &t.rows {
                    if !seen.contains(&r[*i].as_str()) {
                        seen.push(&r[*i]);
                        if seen.len() > 12 {
                            break;
                        }
                    }
                }
                let more = if seen.len() > 12 { ", ..." } else { "" };
                seen.truncate(12);
                hints.push(format!(
                    "; no row has {c} = {v} (values: {}{more})",
                    seen.join(", ")
                ));
            }
        }
        hints.concat()
    };
    let col = match (&q.column, q.agg) {
        (None, Agg::Count) => None,
        (None, _) => bail!("`column` is required unless agg is count"),
        (Some(c), _) => Some(t.col(c).with_context(|| q_file.to_string())?),
    };
    let num = |r: &Vec<String>, i: usize| -> anyhow::Result<f64> {
        let v = r[i].trim().parse::<f64>().ok().filter(|v| v.is_finite());
        v.ok_or_else(|| {
            anyhow!(
                "{}: value {:?} in column {:?} is not a (finite) number",
                q_file,
                r[i],
                t.header[i]
            )
        })
    };
    Ok(match q.agg {
        Agg::Count => rows.len() as f64,
        Agg::Distinct => {
            let i = col.expect("checked");
            let set: std::collections::BTreeSet<&str> =
                rows.iter().map(|r| r[i].as_str()).collect();
            set.len() as f64
        }
        Agg::Value => {
            if rows.len() != 1 {
                bail!(
                    "{}: {} rows match `where` {} (expected exactly one){}",
                    q_file,
                    rows.len(),
                    describe(&q.filter),
                    unmatched()
                );
            }
            num(rows[0], col.expect("checked"))?
        }
        Agg::Sum | Agg::Min | Agg::Max => {
            let i = col.expect("checked");
            let vals = rows
                .iter()
                .map(|r| num(r, i))
                .collect::<anyhow::Result<Vec<f64>>>()?;
            if vals.is_empty() {
                bail!(
                    "{}: no rows match `where` {}{}",
                    q_file,
                    describe(&q.filter),
                    unmatched()
                );
            }
            match q.agg {
                Agg::Sum => vals.iter().sum(),
                Agg::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
                _ => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            }
        }
    })
}

/// Evaluates every claim.
pub fn evaluate(file: &ClaimsFile, ctx: &StageCtx<'_>) -> anyhow::Result<Vec<Outcome>> {
    let mut tables = BTreeMap::new();
    let mut out = Vec::new();
    for c in &file.claims {
        let printed = parse_printed(&c.printed).ok_or_else(|| {
            anyhow!(
                "claim {}: printed value {:?} is not a number (digits, commas between groups \
                 of three, a `.` before decimals, a trailing `%`)",
                c.id,
                c.printed
            )
        })?;
        let mut o = Outcome {
            id: c.id.clone(),
            source: c.source.clone(),
            printed: c.printed.clone(),
            computed: None,
            rule: c.rule,
            status: ClaimStatus::NeedsInput,
            expected_mismatch: c.expect == Expect::Mismatch,
            note: c
                .reason
                .clone()
                .or_else(|| c.needs.clone().map(|n| format!("needs {n}")))
                .unwrap_or_default(),
        };
        if let Some(q) = &c.result {
            let v = lookup(q, None, &mut tables, ctx).with_context(|| format!("claim {}", c.id))?;
            let shown = |x: f64| format_like(x, &printed, false);
            let ok = match c.rule {
                Rule::Exact => (v - printed.value).abs() < 1e-9,
                Rule::Rounded => shown(v) == shown(printed.value),
                Rule::Truncated => {
                    // Cut at the printed precision; the epsilon keeps 0.29999999 (a float's
                    // 0.3) from being cut to 0.2.
                    let scale = 10f64.powi(printed.decimals as i32);
                    shown((v * scale + v.signum() * 1e-9).trunc() / scale) == shown(printed.value)
                }
                Rule::Tolerance => (v - printed.value).abs() <= c.tolerance.unwrap_or(0.0) + 1e-9,
            };
            o.computed = Some(v);
            o.status = if ok {
                ClaimStatus::Pass
            } else {
                ClaimStatus::Mismatch
            };
        }
        out.push(o);
    }
    Ok(out)
}

/// Macro name from an id: `bugs_total` -> `BugsTotal`; digits spelled out (LaTeX macro names
/// are letters only).
pub fn macro_from_id(id: &str) -> String {
    const DIGITS: [&str; 10] = [
        "Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine",
    ];
    let mut s = String::new();
    for part in id.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut first = true;
        for ch in part.chars() {
            if let Some(d) = ch.to_digit(10) {
                s.push_str(DIGITS[d as usize]);
                first = true;
            } else if first {
                s.push(ch.to_ascii_uppercase());
                first = false;
            } else {
                s.push(ch);
            }
        }
    }
    s
}

fn verdicts(outcomes: &[Outcome], file: &ClaimsFile) -> Vec<ClaimVerdict> {
    outcomes
        .iter()
        .zip(&file.claims)
        .map(|(o, c)| {
            let computed = match (o.computed, parse_printed(&c.printed)) {
                // Integers as integers; otherwise two more digits than printed, to show the
                // rounding.
                (Some(v), Some(p)) if v.fract() == 0.0 => format_like(
                    v,
                    &Printed {
                        decimals: 0,
                        thousands: false,
                        ..p
                    },
                    false,
                ),
                (Some(v), Some(p)) => format_like(
                    v,
                    &Printed {
                        decimals: (p.decimals + 2).min(6),
                        thousands: false,
                        ..p
                    },
                    false,
                ),
                _ => String::new(),
            };
            ClaimVerdict {
                id: o.id.clone(),
                source: o.source.clone(),
                printed: o.printed.clone(),
                computed,
                rule: o.rule,
                status: o.status,
                expected: if o.expected_mismatch {
                    Expect::Mismatch
                } else {
                    Expect::Pass
                },
                note: o.note.clone(),
            }
        })
        .collect()
}

fn csv_out(verdicts: &[ClaimVerdict]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for v in verdicts {
        w.serialize(v).expect("write to memory");
    }
    w.into_inner().expect("flush to memory")
}

fn values_tex(outcomes: &[Outcome], file: &ClaimsFile, claims_path: &str) -> String {
    let mut s = format!(
        "% Generated by artifact from {claims_path}: one macro per number the pipeline computes,\n\
         % formatted like the paper prints it. \\input{{values}} and write \\NumBugs etc. Do not edit.\n"
    );
    for (o, c) in outcomes.iter().zip(&file.claims) {
        let (Some(v), Some(p)) = (o.computed, parse_printed(&c.printed)) else {
            continue;
        };
        if o.expected_mismatch {
            // A documented paper error: the number is the one its twin claim already defines.
            continue;
        }
        let name = c.macro_name.clone().unwrap_or_else(|| macro_from_id(&c.id));
        let _ = writeln!(
            s,
            "\\newcommand{{\\{name}}}{{{}}}",
            format_like(v, &p, true)
        );
    }
    s
}

/// Reads and validates a claims file, with located errors naming it `shown` (its path in the
/// project).
pub fn read_claims(path: &std::path::Path, shown: &str) -> anyhow::Result<ClaimsFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
    let node = Node::parse(&text).map_err(|(l, m)| anyhow!("{shown}:{}:{}: {m}", l.line, l.col))?;
    let f: ClaimsFile = from_node(&node).map_err(|errs| {
        let lines: Vec<String> = errs
            .iter()
            .map(|e| {
                let l = e.loc.unwrap_or_default();
                format!("{shown}:{}:{}: error: {}", l.line, l.col, e.message)
            })
            .collect();
        anyhow!("{}", lines.join("\n"))
    })?;
    let mut problems = Vec::new();
    if f.version != 1 {
        problems.push(format!("unsupported version {} (expected 1)", f.version));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut macros = std::collections::BTreeSet::new();
    for c in &f.claims {
        if !ids.insert(c.id.clone()) {
            problems.push(format!("claim {}: duplicate id", c.id));
        }
        if parse_printed(&c.printed).is_none() {
            problems.push(format!(
                "claim {}: printed value {:?} is not a number (digits, commas between groups \
                 of three, a `.` before decimals, a trailing `%`)",
                c.id, c.printed
            ));
        }
        if c.result.as_ref().is_some_and(|q| q.file.is_none()) {
            problems.push(format!("claim {}: `result` needs a `file`", c.id));
        }
        match (&c.result, &c.needs) {
            (None, None) => {
                problems.push(format!("claim {}: give either `result` or `needs`", c.id))
            }
            (Some(_), Some(_)) => problems.push(format!(
                "claim {}: `result` and `needs` exclude each other",
                c.id
            )),
            _ => {}
        }
        match (c.rule, c.tolerance) {
            (Rule::Tolerance, None) => problems.push(format!(
                "claim {}: `rule: tolerance` needs a `tolerance` (the largest accepted distance)",
                c.id
            )),
            (Rule::Tolerance, Some(t)) if !(t >= 0.0 && t.is_finite()) => problems.push(format!(
                "claim {}: tolerance {t} must be a number at least 0",
                c.id
            )),
            (r, Some(_)) if r != Rule::Tolerance => problems.push(format!(
                "claim {}: `tolerance` applies only with `rule: tolerance`",
                c.id
            )),
            _ => {}
        }
        if c.expect == Expect::Mismatch && c.reason.is_none() {
            problems.push(format!(
                "claim {}: `expect: mismatch` needs a `reason`",
                c.id
            ));
        }
        let m = c.macro_name.clone().unwrap_or_else(|| macro_from_id(&c.id));
        if m.is_empty() || !m.chars().all(|ch| ch.is_ascii_alphabetic()) {
            problems.push(format!(
                "claim {}: macro name {m:?} must be letters only",
                c.id
            ));
        }
        if c.result.is_some() && c.expect == Expect::Pass && !macros.insert(m.clone()) {
            problems.push(format!("claim {}: macro name {m:?} is used twice", c.id));
        }
    }
    if !problems.is_empty() {
        bail!("{shown}: {}", problems.join("; "));
    }
    Ok(f)
}

/// See the module docs.
pub struct ClaimsKind;

impl ClaimsKind {
    /// The claims file `stage` checks, if it is a validated `claims` stage.
    pub fn claims_file(stage: &StageSpec) -> Option<&str> {
        Self::params_of(stage).map(|p| p.claims.as_str())
    }
}

impl Kind for ClaimsKind {
    type Params = Params;
    fn name(&self) -> &'static str {
        "claims"
    }
    fn version(&self) -> u32 {
        // 2: printed values such as "1,2" or "1e3" and non-finite result cells, accepted by
        // version 1, are errors; a cached version-1 verdict must not stand for them.
        2
    }
    fn about(&self) -> &'static str {
        "check the paper's printed numbers against result CSVs; write a verdict CSV and LaTeX macros"
    }
    fn validate(&self, _p: &Params, stage: &StageSpec) -> Vec<Problem> {
        let exts: Vec<&str> = stage
            .outputs
            .iter()
            .map(|o| o.path.rsplit('.').next().unwrap_or(""))
            .collect();
        if exts != ["csv", "tex"] {
            return vec![Problem::new(
                stage.outputs.first().map(|o| o.loc),
                "outputs must be a .csv (verdicts) and a .tex (macros), in that order",
            )];
        }
        Vec::new()
    }
    fn run(&self, p: &Params, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        // `{:#}` prints the whole chain ("claim x: results/a.csv: no column ..."): the outer
        // context alone hides what is wrong.
        let file = read_claims(&ctx.input(&p.claims), p.claims.as_str());
        let file = file.map_err(|e| format!("{e:#}"))?;
        let outcomes = evaluate(&file, ctx).map_err(|e| format!("{e:#}"))?;
        let write = |rel: &str, bytes: &[u8]| -> Result<(), StageError> {
            let path = ctx
                .output(rel)
                .map_err(|e| format!("cannot create the folder of {rel}: {e}"))?;
            std::fs::write(&path, bytes).map_err(|e| format!("cannot write {rel}: {e}").into())
        };
        write(
            &ctx.stage.outputs[0].path,
            &csv_out(&verdicts(&outcomes, &file)),
        )?;
        write(
            &ctx.stage.outputs[1].path,
            values_tex(&outcomes, &file, p.claims.as_str()).as_bytes(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_numbers() {
        let p = parse_printed("1,053").unwrap();
        assert_eq!(
            (p.value, p.decimals, p.percent, p.thousands),
            (1053.0, 0, false, true)
        );
        let p = parse_printed("65%").unwrap();
        assert_eq!((p.value, p.decimals, p.percent), (65.0, 0, true));
        assert_eq!(format_like(64.91, &p, false), "65%");
        assert_eq!(format_like(64.91, &p, true), "65\\%");
        let p = parse_printed("0.927").unwrap();
        assert_eq!(format_like(0.9271, &p, false), "0.927");
        assert_eq!(
            format_like(12345.0, &parse_printed("1,000").unwrap(), false),
            "12,345"
        );
        assert!(parse_printed("n/a").is_none());
        // Found by an adversarial helper: each of these passed against 100 or 12.
        for bad in [
            "1,0,0", "1,2", ",12", "12,", "1.2e1", "NaN", "inf", "1e999", "1.", "+1",
        ] {
            assert!(parse_printed(bad).is_none(), "{bad}");
        }
        for good in ["-0", "-1,234.5", "1,234,567", "12345", "0.5%", "41.2\\%"] {
            assert!(parse_printed(good).is_some(), "{good}");
        }
    }

    /// "stage claims failed: claim bugs_total" hid "no column bugz": the whole chain is
    /// reported, with the columns that exist.
    #[test]
    fn a_failing_claim_keeps_its_cause_and_names_the_columns() {
        let e = check(
            "engine,bugs\nvLLM,290\n",
            "  - id: bugs_total\n    source: v1 abstract\n    printed: \"290\"\n    result: {file: r.csv, column: bugz, agg: sum}\n",
        )
        .expect_err("no column bugz");
        assert_eq!(
            e,
            "claim bugs_total: r.csv: no column \"bugz\" (columns: engine, bugs)"
        );
    }

    /// Runs one claims stage over `csv` (as r.csv) with `claims` (the YAML list's items).
    fn check(csv: &str, claims: &str) -> Result<String, String> {
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("r.csv"), csv).expect("write");
        std::fs::write(
            dir.path().join("claims.yaml"),
            format!("version: 1\nclaims:\n{claims}"),
        )
        .expect("write");
        let loc = engine::diag::Loc::new(1, 1);
        let path = |p: &str| engine::spec::PathSpec {
            path: p.to_string(),
            loc,
            name: None,
        };
        let stage = StageSpec {
            name: "claims".into(),
            loc,
            kind: "claims".into(),
            description: None,
            inputs: vec![path("claims.yaml"), path("r.csv")],
            outputs: vec![path("out/claims.csv"), path("out/values.tex")],
            with: Node::parse("claims: claims.yaml\n").expect("yaml"),
            params: None,
        };
        let env = engine::kind::RunEnv::default();
        let cancel = AtomicBool::new(false);
        let ctx = StageCtx {
            stage: &stage,
            root: dir.path(),
            out_root: dir.path(),
            env: &env,
            key_digest: "0123456789abcdef",
            cancel: &cancel,
        };
        engine::kind::DynKind::run(&ClaimsKind, &ctx).map_err(|e| e.to_string())?;
        Ok(std::fs::read_to_string(dir.path().join("out/claims.csv")).expect("verdicts"))
    }

    const SHARE: &str = "part,whole\n92,223\n";

    #[test]
    fn truncated_and_tolerance_rules() {
        // 92/223 = 41.256...: rounded 41.3, truncated 41.2.
        let claim = |printed: &str, rule: &str| {
            format!(
                "  - {{id: c, source: s, printed: \"{printed}\", {rule}result: {{file: r.csv, column: part, agg: sum, percent_of: {{column: whole, agg: sum}}}}}}\n"
            )
        };
        let status = |printed: &str, rule: &str| {
            let out = check(SHARE, &claim(printed, rule)).expect("runs");
            out.lines()
                .nth(1)
                .expect("row")
                .split(',')
                .nth(5)
                .expect("status")
                .to_string()
        };
        assert_eq!(status("41.2%", ""), "MISMATCH");
        assert_eq!(status("41.3%", ""), "PASS");
        assert_eq!(status("41.2%", "rule: truncated, "), "PASS");
        assert_eq!(status("41.3%", "rule: truncated, "), "MISMATCH");
        assert_eq!(status("41%", "rule: tolerance, tolerance: 0.3, "), "PASS");
        assert_eq!(
            status("41%", "rule: tolerance, tolerance: 0.2, "),
            "MISMATCH"
        );
        // Truncation cuts floats that are a hair under the printed value the right way.
        let csv = "part,whole\n3,10\n";
        let out = check(csv, &claim("30%", "rule: truncated, ")).expect("runs");
        assert!(out.contains(",PASS,"), "{out}");
    }

    #[test]
    fn tolerance_is_required_with_its_rule_and_only_there() {
        let base =
            "id: c, source: s, printed: \"1\", result: {file: r.csv, column: part, agg: sum}";
        let e =
            check(SHARE, &format!("  - {{{base}, rule: tolerance}}\n")).expect_err("no tolerance");
        assert!(
            e.contains("claim c: `rule: tolerance` needs a `tolerance`"),
            "{e}"
        );
        assert!(e.contains("claims.yaml"), "the file is named: {e}");
        let e = check(SHARE, &format!("  - {{{base}, tolerance: 1}}\n")).expect_err("stray");
        assert!(
            e.contains("`tolerance` applies only with `rule: tolerance`"),
            "{e}"
        );
        let e = check(
            SHARE,
            &format!("  - {{{base}, rule: tolerance, tolerance: -1}}\n"),
        )
        .expect_err("negative");
        assert!(
            e.contains("tolerance -1 must be a number at least 0"),
            "{e}"
        );
    }

    const ENGINES: &str = "engine,bugs\nvLLM,290\nSGLang,120\nMLC-LLM,80\n";

    fn value(claims_where: &str, agg: &str) -> Result<String, String> {
        let out = check(
            ENGINES,
            &format!(
                "  - {{id: c, source: s, printed: \"1\", result: {{file: r.csv, column: bugs, agg: {agg}, where: {claims_where}}}}}\n"
            ),
        )?;
        Ok(out
            .lines()
            .nth(1)
            .expect("row")
            .split(',')
            .nth(3)
            .expect("computed")
            .to_string())
    }

    #[test]
    fn where_conditions_beyond_equality() {
        assert_eq!(value("{engine: vLLM}", "sum").unwrap(), "290");
        assert_eq!(value("{engine: {ne: vLLM}}", "sum").unwrap(), "200");
        assert_eq!(
            value("{engine: {in: [vLLM, SGLang]}}", "sum").unwrap(),
            "410"
        );
        assert_eq!(value("{engine: {not_in: [vLLM]}}", "count").unwrap(), "2");
        assert_eq!(value("{bugs: {gt: 100}}", "count").unwrap(), "2");
        assert_eq!(
            value("{bugs: {le: 120}, engine: {ne: SGLang}}", "sum").unwrap(),
            "80"
        );
        // A number in YAML matches the cell's text as a number.
        assert_eq!(value("{bugs: 120}", "count").unwrap(), "1");
        assert_eq!(value("{bugs: 120.0}", "count").unwrap(), "1");
    }

    #[test]
    fn where_errors_name_the_operator_column_and_values() {
        let e = value("{engine: {gtt: 1}}", "sum").unwrap_err();
        assert!(
            e.contains("unknown operator `gtt` (expected one of ne, in, not_in"),
            "{e}"
        );
        assert!(
            e.contains("claims.yaml:"),
            "located in the claims file: {e}"
        );
        let e = value("{engine: {gt: 1}}", "sum").unwrap_err();
        assert!(
            e.contains("column \"engine\": value \"vLLM\" is not a number"),
            "{e}"
        );
        let e = value("{engine: {in: vLLM}}", "sum").unwrap_err();
        assert!(e.contains("`in` takes a list of values"), "{e}");
        let e = value("{engine: vllm}", "value").unwrap_err();
        assert_eq!(
            e,
            "claim c: r.csv: 0 rows match `where` engine = vllm (expected exactly one); no row has engine = vllm (values: vLLM, SGLang, MLC-LLM)"
        );
        let e = value("{engine: vllm}", "sum").unwrap_err();
        assert!(
            e.contains("no rows match `where` engine = vllm; no row has"),
            "{e}"
        );
    }

    #[test]
    fn macro_names() {
        assert_eq!(macro_from_id("bugs_total"), "BugsTotal");
        assert_eq!(macro_from_id("fig5_total_v2"), "FigFiveTotalVTwo");
    }
}
