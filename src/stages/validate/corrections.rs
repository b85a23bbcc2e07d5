//! Corrections: hand edits of a raw dataset that a `validate` stage applies to the raw cells
//! before it checks them, so that an author can relabel a row of a pinned (read-only) download
//! and regenerate everything, with each edit written down, reviewed and re-checked.
//!
//! The file (`corrections:` in `with:`, a declared input) is a YAML list; each entry names the
//! row by the raw values of one or more columns (`where`), the values it expects to find
//! (`was`, so that an edit made against another version of the data fails instead of
//! overwriting something else), the new values (`set`) and the reason (`why`):
//!
//! ```yaml
//! - where: {url: "https://github.com/org/repo/issues/12"}
//!   was: {root_cause: Configuration}
//!   set: {root_cause: Operators}
//!   why: the fix changed a kernel, not a setting (discussion in the issue)
//! ```
//!
//! Column names are the stage's column names (not the raw headers). Every entry must match
//! exactly one row. The reviewer report lists how many corrections each stage applied and says
//! that the results no longer come from the pinned data alone.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use engine::kind::Located;
use serde::Deserialize;

use super::Params;

/// One correction, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    #[serde(rename = "where")]
    pub at: Located<BTreeMap<String, String>>,
    pub was: Located<BTreeMap<String, String>>,
    pub set: Located<BTreeMap<String, String>>,
    pub why: Located<String>,
}

/// A loaded corrections file: its entries, with what is needed to apply them.
#[derive(Debug, Default)]
pub struct Corrections {
    /// The file as the user wrote its path.
    pub shown: String,
    pub list: Vec<Located<Correction>>,
}

impl Corrections {
    /// Reads and checks `path` (shown as `shown`) against the stage's columns; every problem
    /// at once, as `shown:line:column: ...`.
    pub fn load(path: &Path, shown: &str, p: &Params) -> Result<Corrections, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{shown}: cannot read the file: {e}"))?;
        Self::parse(&text, shown, p)
    }

    pub fn parse(text: &str, shown: &str, p: &Params) -> Result<Corrections, String> {
        // An empty file, or one of comments only, holds no corrections.
        let list: Vec<Located<Correction>> = if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            Vec::new()
        } else {
            serde_saphyr::from_str::<Option<Vec<Located<Correction>>>>(text)
                .map_err(|e| {
                    format!(
                        "{} (expected a list of corrections, each with `where`, `was`, `set` and `why`)",
                        super::vocab::yaml_error(&e, shown)
                    )
                })?
                .unwrap_or_default()
        };
        let at = |loc: engine::diag::Loc| format!("{shown}:{}:{}", loc.line, loc.col);
        let names: Vec<&str> = p.columns.0.iter().map(|(k, _)| k.value.as_str()).collect();
        let mut problems = Vec::new();
        for (n, c) in list.iter().enumerate() {
            let n = n + 1;
            for (key, map) in [("where", &c.at), ("was", &c.was), ("set", &c.set)] {
                if map.is_empty() {
                    problems.push(format!(
                        "{}: correction {n}: `{key}` names no column",
                        at(map.loc)
                    ));
                }
                for col in map.keys() {
                    if !names.contains(&col.as_str()) {
                        problems.push(format!(
                            "{}: correction {n}: no column {col:?} in `{key}` (columns: {})",
                            at(map.loc),
                            names.join(", ")
                        ));
                    }
                }
            }
            let set: Vec<&String> = c.set.keys().collect();
            let was: Vec<&String> = c.was.keys().collect();
            if set != was {
                problems.push(format!(
                    "{}: correction {n}: `was` and `set` must name the same columns (`was`: {}; `set`: {})",
                    at(c.was.loc),
                    was.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
            if c.set.iter().all(|(k, v)| c.was.get(k) == Some(v)) {
                problems.push(format!(
                    "{}: correction {n}: `set` changes nothing (the same values as `was`)",
                    at(c.set.loc)
                ));
            }
            if c.why.trim().is_empty() {
                problems.push(format!(
                    "{}: correction {n}: `why` is empty (say why the data is changed)",
                    at(c.why.loc)
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        Ok(Corrections {
            shown: shown.to_string(),
            list,
        })
    }

    /// Prepares the corrections for rows whose cells are read through `index` (a stage column
    /// name -> the raw record's cell index).
    pub fn applier(&self, index: &dyn Fn(&str) -> usize) -> Applier<'_> {
        let cells = |m: &BTreeMap<String, String>| -> Vec<(usize, String)> {
            m.iter().map(|(k, v)| (index(k), v.clone())).collect()
        };
        let resolved: Vec<Resolved> = self
            .list
            .iter()
            .map(|c| Resolved {
                at: cells(&c.at),
                was: cells(&c.was),
                set: cells(&c.set),
                rows: Vec::new(),
            })
            .collect();
        // Rows are looked up by the first `where` cell, so a row costs one map lookup per
        // distinct first column, not one comparison per correction.
        let mut index: BTreeMap<usize, HashMap<String, Vec<usize>>> = BTreeMap::new();
        for (i, r) in resolved.iter().enumerate() {
            if let Some((col, v)) = r.at.first() {
                index
                    .entry(*col)
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .push(i);
            }
        }
        Applier {
            file: self,
            resolved,
            index: index.into_iter().collect(),
        }
    }
}

struct Resolved {
    at: Vec<(usize, String)>,
    was: Vec<(usize, String)>,
    set: Vec<(usize, String)>,
    /// Source rows it matched, and for each whether `was` held.
    rows: Vec<(u64, Option<(usize, String)>)>,
}

/// Applies a file's corrections row by row, then says which did not match exactly one row.
pub struct Applier<'a> {
    file: &'a Corrections,
    resolved: Vec<Resolved>,
    /// Per column that is the first of some `where`: its raw value -> those corrections.
    index: Vec<(usize, HashMap<String, Vec<usize>>)>,
}

impl Applier<'_> {
    /// Edits the raw cells of source row `row` in place, when a correction names it.
    pub fn apply(&mut self, row: u64, record: &mut csv::StringRecord) {
        let named = self
            .index
            .iter()
            .any(|(col, values)| record.get(*col).is_some_and(|v| values.contains_key(v)));
        if !named {
            return;
        }
        let mut cells: Vec<String> = record.iter().map(str::to_string).collect();
        for (col, values) in &self.index {
            let Some(ids) = cells
                .get(*col)
                .and_then(|v| values.get(v.as_str()))
                .cloned()
            else {
                continue;
            };
            for id in ids {
                let Some(r) = self.resolved.get_mut(id) else {
                    continue;
                };
                if !r
                    .at
                    .iter()
                    .all(|(c, v)| cells.get(*c).is_some_and(|x| x == v))
                {
                    continue;
                }
                let differs = r
                    .was
                    .iter()
                    .find(|(c, v)| cells.get(*c).is_none_or(|x| x != v))
                    .map(|(c, _)| (*c, cells.get(*c).cloned().unwrap_or_default()));
                if differs.is_none() {
                    for (c, v) in &r.set {
                        if let Some(cell) = cells.get_mut(*c) {
                            cell.clone_from(v);
                        }
                    }
                }
                r.rows.push((row, differs));
            }
        }
        *record = csv::StringRecord::from(cells);
    }

    /// The corrections that did not apply to exactly one row, each located in the file; `name`
    /// gives a column's stage name from its cell index.
    pub fn finish(self, name: &dyn Fn(usize) -> String) -> Result<(), String> {
        let at = |loc: engine::diag::Loc| format!("{}:{}:{}", self.file.shown, loc.line, loc.col);
        let mut problems = Vec::new();
        for (n, (r, c)) in self.resolved.iter().zip(&self.file.list).enumerate() {
            let n = n + 1;
            let which =
                c.at.iter()
                    .map(|(k, v)| format!("{k} = {v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
            match r.rows.as_slice() {
                [] => problems.push(format!(
                    "{}: correction {n} matches no row ({which}): the data changed since it was written, or the value is mistyped",
                    at(c.loc)
                )),
                [(row, Some((col, found)))] => {
                    let col = name(*col);
                    let want = c.was.get(&col).cloned().unwrap_or_default();
                    problems.push(format!(
                        "{}: correction {n} ({which}): row {row} has {col} = {found:?}, not {want:?} as `was` says: the data changed since the correction was written; check the row and update `was` (or drop the correction)",
                        at(c.was.loc)
                    ));
                }
                [_] => {}
                rows => problems.push(format!(
                    "{}: correction {n} matches {} rows ({which}; rows {}): add a column to `where` so that it names one row",
                    at(c.loc),
                    rows.len(),
                    rows.iter()
                        .map(|(r, _)| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}
