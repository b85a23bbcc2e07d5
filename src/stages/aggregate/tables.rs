//! The tables an `aggregate` query reads: CSV files typed from all their cells, of which only
//! the columns the query names are read, shared by the stages of one run.
//!
//! This module owns reading: [`read_table`] (typing), [`Tables::get`] (the per-run store that
//! parses each column of a file at most once, whichever stage asks first) and the shape check
//! that stands in for polars' own when it reads only some columns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use polars::prelude::*;

/// Reads a CSV table and types its columns from *all* its cells: a column is `Int64` when every
/// non-empty cell parses as an integer, else `Float64` when every one parses as a number,
/// `Boolean` when every one is `true` or `false`, `Date` when every one is an ISO date
/// (`2024-03-01`), else `String` (as is a column with no value at all). Empty cells are nulls.
/// These are the texts the `validate` kind writes for its `bool` and `date` columns, and the
/// texts the `aggregate` kind writes back for boolean and date results, so the types survive
/// from stage to stage (`WHERE replied`, `posted >= '2024-01-01'`, `MIN(posted)`).
///
/// (polars' own schema inference over a whole file was 10x slower than reading as strings
/// and casting; inferring from the first rows only could type a column from unrepresentative
/// rows, e.g. a rank column that is empty for the first thousand bugs.)
pub fn read_table(path: &Path) -> PolarsResult<DataFrame> {
    read_columns(path, None)
}

/// [`read_table`] of the named columns only (all with `None`). polars pushes the selection
/// into its CSV scan: the other columns are neither stored nor typed, but neither are their
/// cells counted, so a ragged row goes unnoticed (see [`Tables::get`]'s shape check).
pub fn read_columns(path: &Path, columns: Option<&[String]>) -> PolarsResult<DataFrame> {
    let mut lf = scan(path)?;
    if let Some(c) = columns {
        lf = lf.select(c.iter().map(|n| col(n.as_str())).collect::<Vec<_>>());
    }
    let raw = lf.collect()?;
    let columns = raw.columns().iter().map(infer_column).collect();
    DataFrame::new(raw.height(), columns)
}

fn scan(path: &Path) -> PolarsResult<LazyFrame> {
    LazyCsvReader::new(PlRefPath::new(path.to_string_lossy().as_ref()))
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .finish()
}

/// A file's identity: device, inode, length and modification time. Outputs are renamed into
/// place, so a rewritten table has a new identity.
type Identity = [i64; 5];

fn identity(path: &Path) -> std::io::Result<Identity> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    let signed = |v: u64| i64::from_ne_bytes(v.to_ne_bytes());
    Ok([
        signed(m.dev()),
        signed(m.ino()),
        signed(m.size()),
        m.mtime(),
        m.mtime_nsec(),
    ])
}

/// What is known of one version of one file.
#[derive(Default)]
struct Entry {
    id: Option<Identity>,
    /// Its header, once its shape was found sound.
    header: Option<Vec<String>>,
    height: usize,
    /// The typed columns parsed so far, each with when it was last used and its size.
    columns: HashMap<String, (Column, u64, usize)>,
}

/// At most this many bytes of parsed columns are kept between stages (the least recently used
/// go first; a stage still using one keeps it alive): `ARTIFACT_TABLE_BUDGET_MIB` when set, else
/// half the machine's memory (`MemTotal`), else 2 GiB. A budget smaller than what a run names
/// makes later stages parse dropped columns again, a full scan of the CSV each time: with the
/// earlier fixed 2 GiB, the paper's pipeline at 10^7 rows (24 GiB machine) took 134 s in 7.3 GiB;
/// holding every column once, 112 s in 6.7 GiB (re-parsing a 1 GB table makes its own peak).
/// [`AUTO`] until a test sets it.
static BUDGET: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(AUTO);
const AUTO: usize = usize::MAX;

/// The budget in bytes (see [`BUDGET`]).
fn budget() -> usize {
    static DEFAULT: LazyLock<usize> = LazyLock::new(|| {
        let env = std::env::var("ARTIFACT_TABLE_BUDGET_MIB").ok();
        let env = env.and_then(|m| m.trim().parse::<usize>().ok());
        let machine = || {
            let info = std::fs::read_to_string("/proc/meminfo").ok()?;
            let kib = info.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
            let kib: usize = kib.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib << 9) // half, in bytes
        };
        env.map(|m| m << 20).or_else(machine).unwrap_or(2 << 30)
    });
    match BUDGET.load(std::sync::atomic::Ordering::Relaxed) {
        AUTO => *DEFAULT,
        b => b,
    }
}

/// Bytes of the parsed columns of `path` the store holds now (for tests).
#[cfg(test)]
pub fn held(path: &Path) -> usize {
    let slot = STORE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(path)
        .cloned();
    slot.map_or(0, |slot| {
        let e = slot.lock().unwrap_or_else(|p| p.into_inner());
        e.columns.values().map(|c| c.2).sum()
    })
}

/// Sets the budget (for tests; `usize::MAX`: back to the default).
#[cfg(test)]
pub fn set_budget(bytes: usize) {
    BUDGET.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// The clock of "last used".
static TICK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn tick() -> u64 {
    TICK.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Drops the least recently used columns until the store holds at most [`BUDGET`] bytes.
/// (Locks the store, then tries each file's entry: `get` never holds an entry while taking the
/// store, and an entry a stage is reading is skipped rather than waited for.)
fn evict() {
    let store = STORE.lock().unwrap_or_else(|p| p.into_inner());
    let mut all: Vec<(u64, usize, PathBuf, String)> = Vec::new();
    for (path, slot) in store.iter() {
        let Some(e) = idle(slot) else { continue };
        all.extend(
            e.columns
                .iter()
                .map(|(n, (_, t, b))| (*t, *b, path.clone(), n.clone())),
        );
    }
    let mut total: usize = all.iter().map(|c| c.1).sum();
    all.sort();
    for (_, bytes, path, name) in all {
        if total <= budget() {
            break;
        }
        if let Some(mut e) = store.get(&path).and_then(idle) {
            e.columns.remove(&name);
        }
        total -= bytes;
    }
}

/// A file's entry when no stage is reading it (one that is holds its lock while it parses;
/// its columns are counted at the next eviction instead of stalling this one).
fn idle(slot: &Arc<Mutex<Entry>>) -> Option<std::sync::MutexGuard<'_, Entry>> {
    match slot.try_lock() {
        Ok(e) => Some(e),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// The store of the tables read in this process: each file's shape is checked once and each
/// of its columns parsed and typed once, whichever stage asks first, instead of once per stage
/// (the paper's aggregates read the same three tidy tables sixteen times). One version per
/// path is kept: a file whose identity changed is read again. Only the columns the run's
/// queries name are held, within a budget (see [`BUDGET`]).
pub struct Tables;

/// Per path. A stage reading a file holds its entry's lock while it parses, so that a second
/// stage asking for the same file waits and then finds the columns parsed, rather than parsing
/// them a second time beside it (twice the memory). This may block because the engine runs
/// each stage on a thread of its own, never nested in another stage's rayon work.
static STORE: LazyLock<Mutex<HashMap<PathBuf, Arc<Mutex<Entry>>>>> =
    LazyLock::new(Default::default);

impl Tables {
    /// The table at `path` with the columns `want` picks from its header (`None`: all of
    /// them), typed by [`read_table`]. Fails, naming the row, when the file is not rectangular
    /// (a row with more or fewer cells than the header, or a quote never closed).
    pub fn get(
        path: &Path,
        want: &dyn Fn(&[String]) -> Option<Vec<String>>,
    ) -> Result<DataFrame, String> {
        let id = identity(path).map_err(|e| format!("cannot read the file: {e}"))?;
        let slot = {
            let mut store = STORE.lock().unwrap_or_else(|p| p.into_inner());
            store.entry(path.to_path_buf()).or_default().clone()
        };
        let (table, parsed) = {
            let mut e = slot.lock().unwrap_or_else(|p| p.into_inner());
            if e.id != Some(id) {
                *e = Entry {
                    id: Some(id),
                    ..Entry::default()
                };
            }
            Self::read(&mut e, path, want)?
        };
        // (After the entry's lock is released: `evict` takes every entry's lock.)
        if parsed {
            evict();
        }
        Ok(table)
    }

    /// [`Tables::get`] under the entry's lock; also whether a column was parsed.
    fn read(
        e: &mut Entry,
        path: &Path,
        want: &dyn Fn(&[String]) -> Option<Vec<String>>,
    ) -> Result<(DataFrame, bool), String> {
        let header = match &e.header {
            Some(h) => h.clone(),
            None => {
                match super::super::csvtab::shape_problem(path) {
                    Err(io) => return Err(format!("cannot read the file: {io}")),
                    Ok(Some(why)) => return Err(why),
                    Ok(None) => {}
                }
                header_problem(path)?;
                let h: Vec<String> = scan(path)
                    .and_then(|mut lf| lf.collect_schema())
                    .map_err(|err| super::super::csvtab::explain_polars_csv_error(&err, path))?
                    .iter_names()
                    .map(|n| n.to_string())
                    .collect();
                e.header = Some(h.clone());
                h
            }
        };
        let names = want(&header).unwrap_or_else(|| header.clone());
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !e.columns.contains_key(*n))
            .cloned()
            .collect();
        let now = tick();
        if !missing.is_empty() {
            let df = read_columns(path, Some(&missing))
                .map_err(|err| super::super::csvtab::explain_polars_csv_error(&err, path))?;
            e.height = df.height();
            for c in df.columns() {
                let bytes = c.as_materialized_series().estimated_size();
                e.columns
                    .insert(c.name().to_string(), (c.clone(), now, bytes));
            }
        }
        let mut columns = Vec::with_capacity(names.len());
        for n in &names {
            let (c, used, _) = e
                .columns
                .get_mut(n)
                .ok_or_else(|| format!("no column {n:?}"))?;
            *used = now;
            columns.push(c.clone());
        }
        let table = DataFrame::new(e.height, columns).map_err(|err| err.to_string())?;
        Ok((table, !missing.is_empty()))
    }
}

/// What polars would read wrongly in a header: a name given twice (it renames the second
/// `a_duplicated_0`) or holding a `"` (it keeps the CSV escape `""` in the name).
fn header_problem(path: &Path) -> Result<(), String> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let header = rdr
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?;
    for (i, h) in header.iter().enumerate() {
        if header.iter().take(i).any(|x| x == h) {
            return Err(format!("column {h:?} appears twice in the header"));
        }
        if h.contains('"') {
            return Err(format!(
                "column {h:?}: a column name holding `\"` cannot be read; rename the column"
            ));
        }
    }
    Ok(())
}

fn infer_column(c: &Column) -> Column {
    let Ok(ca) = c.as_materialized_series().str() else {
        return c.clone();
    };
    // A cheap look at the first value picks the one type worth trying.
    let Some(first) = ca.iter().flatten().next() else {
        return c.clone();
    };
    if first.trim().parse::<f64>().is_ok() {
        for dt in [DataType::Int64, DataType::Float64] {
            if let Ok(typed) = c.strict_cast(&dt) {
                return typed;
            }
        }
    } else if first == "true" || first == "false" {
        let typed: Option<BooleanChunked> = ca
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some("true") => Some(Some(true)),
                Some("false") => Some(Some(false)),
                Some(_) => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().collect());
        if let Some(b) = typed {
            return b.with_name(c.name().clone()).into_column();
        }
    } else if iso_date(first).is_some() {
        let typed: Option<Vec<Option<i32>>> = ca
            .iter()
            .map(|v| v.map_or(Some(None), |v| iso_date(v).map(Some)))
            .collect();
        if let Some(days) = typed {
            let days: Int32Chunked = days.into_iter().collect();
            return days
                .into_date()
                .into_series()
                .with_name(c.name().clone())
                .into_column();
        }
    }
    c.clone()
}

/// Days since 1970-01-01 of a date written `YYYY-MM-DD` (exactly that shape), or `None`.
fn iso_date(v: &str) -> Option<i32> {
    let b = v.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let d = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from(d.signed_duration_since(epoch).num_days()).ok()
}
