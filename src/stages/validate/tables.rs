//! The output tables of `validate`: the wide table, the long tables and the dimension tables,
//! written as CSV (header, LF line endings, nulls as empty cells) in a fixed row order.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use engine::kind::StageError;

use super::Params;
use super::rows::{Checked, Pattern};
use super::vocab::Vocab;

/// Checks what `with:` names in the vocabulary files: each vocabulary, level and attribute
/// exists, and no table has a column name twice.
pub fn check_references(p: &Params, vocabs: &BTreeMap<String, Vocab>) -> Result<(), StageError> {
    let mut problems = Vec::new();
    let names: Vec<&str> = vocabs.keys().map(String::as_str).collect();
    let find = |v: &str, problems: &mut Vec<String>| {
        let found = vocabs.get(v);
        if found.is_none() {
            problems.push(format!(
                "no vocabulary {v:?} in the files of `vocabularies` (they define: {})",
                names.join(", ")
            ));
        }
        found
    };
    for (_, c) in &p.columns.0 {
        if let Some(v) = &c.vocabulary {
            find(v, &mut problems);
        }
    }
    for r in &p.rules {
        let Some(m) = &r.require.matches else {
            continue;
        };
        let Ok(pat) = Pattern::parse(m) else { continue };
        for (col, attrs) in &pat.refs {
            let Some(v) = p.column(col).and_then(|c| c.vocabulary.as_ref()) else {
                continue;
            };
            let Some(voc) = vocabs.get(&v.value) else {
                continue;
            };
            for a in attrs {
                if !voc.attributes.contains(a) {
                    problems.push(format!(
                        "rule pattern {:?}: vocabulary {:?} has no attribute {a:?} (attributes: {})",
                        m.value,
                        voc.name,
                        voc.attributes.join(", ")
                    ));
                }
            }
        }
    }
    for d in &p.tables.dimensions {
        if let (Some(voc), Some(l)) = (find(&d.vocabulary, &mut problems), &d.level)
            && !voc.levels.contains(&l.value)
        {
            problems.push(format!(
                "{}: vocabulary {:?} has no level {:?} (levels: {})",
                d.path,
                voc.name,
                l.value,
                voc.levels.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        for (path, header) in headers(p, vocabs) {
            let mut seen = HashSet::new();
            for h in &header {
                if !seen.insert(h) {
                    problems.push(format!("{path}: column {h:?} would be written twice"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The columns a value of `col` expands to: itself, and with a vocabulary its rank and levels.
fn expand(col: &str, voc: Option<&Vocab>) -> Vec<String> {
    let mut h = vec![col.to_string()];
    if let Some(v) = voc {
        h.push(format!("{col}_rank"));
        for l in &v.levels {
            h.push(l.clone());
            h.push(format!("{l}_rank"));
        }
    }
    h
}

/// The cells of one value (see [`expand`]).
fn expand_value(v: &str, voc: Option<&Vocab>, out: &mut Vec<String>) {
    out.push(v.to_string());
    if let Some(voc) = voc {
        let i = voc.leaf[v];
        out.push(voc.nodes[i].rank.to_string());
        for a in voc.ancestors(i) {
            out.push(a.label.clone());
            out.push(a.rank.to_string());
        }
    }
}

fn vocab_of<'a>(p: &Params, vocabs: &'a BTreeMap<String, Vocab>, col: &str) -> Option<&'a Vocab> {
    p.column(col)
        .and_then(|c| c.vocabulary.as_ref())
        .and_then(|v| vocabs.get(&v.value))
}

/// Every table's path and header.
fn headers(p: &Params, vocabs: &BTreeMap<String, Vocab>) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let id = p.id_name().to_string();
    if let Some(w) = &p.tables.wide {
        let mut h = vec![id.clone(), "source_row".to_string()];
        for (name, c) in &p.columns.0 {
            if c.separator.is_some() {
                h.push(format!("{}_count", name.value));
            } else {
                h.extend(expand(name, vocab_of(p, vocabs, name)));
            }
        }
        out.push((w.path.to_string(), h));
    }
    for l in &p.tables.long {
        let mut h = vec![id.clone(), "position".to_string()];
        for c in l.columns.iter() {
            h.extend(expand(c, vocab_of(p, vocabs, c)));
        }
        out.push((l.path.to_string(), h));
    }
    for d in &p.tables.dimensions {
        let Some(voc) = vocabs.get(&d.vocabulary.value) else {
            continue;
        };
        let depth = level_depth(voc, d.level.as_ref().map(|l| l.value.as_str()));
        let name = voc.level_name(depth);
        let mut h = vec![name.to_string(), format!("{name}_rank")];
        for l in &voc.levels[..depth.min(voc.levels.len())] {
            h.push(l.clone());
            h.push(format!("{l}_rank"));
        }
        if depth < voc.levels.len() {
            h.push("leaf_count".into());
        }
        h.extend(voc.attributes.iter().cloned());
        out.push((d.path.to_string(), h));
    }
    out
}

/// The depth of a level (the values' depth when `None`).
fn level_depth(voc: &Vocab, level: Option<&str>) -> usize {
    level
        .and_then(|l| voc.levels.iter().position(|x| x == l))
        .unwrap_or(voc.levels.len())
}

/// Where a declared output is to be written (the stage's `ctx.output`).
pub type Output<'a> = dyn Fn(&str) -> std::io::Result<PathBuf> + 'a;

fn create(
    path: &str,
    header: &[String],
    output: &Output<'_>,
) -> Result<csv::Writer<std::fs::File>, StageError> {
    let abs = output(path).map_err(|e| format!("cannot create {path}: {e}"))?;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_path(&abs)
        .map_err(|e| format!("cannot create {path}: {e}"))?;
    w.write_record(header)?;
    Ok(w)
}

/// Writes the row-level tables (the wide table and the long tables) one checked row at a
/// time, so that no table is held in memory.
pub struct RowTables<'a> {
    cols: Vec<(bool, Option<&'a Vocab>)>,
    wide: Option<csv::Writer<std::fs::File>>,
    /// Each long table: its writer and the indexes of its columns.
    long: Vec<(csv::Writer<std::fs::File>, Vec<usize>)>,
    /// Rows written so far (the id of the next one is this + 1).
    n: u64,
    cells: Vec<String>,
}

impl<'a> RowTables<'a> {
    /// Creates every row-level table and writes its header.
    pub fn new(
        p: &Params,
        vocabs: &'a BTreeMap<String, Vocab>,
        output: &Output<'_>,
    ) -> Result<Self, StageError> {
        let heads: BTreeMap<String, Vec<String>> = headers(p, vocabs).into_iter().collect();
        let wide = match &p.tables.wide {
            Some(w) => Some(create(w.path.as_str(), &heads[w.path.as_str()], output)?),
            None => None,
        };
        let mut long = Vec::new();
        for l in &p.tables.long {
            let idx: Vec<usize> = l
                .columns
                .iter()
                .map(|c| {
                    p.columns
                        .0
                        .iter()
                        .position(|x| x.0.value == *c)
                        .expect("checked column")
                })
                .collect();
            long.push((
                create(l.path.as_str(), &heads[l.path.as_str()], output)?,
                idx,
            ));
        }
        Ok(RowTables {
            cols: p
                .columns
                .0
                .iter()
                .map(|(n, c)| (c.separator.is_some(), vocab_of(p, vocabs, n)))
                .collect(),
            wide,
            long,
            n: 0,
            cells: Vec::new(),
        })
    }

    /// Writes one checked row (`values`: each column's values) and its long-table rows.
    pub fn row(&mut self, src: u64, values: &[Vec<String>]) -> Result<(), StageError> {
        self.n += 1;
        let id = self.n.to_string();
        if let Some(w) = self.wide.as_mut() {
            let r = &mut self.cells;
            r.clear();
            r.push(id.clone());
            r.push(src.to_string());
            for ((multi, voc), vs) in self.cols.iter().zip(values) {
                match (multi, vs.first()) {
                    (true, _) => r.push(vs.len().to_string()),
                    (false, Some(v)) => expand_value(v, *voc, r),
                    (false, None) => {
                        r.extend(std::iter::repeat_n(String::new(), expand("", *voc).len()))
                    }
                }
            }
            w.write_record(&*r)?;
        }
        for (w, idx) in &mut self.long {
            // The long table's columns are parallel: position k of each.
            let first = idx.first().map_or(0, |&j| values[j].len());
            for k in 0..first {
                let r = &mut self.cells;
                r.clear();
                r.push(id.clone());
                r.push((k + 1).to_string());
                for &j in idx.iter() {
                    let (vs, voc) = (&values[j], self.cols[j].1);
                    expand_value(&vs[k], voc, r);
                }
                w.write_record(&*r)?;
            }
        }
        Ok(())
    }

    /// Flushes every table.
    pub fn finish(self) -> Result<(), StageError> {
        for mut w in self
            .wide
            .into_iter()
            .chain(self.long.into_iter().map(|l| l.0))
        {
            w.flush()
                .map_err(|e| format!("cannot write a table: {e}"))?;
        }
        Ok(())
    }
}

/// Builds and writes every table from rows checked beforehand (tests and small inputs; the
/// stage streams its rows through [`RowTables`] and then calls [`write_dimensions`]).
pub fn write_all(
    p: &Params,
    vocabs: &BTreeMap<String, Vocab>,
    checked: &Checked,
    output: &Output<'_>,
) -> Result<(), StageError> {
    let mut t = RowTables::new(p, vocabs, output)?;
    for (src, values) in &checked.rows {
        t.row(*src, values)?;
    }
    t.finish()?;
    write_dimensions(p, vocabs, output)
}

/// Writes the dimension tables (one row per vocabulary value or level node).
pub fn write_dimensions(
    p: &Params,
    vocabs: &BTreeMap<String, Vocab>,
    output: &Output<'_>,
) -> Result<(), StageError> {
    let heads: BTreeMap<String, Vec<String>> = headers(p, vocabs).into_iter().collect();
    for d in &p.tables.dimensions {
        let voc = &vocabs[&d.vocabulary.value];
        let depth = level_depth(voc, d.level.as_ref().map(|l| l.value.as_str()));
        let path = d.path.as_str();
        let mut w = create(path, &heads[path], output)?;
        for (i, n) in voc
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.depth == depth)
        {
            let shown = if depth == voc.levels.len() {
                &n.written
            } else {
                &n.label
            };
            let mut r = vec![shown.clone(), n.rank.to_string()];
            for a in voc.ancestors(i) {
                r.push(a.label.clone());
                r.push(a.rank.to_string());
            }
            if depth < voc.levels.len() {
                r.push(n.leaf_count.to_string());
            }
            for a in &voc.attributes {
                r.push(n.attrs.get(a).map_or(String::new(), |v| v.join("; ")));
            }
            w.write_record(&r)?;
        }
        w.flush().map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    Ok(())
}
