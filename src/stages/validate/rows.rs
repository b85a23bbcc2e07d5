//! The row checks of `validate` and their report: reads the raw CSV (csv crate, streaming),
//! filters rows, checks every cell (type, vocabulary, structure), the uniqueness keys, the
//! parallel columns and the rules, and collects every problem with bounded memory (the full
//! list is streamed to a CSV file).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use engine::kind::{Located, StageError};
use rayon::prelude::*;
use regex::Regex;

use super::vocab::{FastMap, Vocab};
use super::{Column, Cond, Params, Type};

/// The rows kept and checked: `(source row, values per column)`, values in canonical text (a
/// single-valued column holds zero (null) or one value).
#[derive(Debug, Default)]
pub struct Checked {
    pub rows: Vec<(u64, Vec<Vec<String>>)>,
    /// Rows left out by `keep` / `drop`.
    pub filtered: u64,
}

/// One checked row's values, column by column (`values[i]` is column `i`'s values, none for
/// an empty cell), in canonical text. A value is borrowed from the row when it is already
/// canonical (the common case; an alias's target or a re-written number is owned), and the
/// columns share one list, so a row costs a few allocations, not one per cell.
#[derive(Clone, Debug, Default)]
pub struct Values<'r> {
    cells: Vec<Cow<'r, str>>,
    /// Where each column's values end in `cells`.
    ends: Vec<usize>,
}

impl<'r> Values<'r> {
    fn with_capacity(columns: usize) -> Self {
        Values {
            cells: Vec::with_capacity(columns),
            ends: Vec::with_capacity(columns),
        }
    }

    /// Borrows rows held as strings (`Checked::rows`).
    pub fn from_rows(columns: &'r [Vec<String>]) -> Self {
        let mut v = Values::with_capacity(columns.len());
        for c in columns {
            v.cells.extend(c.iter().map(|s| Cow::Borrowed(s.as_str())));
            v.ends.push(v.cells.len());
        }
        v
    }

    /// The values as owned strings, column by column.
    pub fn to_rows(&self) -> Vec<Vec<String>> {
        self.columns()
            .map(|c| c.iter().map(|v| v.to_string()).collect())
            .collect()
    }

    /// Each column's values, in order.
    pub fn columns(&self) -> impl Iterator<Item = &[Cow<'r, str>]> {
        (0..self.ends.len()).map(|i| &self[i])
    }
}

impl<'r> std::ops::Index<usize> for Values<'r> {
    type Output = [Cow<'r, str>];
    fn index(&self, i: usize) -> &Self::Output {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.cells[start..self.ends[i]]
    }
}

/// `{column.attr}` or `{column.attr|attr}` in a pattern.
static PLACEHOLDER: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(
        r"\{([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*(?:\|[A-Za-z_][A-Za-z0-9_]*)*)\}",
    )
    .expect("placeholder regex")
});

/// A `matches` pattern: a regular expression with `{column.attr|attr}` placeholders.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// Literal regex text and placeholders, alternating (`parts.len() == refs.len() + 1`).
    pub parts: Vec<String>,
    pub refs: Vec<(String, Vec<String>)>,
}

impl Pattern {
    pub fn parse(text: &Located<String>) -> Result<Pattern, String> {
        let p = Self::split(text);
        let dummy: Vec<Vec<String>> = p.refs.iter().map(|_| vec!["x".to_string()]).collect();
        Regex::new(&p.regex(&dummy)).map_err(|e| {
            let msg = e.to_string();
            let last = msg.lines().last().unwrap_or("").trim().to_string();
            format!("`matches` is not a valid regular expression: {last}")
        })?;
        Ok(p)
    }

    /// Splits text at its placeholders.
    pub fn split(text: &str) -> Pattern {
        let ph = &*PLACEHOLDER;
        let (mut parts, mut refs, mut last) = (Vec::new(), Vec::new(), 0);
        for c in ph.captures_iter(text) {
            let m = c.get(0).expect("match");
            parts.push(text[last..m.start()].to_string());
            refs.push((
                c[1].to_string(),
                c[2].split('|').map(str::to_string).collect(),
            ));
            last = m.end();
        }
        parts.push(text[last..].to_string());
        Pattern { parts, refs }
    }

    /// The anchored regex with each placeholder replaced by the escaped alternatives.
    fn regex(&self, values: &[Vec<String>]) -> String {
        let mut s = String::from("^(?:");
        for (i, part) in self.parts.iter().enumerate() {
            s.push_str(part);
            if let Some(vs) = values.get(i).filter(|_| i < self.refs.len()) {
                let alts: Vec<String> = vs.iter().map(|v| regex::escape(v)).collect();
                s.push_str(&format!("(?:{})", alts.join("|")));
            }
        }
        s.push_str(")$");
        s
    }

    /// `template` with each placeholder replaced by `value(column, attributes)`.
    pub fn fill(template: &str, value: &dyn Fn(&str, &[String]) -> String) -> String {
        let t = Self::split(template);
        let mut out = String::new();
        for (i, part) in t.parts.iter().enumerate() {
            out.push_str(part);
            if let Some((col, attrs)) = t.refs.get(i) {
                out.push_str(&value(col, attrs));
            }
        }
        out
    }
}

/// One problem in one cell of the raw CSV.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowProblem {
    /// CSV row number, the header being row 1.
    pub row: u64,
    /// The column's position in `columns` (for sorting; after the last for whole-row problems).
    pub order: usize,
    /// The raw column name.
    pub column: String,
    /// The row's identity (its first uniqueness key), when there is one.
    pub key: String,
    pub kind: &'static str,
    pub message: String,
    /// The offending value (one value of a multi-valued cell).
    pub value: String,
    pub expected: String,
    /// "did you mean" / "it fits ...", when one candidate is close.
    pub hint: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!(" ({})", clip(&self.key))
        };
        write!(
            f,
            "row {}{key}, column {:?}: {} {:?}; expected {}",
            self.row,
            self.column,
            self.message,
            clip(&self.value),
            self.expected
        )?;
        if !self.hint.is_empty() {
            write!(f, "; {}", self.hint)?;
        }
        Ok(())
    }
}

/// A value for a message: at most [`CLIP`] characters, then how many there are.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP) {
        None => s.to_string(),
        Some((i, _)) => format!("{}... ({} characters)", &s[..i], s.chars().count()),
    }
}

const CLIP: usize = 80;
/// Problems shown per column and kind; the rest are counted (and in the problem file).
pub const SHOWN_PER_KIND: usize = 20;
/// Problems kept in memory in any case (the first ones, in row order).
const KEPT: usize = 1000;
/// Values listed in an expected set before "... and N more".
const LISTED: usize = 30;

/// Every problem found in the raw CSV; nothing was written.
#[derive(Debug)]
pub struct ValidateError {
    pub input: String,
    /// The kept problems, sorted by row then column.
    pub problems: Vec<RowProblem>,
    pub total: u64,
    /// (column order, column, kind) -> number of problems.
    pub counts: BTreeMap<(usize, String, &'static str), u64>,
    /// Where every problem is listed (or why it could not be written).
    pub log: Option<String>,
}

impl std::error::Error for ValidateError {}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} problem(s) (header = row 1); nothing was written:",
            self.input, self.total
        )?;
        let mut shown: HashMap<(usize, &str), usize> = HashMap::new();
        let mut n = 0u64;
        for p in &self.problems {
            let k = shown.entry((p.order, p.kind)).or_default();
            if *k < SHOWN_PER_KIND {
                *k += 1;
                n += 1;
                write!(f, "\n  {p}")?;
            }
        }
        if n < self.total {
            write!(
                f,
                "\n  ... and {} more (the first {SHOWN_PER_KIND} of each column and kind are shown)",
                self.total - n
            )?;
        }
        write!(f, "\nproblems by column:")?;
        let mut by_col: Vec<(&str, u64, Vec<String>)> = Vec::new();
        for ((_, column, kind), count) in &self.counts {
            match by_col.last_mut() {
                Some((c, total, kinds)) if *c == column.as_str() => {
                    *total += count;
                    kinds.push(format!("{kind}: {count}"));
                }
                _ => by_col.push((column.as_str(), *count, vec![format!("{kind}: {count}")])),
            }
        }
        for (column, total, kinds) in by_col {
            write!(f, "\n  {column:?}: {total} ({})", kinds.join(", "))?;
        }
        if let Some(log) = &self.log {
            write!(f, "\nevery problem is listed in {log}")?;
        }
        Ok(())
    }
}

type LogWriter = csv::Writer<std::io::BufWriter<std::fs::File>>;

/// Collects problems row by row with bounded memory, streaming each to the problem file.
struct Collector {
    kept: Vec<RowProblem>,
    kept_per_kind: HashMap<(usize, &'static str), usize>,
    counts: BTreeMap<(usize, String, &'static str), u64>,
    total: u64,
    log: Option<PathBuf>,
    writer: Option<(PathBuf, LogWriter)>,
    log_error: Option<String>,
}

impl Collector {
    fn new(log: Option<&Path>) -> Self {
        Collector {
            kept: Vec::new(),
            kept_per_kind: HashMap::new(),
            counts: BTreeMap::new(),
            total: 0,
            log: log.map(Path::to_path_buf),
            writer: None,
            log_error: None,
        }
    }

    /// Takes the problems of one row (sorted here).
    fn row(&mut self, row: &mut Vec<RowProblem>) {
        row.sort();
        for p in row.drain(..) {
            self.total += 1;
            *self
                .counts
                .entry((p.order, p.column.clone(), p.kind))
                .or_default() += 1;
            self.write(&p);
            let k = self.kept_per_kind.entry((p.order, p.kind)).or_default();
            if *k < SHOWN_PER_KIND || self.kept.len() < KEPT {
                *k += 1;
                self.kept.push(p);
            }
        }
    }

    fn write(&mut self, p: &RowProblem) {
        let Some(log) = &self.log else { return };
        if self.log_error.is_some() {
            return;
        }
        if self.writer.is_none() {
            let tmp = engine::fsutil::temp_sibling(log);
            let opened = log
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::File::create(&tmp));
            match opened {
                Ok(f) => {
                    let mut w = csv::WriterBuilder::new()
                        .terminator(csv::Terminator::Any(b'\n'))
                        .from_writer(std::io::BufWriter::new(f));
                    let _ = w.write_record([
                        "row", "column", "key", "problem", "value", "expected", "hint",
                    ]);
                    self.writer = Some((tmp, w));
                }
                Err(e) => {
                    self.log_error = Some(format!("cannot write {}: {e}", log.display()));
                    return;
                }
            }
        }
        if let Some((_, w)) = &mut self.writer {
            let row = p.row.to_string();
            let r = w.write_record([
                row.as_str(),
                &p.column,
                &p.key,
                &p.message,
                &p.value,
                &p.expected,
                &p.hint,
            ]);
            if let Err(e) = r {
                self.log_error = Some(format!("cannot write the problem file: {e}"));
            }
        }
    }

    /// The error to report, or `None` when nothing was found (a stale problem file is removed).
    fn finish(mut self, input: &Path) -> Option<ValidateError> {
        if self.total == 0 {
            if let Some(log) = &self.log {
                let _ = std::fs::remove_file(log);
            }
            return None;
        }
        let mut log = None;
        if let (Some(path), Some((tmp, w))) = (&self.log, self.writer.take()) {
            let done = w
                .into_inner()
                .map_err(|e| e.to_string())
                .and_then(|mut b| std::io::Write::flush(&mut b).map_err(|e| e.to_string()))
                .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
            match done {
                Ok(()) => log = Some(path.display().to_string()),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    self.log_error = Some(format!("cannot write {}: {e}", path.display()));
                }
            }
        }
        if let Some(e) = &self.log_error {
            log = Some(format!("(no file: {e})"));
        }
        Some(ValidateError {
            input: input.display().to_string(),
            problems: self.kept,
            total: self.total,
            counts: self.counts,
            log,
        })
    }
}

/// Replaces the absolute input path in an error by the project-relative one, and the problem
/// file's path by `log_rel`.
pub fn relabel(e: StageError, rel: &str, abs: &Path, log_rel: &str) -> StageError {
    match e.downcast::<ValidateError>() {
        Ok(mut c) => {
            c.input = rel.to_string();
            if c.log.as_ref().is_some_and(|l| !l.starts_with('(')) {
                c.log = Some(log_rel.to_string());
            }
            c
        }
        Err(e) => e
            .to_string()
            .replace(&abs.display().to_string(), rel)
            .into(),
    }
}

/// "did you mean X?" when one candidate is close to `v` (same letters ignoring case, or within a
/// small edit distance).
pub fn did_you_mean<'a>(v: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let lv = v.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    let mut tie = false;
    for c in candidates {
        let d = strsim::levenshtein(&lv, &c.to_lowercase());
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tie = true,
            _ => {
                best = Some((d, c));
                tie = false;
            }
        }
    }
    match best {
        Some((d, c)) if !tie && d <= (v.chars().count() / 4).max(2) => {
            format!("did you mean {c:?}?")
        }
        _ => String::new(),
    }
}

/// `one of {"a", "b"}`, at most [`LISTED`] values.
fn one_of<'a>(vals: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<String> = vals.map(|s| format!("{s:?}")).collect();
    let more = all.len().saturating_sub(LISTED);
    let mut s = format!("one of {{{}", all[..all.len() - more].join(", "));
    if more > 0 {
        s.push_str(&format!(", ... and {more} more"));
    }
    s.push('}');
    s
}

/// A column as checked: its parameters, vocabulary and position in the raw CSV.
struct Col<'a> {
    name: &'a str,
    raw: &'a str,
    spec: &'a Column,
    vocab: Option<&'a Vocab>,
    idx: usize,
    expected: String,
}

/// Splits a raw cell into its values (none for an empty cell).
fn split<'c>(cell: &'c str, c: &Column) -> Vec<&'c str> {
    match (&c.separator, cell.is_empty()) {
        (_, true) => Vec::new(),
        (Some(s), false) => cell.split(s.as_str()).collect(),
        (None, false) => vec![cell],
    }
}

/// The canonical text of a typed value (the cell itself when it is already canonical), or
/// what is wrong with it.
fn typed<'v>(v: &'v str, c: &Column) -> Result<Cow<'v, str>, (&'static str, String)> {
    let canonical = |t: String| match t == v {
        true => Cow::Borrowed(v),
        false => Cow::Owned(t),
    };
    match c.ty {
        Type::String => Ok(Cow::Borrowed(v)),
        Type::Int => v
            .parse::<i64>()
            .map(|n| match itoa::Buffer::new().format(n) == v {
                true => Cow::Borrowed(v),
                false => Cow::Owned(n.to_string()),
            })
            .map_err(|_| ("not an integer", "an integer such as 42".into())),
        Type::Float => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(canonical(format!("{x:?}"))),
            _ => Err(("not a number", "a finite number such as 4.2".into())),
        },
        Type::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Cow::Borrowed("true")),
            "false" | "no" | "0" => Ok(Cow::Borrowed("false")),
            _ => Err(("not a boolean", "true/false, yes/no or 1/0".into())),
        },
        Type::Date => {
            let fmt = c.format.as_deref().unwrap_or("%Y-%m-%d");
            chrono::NaiveDate::parse_from_str(v, fmt)
                .map(|d| canonical(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| ("not a date", format!("a date written {fmt}")))
        }
    }
}

/// Whether `values` meet `c` (any value, for a multi-valued cell). `re` is the compiled
/// `matches` pattern, when there is one.
fn holds(c: &Cond, values: &[impl AsRef<str>], re: Option<&Regex>) -> bool {
    if let Some(e) = c.empty {
        return values.is_empty() == e;
    }
    values.iter().any(|v| {
        let v = v.as_ref();
        if let Some(x) = &c.equals {
            v == x
        } else if let Some(set) = &c.one_of {
            set.iter().any(|x| x == v)
        } else {
            re.is_some_and(|r| r.is_match(v))
        }
    })
}

/// A condition in words (for messages).
fn describe(c: &Cond) -> String {
    let col = &c.column.value;
    match (&c.equals, &c.one_of, &c.matches, c.empty) {
        (Some(x), ..) => format!("{col} is {x:?}"),
        (_, Some(s), ..) => format!("{col} is {}", one_of(s.iter().map(String::as_str))),
        (_, _, Some(m), _) => format!("{col} matches {:?}", m.value),
        (.., Some(true)) => format!("{col} is empty"),
        _ => format!("{col} is not empty"),
    }
}

/// Compiles a condition's pattern when it has no placeholders.
fn fixed_regex(c: &Cond) -> Option<Regex> {
    let m = c.matches.as_ref()?;
    let p = Pattern::parse(m).ok()?;
    p.refs
        .is_empty()
        .then(|| Regex::new(&p.regex(&[])).ok())
        .flatten()
}

/// Rule patterns with placeholders, compiled once per substitution: keyed by the rule's index
/// and the vocabulary nodes its placeholders take their attributes from (which fix the
/// pattern), so a row costs a lookup, not building and hashing the pattern's text.
type RegexCache = FastMap<(usize, Vec<usize>), Option<Regex>>;

/// The compiled pattern of `key`, built by `pattern` at its first use.
fn compiled(
    map: &mut RegexCache,
    key: (usize, Vec<usize>),
    pattern: impl FnOnce() -> String,
) -> Option<&Regex> {
    map.entry(key)
        .or_insert_with(|| Regex::new(&pattern()).ok())
        .as_ref()
}

/// What checking one row gives (see `check_stream`).
enum Outcome<'r> {
    /// Left out by `keep` / `drop`.
    Filtered,
    /// Unreadable as a row (not UTF-8, wrong number of cells): its problems.
    Rejected(Vec<RowProblem>),
    /// Each column's values, which columns have a problem, and the problems.
    Checked {
        values: Values<'r>,
        bad: Vec<bool>,
        problems: Vec<RowProblem>,
    },
}

/// Types a row-checking closure: what it returns borrows from the row it is given.
fn row_checker<F>(f: F) -> F
where
    F: for<'r> Fn(u64, &'r csv::StringRecord, &mut RegexCache) -> Outcome<'r> + Sync,
{
    f
}

/// The keys of one `unique` list seen so far, each with the row it was first seen at: their
/// texts one after another in one buffer, found by hash. (A map of `String`s cost an allocation
/// and a free per row, a quarter of the stage's time at 10^6 rows.)
#[derive(Default)]
struct Seen {
    text: String,
    /// (start, end) of a key in `text`, and its row.
    table: hashbrown::HashTable<(usize, usize, u64)>,
    hasher: foldhash::fast::FixedState,
}

impl Seen {
    /// The row where `key` was first seen; `None` when it is new (it is then recorded at `row`).
    fn first(&mut self, key: &str, row: u64) -> Option<u64> {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(key);
        let text = &self.text;
        if let Some(&(.., first)) = self.table.find(hash, |&(s, e, _)| &text[s..e] == key) {
            return Some(first);
        }
        let start = self.text.len();
        self.text.push_str(key);
        let (text, hasher) = (&self.text, &self.hasher);
        self.table
            .insert_unique(hash, (start, text.len(), row), |&(s, e, _)| {
                hasher.hash_one(&text[s..e])
            });
        None
    }
}

/// A row's identity as problems show it: the raw cells of its first uniqueness key.
fn row_key(uniques: &[Vec<usize>], cols: &[Col<'_>], record: &csv::StringRecord) -> String {
    uniques
        .first()
        .map(|k| {
            k.iter()
                .map(|i| record.get(cols[*i].idx).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Reads and checks the raw CSV; every problem is collected (and written to `log`), and the
/// checked rows are returned (for tests and small files; the stage streams them, see
/// [`check_stream`]).
pub fn check_file(
    input: &Path,
    p: &Params,
    vocabs: &BTreeMap<String, Vocab>,
    corrections: Option<&super::Corrections>,
    log: Option<&Path>,
) -> Result<Checked, StageError> {
    let mut rows = Vec::new();
    let mut out = check_stream(input, p, vocabs, corrections, log, &mut |row, values| {
        rows.push((row, values.to_rows()));
        Ok(())
    })?;
    out.rows = rows;
    Ok(out)
}

/// A consumer of checked rows: the source row and each column's values.
pub type RowSink<'a> = dyn FnMut(u64, &Values<'_>) -> Result<(), StageError> + Send + 'a;

/// Reads and checks the raw CSV, handing each checked row to `sink`, in row order, as long as
/// no problem has been found (rows go in batches, so the rest of the batch where the first
/// problem appears may still reach it; after that batch rows are only checked, so that every
/// problem is listed, and the run fails: what `sink` wrote is never used). Nothing holds more
/// than one batch of rows in memory.
pub fn check_stream(
    input: &Path,
    p: &Params,
    vocabs: &BTreeMap<String, Vocab>,
    corrections: Option<&super::Corrections>,
    log: Option<&Path>,
    sink: &mut RowSink<'_>,
) -> Result<Checked, StageError> {
    let bytes =
        std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "{}: the file is empty; expected a header row with the columns {}",
            input.display(),
            p.columns
                .0
                .iter()
                .map(|(k, c)| format!("{:?}", c.from.as_deref().unwrap_or(k)))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into());
    }
    let mut b = csv::ReaderBuilder::new();
    b.has_headers(true).flexible(true).delimiter(p.delimiter());
    match p.quote() {
        Some(q) => b.quote(q),
        None => b.quoting(false),
    };
    let mut rdr = b.from_reader(body);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("{}: the header row cannot be read: {e}", input.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut cols = Vec::new();
    let mut missing = Vec::new();
    for (name, spec) in &p.columns.0 {
        let raw = spec.from.as_deref().unwrap_or(&name.value);
        let vocab = spec.vocabulary.as_ref().and_then(|v| vocabs.get(&v.value));
        let expected = vocab.map_or_else(String::new, |v| {
            one_of(v.leaves().map(|n| n.written.as_str()))
        });
        match header.iter().position(|h| h == raw) {
            Some(idx) => cols.push(Col {
                name: &name.value,
                raw,
                spec,
                vocab,
                idx,
                expected,
            }),
            None => {
                let hint = did_you_mean(raw, header.iter().map(String::as_str));
                missing.push(if hint.is_empty() {
                    format!("{raw:?}")
                } else {
                    format!("{raw:?} ({hint})")
                });
            }
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "{}: missing column(s) {} (the header has: {})",
            input.display(),
            missing.join(", "),
            header
                .iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .into());
    }
    let pos = |name: &str| {
        cols.iter()
            .position(|c| c.name == name)
            .expect("checked column")
    };
    let keep: Vec<(usize, &Cond, Option<Regex>)> = p
        .keep
        .iter()
        .map(|c| (pos(&c.column), c, fixed_regex(c)))
        .collect();
    let drop: Vec<(usize, &Cond, Option<Regex>)> = p
        .drop
        .iter()
        .map(|c| (pos(&c.column), c, fixed_regex(c)))
        .collect();
    let rules: Vec<_> = p
        .rules
        .iter()
        .map(|r| {
            let when = r.when.as_ref().map(|c| (pos(&c.column), c, fixed_regex(c)));
            let pat = r
                .require
                .matches
                .as_ref()
                .and_then(|m| Pattern::parse(m).ok());
            // The columns the pattern's placeholders name.
            let refs: Vec<usize> = pat
                .iter()
                .flat_map(|p| p.refs.iter().map(|(c, _)| pos(c)))
                .collect();
            (
                when,
                pos(&r.require.column),
                pat,
                fixed_regex(&r.require),
                r,
                refs,
            )
        })
        .collect();
    let uniques: Vec<Vec<usize>> = p
        .unique
        .iter()
        .map(|k| k.iter().map(|c| pos(c)).collect())
        .collect();
    let parallel: Vec<Vec<usize>> = p
        .parallel
        .iter()
        .map(|g| g.iter().map(|c| pos(c)).collect())
        .collect();
    let mut seen: Vec<Seen> = uniques.iter().map(|_| Seen::default()).collect();
    let mut key = String::new();
    let mut fixes = corrections.map(|c| c.applier(&|name| cols[pos(name)].idx));
    let mut out = Checked::default();
    let mut collector = Collector::new(log);
    let whole_row = cols.len();
    // One row's checks, all but uniqueness (which needs the rows before it). They read only
    // the row (and fill the worker's own pattern cache), so a batch of rows is checked in
    // parallel; uniqueness, the problem file and the tables then take the rows in order.
    let check_row = row_checker(|row, record, regexes| {
        let mut problems: Vec<RowProblem> = Vec::new();
        // The row's key, as problems show it (built only when there is one).
        let key = || row_key(&uniques, &cols, record);
        let mut push = |order: usize,
                        kind: &'static str,
                        message: String,
                        value: &str,
                        expected: String,
                        hint: String| {
            let column = cols.get(order).map_or("(row)", |c| c.raw).to_string();
            problems.push(RowProblem {
                row,
                order,
                column,
                key: key(),
                kind,
                message,
                value: value.to_string(),
                expected,
                hint,
            });
        };
        if record.len() != header.len() {
            push(
                whole_row,
                "wrong number of cells",
                format!(
                    "{} cell(s) but the header has {}:",
                    record.len(),
                    header.len()
                ),
                &record.iter().collect::<Vec<_>>().join(","),
                "one cell per header column (quote a value holding the delimiter)".into(),
                String::new(),
            );
            return Outcome::Rejected(problems);
        }
        let raw = |i: usize| split(record.get(cols[i].idx).unwrap_or(""), cols[i].spec);
        if !keep
            .iter()
            .all(|(i, c, re)| holds(c, &raw(*i), re.as_ref()))
            || drop
                .iter()
                .any(|(i, c, re)| holds(c, &raw(*i), re.as_ref()))
        {
            return Outcome::Filtered;
        }
        // Cells.
        let mut values = Values::with_capacity(cols.len());
        let mut bad = vec![false; cols.len()];
        for (i, c) in cols.iter().enumerate() {
            let start = values.cells.len();
            for cell in raw(i) {
                // An alias's target is the vocabulary's; the kept value then owns a copy (the
                // values borrow only from the row).
                let (v, aliased) = match c
                    .vocab
                    .filter(|_| c.spec.aliases)
                    .and_then(|voc| voc.aliases.get(cell))
                {
                    Some(to) if to.is_empty() => continue,
                    Some(to) => (to.as_str(), true),
                    None => (cell, false),
                };
                if v.is_empty() {
                    push(
                        i,
                        "empty value",
                        "empty value".into(),
                        v,
                        "a value".into(),
                        String::new(),
                    );
                    bad[i] = true;
                    continue;
                }
                // The value as the tables will hold it: a vocabulary label as written, else
                // typed (an int, a date in ISO form, ...).
                let kept = if let Some(voc) = c.vocab {
                    if !voc.leaf.contains_key(v) {
                        let message = if v.trim() != v {
                            "unknown value (surrounding spaces)"
                        } else {
                            "unknown value"
                        };
                        let hint = did_you_mean(v, voc.leaves().map(|n| n.written.as_str()));
                        push(
                            i,
                            "unknown value",
                            message.into(),
                            v,
                            c.expected.clone(),
                            hint,
                        );
                        bad[i] = true;
                        continue;
                    }
                    match aliased {
                        true => Cow::Owned(v.to_string()),
                        false => Cow::Borrowed(cell),
                    }
                } else {
                    // (Only vocabulary columns have aliases: here `v` is `cell`.)
                    match typed(cell, c.spec) {
                        Ok(t) => t,
                        Err((kind, expected)) => {
                            push(i, kind, kind.into(), v, expected, String::new());
                            bad[i] = true;
                            continue;
                        }
                    }
                };
                if c.spec.distinct && values.cells[start..].contains(&kept) {
                    push(
                        i,
                        "listed twice",
                        "value listed twice".into(),
                        v,
                        "distinct values in a cell".into(),
                        String::new(),
                    );
                    bad[i] = true;
                }
                values.cells.push(kept);
            }
            if values.cells.len() == start && !c.spec.optional && !bad[i] {
                push(
                    i,
                    "empty value",
                    "empty value".into(),
                    "",
                    "a value".into(),
                    String::new(),
                );
                bad[i] = true;
            }
            values.ends.push(values.cells.len());
        }
        // Parallel columns.
        for g in &parallel {
            if g.iter().any(|i| bad[*i]) {
                continue;
            }
            let n0 = values[g[0]].len();
            if let Some(&j) = g.iter().find(|j| values[**j].len() != n0) {
                let names: Vec<&str> = g.iter().map(|i| cols[*i].raw).collect();
                push(
                    j,
                    "lengths differ",
                    format!(
                        "{} value(s), but {n0} in {:?}:",
                        values[j].len(),
                        cols[g[0]].raw
                    ),
                    record.get(cols[j].idx).unwrap_or(""),
                    format!(
                        "as many values as in each parallel column ({})",
                        names.join(", ")
                    ),
                    String::new(),
                );
                bad[j] = true;
            }
        }
        // Rules.
        for (n, (when, req, pat, fixed, rule, refs)) in rules.iter().enumerate() {
            let involved = when
                .iter()
                .map(|w| w.0)
                .chain([*req])
                .chain(refs.iter().copied());
            if involved.into_iter().any(|i| bad[i]) {
                continue;
            }
            if let Some((i, c, re)) = when
                && !holds(c, &values[*i], re.as_ref())
            {
                continue;
            }
            let attrs_of = |col: usize, label: &str, attrs: &[String]| -> Vec<String> {
                let Some(node) = cols[col]
                    .vocab
                    .and_then(|v| v.leaf.get(label).map(|i| &v.nodes[*i]))
                else {
                    return Vec::new();
                };
                attrs
                    .iter()
                    .flat_map(|a| node.attrs.get(a).cloned().unwrap_or_default())
                    .collect()
            };
            let node_of = |col: usize, label: &str| {
                cols[col]
                    .vocab
                    .and_then(|v| v.leaf.get(label).copied())
                    .unwrap_or(usize::MAX)
            };
            let (ok, expected, hint) = match pat {
                Some(pt) if !pt.refs.is_empty() => {
                    let nodes = refs
                        .iter()
                        .map(|ci| node_of(*ci, &values[*ci][0]))
                        .collect();
                    let re = compiled(regexes, (n, nodes), || {
                        let subst: Vec<Vec<String>> = pt
                            .refs
                            .iter()
                            .zip(refs)
                            .map(|((_, attrs), ci)| attrs_of(*ci, &values[*ci][0], attrs))
                            .collect();
                        pt.regex(&subst)
                    });
                    let ok = re
                        .as_ref()
                        .is_some_and(|r| values[*req].iter().any(|v| r.is_match(v)));
                    if ok {
                        continue;
                    }
                    let template = rule.expected.clone().unwrap_or_else(|| {
                        rule.require
                            .matches
                            .as_ref()
                            .map_or(String::new(), |m| m.value.clone())
                    });
                    let expected = Pattern::fill(&template, &|col, attrs| {
                        let ci = pos(col);
                        let v = values[ci].first().map_or("", |v| v.as_ref());
                        attrs_of(ci, v, attrs)
                            .into_iter()
                            .next()
                            .unwrap_or_default()
                    });
                    let mut hint = String::new();
                    if !ok && refs.len() == 1 {
                        let (ci, attrs) = (refs[0], &pt.refs[0].1);
                        let voc = cols[ci].vocab.expect("vocabulary");
                        for other in voc.leaves().filter(|l| l.written != values[ci][0]) {
                            let alt = || pt.regex(&[attrs_of(ci, &other.written, attrs)]);
                            if compiled(regexes, (n, vec![node_of(ci, &other.written)]), alt)
                                .is_some_and(|r| values[*req].iter().any(|v| r.is_match(v)))
                            {
                                hint = format!(
                                    "it fits {} {:?} (the row has {:?})",
                                    cols[ci].name, other.written, values[ci][0]
                                );
                                break;
                            }
                        }
                    }
                    (ok, expected, hint)
                }
                _ => {
                    if holds(&rule.require, &values[*req], fixed.as_ref()) {
                        continue;
                    }
                    let expected = match &rule.expected {
                        Some(t) => Pattern::fill(t, &|col, attrs| match cols.get(pos(col)) {
                            Some(c) if c.vocab.is_some() && values[pos(col)].len() == 1 => {
                                attrs_of(pos(col), &values[pos(col)][0], attrs)
                                    .into_iter()
                                    .next()
                                    .unwrap_or_default()
                            }
                            _ => values[pos(col)].join(", "),
                        }),
                        None => describe(&rule.require),
                    };
                    (false, expected, String::new())
                }
            };
            if !ok {
                let when = when.as_ref().map_or(String::new(), |(_, c, _)| {
                    format!(" (when {})", describe(c))
                });
                let shown = values[*req].join(
                    cols[*req]
                        .spec
                        .separator
                        .as_deref()
                        .map_or("", |s| s.as_str()),
                );
                push(
                    *req,
                    "rule",
                    format!("rule {}{when} fails for", n + 1),
                    &shown,
                    expected,
                    hint,
                );
            }
        }
        Outcome::Checked {
            values,
            bad,
            problems,
        }
    });

    const BATCH: usize = 8192;
    let workers = rayon::current_num_threads().max(1);
    // Patterns with placeholders, compiled once per distinct substitution, in one cache per
    // worker that lives for the whole file. (Borrowed, never cloned: a cloned `Regex` starts
    // with an empty cache, which made every row rebuild it.)
    let mut caches: Vec<RegexCache> = (0..workers).map(|_| RegexCache::default()).collect();
    // (row number, whether its bytes are UTF-8, the record): records are reused batch to batch.
    let mut batch: Vec<(u64, bool, csv::StringRecord)> = Vec::new();
    let mut row = 1u64;
    let mut end = false;
    while !end {
        let mut n = 0;
        while n < BATCH {
            if batch.len() == n {
                batch.push((0, true, csv::StringRecord::new()));
            }
            let slot = &mut batch[n];
            row += 1;
            slot.0 = row;
            slot.1 = true;
            match rdr.read_record(&mut slot.2) {
                Ok(false) => {
                    end = true;
                    break;
                }
                Ok(true) => {
                    if let Some(f) = fixes.as_mut() {
                        f.apply(row, &mut slot.2);
                    }
                }
                Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => slot.1 = false,
                Err(e) => return Err(format!("{}: row {row}: {e}", input.display()).into()),
            }
            n += 1;
        }
        let rows = &batch[..n];
        let outcomes: Vec<Vec<Outcome>> = rows
            .par_chunks(n.div_ceil(workers).max(1))
            .zip(caches.par_iter_mut())
            .map(|(part, cache)| {
                part.iter()
                    .map(|(row, utf8, record)| match utf8 {
                        true => check_row(*row, record, cache),
                        false => Outcome::Rejected(vec![RowProblem {
                            row: *row,
                            order: whole_row,
                            column: "(row)".into(),
                            key: String::new(),
                            kind: "not UTF-8",
                            message: "bytes that are not UTF-8 in".into(),
                            value: String::new(),
                            expected: "UTF-8 text".into(),
                            hint: String::new(),
                        }]),
                    })
                    .collect()
            })
            .collect();
        // In row order: uniqueness and the problems on one side, the tables on the other. The
        // tables are written ahead of the verdict: once a problem turns up the run fails and
        // they are discarded, and no later batch is written.
        let clean_so_far = collector.total == 0;
        let (_, written) = rayon::join(
            || {
                for ((row, _, record), outcome) in rows.iter().zip(outcomes.iter().flatten()) {
                    let row = *row;
                    let (values, bad, problems) = match outcome {
                        Outcome::Filtered => {
                            out.filtered += 1;
                            continue;
                        }
                        Outcome::Rejected(problems) => {
                            collector.row(&mut problems.clone());
                            continue;
                        }
                        Outcome::Checked {
                            values,
                            bad,
                            problems,
                        } => (values, bad, problems),
                    };
                    let mut problems = problems.clone();
                    for (k, key_cols) in uniques.iter().enumerate() {
                        if key_cols.iter().any(|i| bad[*i]) {
                            continue;
                        }
                        key.clear();
                        for (n, i) in key_cols.iter().enumerate() {
                            if n > 0 {
                                key.push('\u{1f}');
                            }
                            for (m, v) in values[*i].iter().enumerate() {
                                if m > 0 {
                                    key.push('\u{1e}');
                                }
                                key.push_str(v);
                            }
                        }
                        let Some(first) = seen[k].first(&key, row) else {
                            continue;
                        };
                        let shown = key_cols
                            .iter()
                            .map(|i| values[*i].join(", "))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let names: Vec<&str> = key_cols.iter().map(|i| cols[*i].name).collect();
                        problems.push(RowProblem {
                            row,
                            order: key_cols[0],
                            column: cols[key_cols[0]].raw.to_string(),
                            key: row_key(&uniques, &cols, record),
                            kind: "duplicate key",
                            message: format!("duplicate (first at row {first}):"),
                            value: shown,
                            expected: format!("unique values of ({})", names.join(", ")),
                            hint: String::new(),
                        });
                    }
                    collector.row(&mut problems);
                }
            },
            || -> Result<(), StageError> {
                if !clean_so_far {
                    return Ok(());
                }
                for ((row, ..), outcome) in rows.iter().zip(outcomes.iter().flatten()) {
                    if let Outcome::Checked { values, .. } = outcome {
                        sink(*row, values)?;
                    }
                }
                Ok(())
            },
        );
        written?;
    }
    if let Some(f) = fixes {
        let name = |idx: usize| {
            cols.iter()
                .find(|c| c.idx == idx)
                .map_or_else(String::new, |c| c.name.to_string())
        };
        f.finish(&name)?;
    }
    if let Some(err) = collector.finish(input) {
        // An unclosed quote swallows the rest of the file into one cell: say so, not what the
        // giant cell is not.
        if p.delimiter() == b','
            && p.quote() == Some(b'"')
            && let Some(why) = super::super::csvtab::diagnose(&bytes)
            && why.contains("never closed")
        {
            return Err(format!("{}: {why}", input.display()).into());
        }
        return Err(Box::new(err));
    }
    Ok(out)
}
