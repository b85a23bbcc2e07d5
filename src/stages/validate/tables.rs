//! The output tables of `validate`: the wide table, the long tables and the dimension tables,
//! written as CSV (header, LF line endings, nulls as empty cells) in a fixed row order.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use engine::kind::StageError;

use super::Params;
use super::rows::{Checked, Pattern, Values};
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

/// How a column's values are written in the row-level tables.
struct ColumnOut<'a> {
    /// Multi-valued: the wide table holds its count.
    multi: bool,
    vocab: Option<&'a Vocab>,
    /// With a vocabulary, the cells after a value, by node index: its rank, then each
    /// ancestor's label and rank (see [`expand`]); computed once, not per row.
    after: Vec<Vec<String>>,
    /// Cells a value expands to (written empty for a missing value).
    width: usize,
}

impl ColumnOut<'_> {
    /// Writes the cells of one value (see [`expand`]).
    fn write(&self, w: &mut csv::Writer<std::fs::File>, v: &str) -> csv::Result<()> {
        w.write_field(v)?;
        if let Some(voc) = self.vocab {
            for cell in &self.after[voc.leaf[v]] {
                w.write_field(cell)?;
            }
        }
        Ok(())
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
    cols: Vec<ColumnOut<'a>>,
    wide: Option<csv::Writer<std::fs::File>>,
    /// Each long table: its writer and the indexes of its columns.
    long: Vec<(csv::Writer<std::fs::File>, Vec<usize>)>,
    /// Rows written so far (the id of the next one is this + 1).
    n: u64,
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
                .map(|(n, c)| {
                    let vocab = vocab_of(p, vocabs, n);
                    let after = vocab.map_or_else(Vec::new, |voc| {
                        (0..voc.nodes.len())
                            .map(|i| {
                                let mut cells = vec![voc.nodes[i].rank.to_string()];
                                for a in voc.ancestors(i) {
                                    cells.push(a.label.clone());
                                    cells.push(a.rank.to_string());
                                }
                                cells
                            })
                            .collect()
                    });
                    ColumnOut {
                        multi: c.separator.is_some(),
                        vocab,
                        after,
                        width: expand("", vocab).len(),
                    }
                })
                .collect(),
            wide,
            long,
            n: 0,
        })
    }

    /// Writes one checked row (`values`: each column's values) and its long-table rows.
    /// (Cell by cell, each record ended by `write_record(None)`: the bytes are those of one
    /// `write_record` of the same cells, without building them as strings first.)
    pub fn row(&mut self, src: u64, values: &Values<'_>) -> Result<(), StageError> {
        const END: Option<&[u8]> = None;
        self.n += 1;
        let mut id = itoa::Buffer::new();
        let id = id.format(self.n);
        let mut num = itoa::Buffer::new();
        if let Some(w) = self.wide.as_mut() {
            w.write_field(id)?;
            w.write_field(num.format(src))?;
            for (c, vs) in self.cols.iter().zip(values.columns()) {
                match (c.multi, vs.first()) {
                    (true, _) => w.write_field(num.format(vs.len()))?,
                    (false, Some(v)) => c.write(w, v)?,
                    (false, None) => {
                        for _ in 0..c.width {
                            w.write_field("")?;
                        }
                    }
                }
            }
            w.write_record(END)?;
        }
        for (w, idx) in &mut self.long {
            // The long table's columns are parallel: position k of each.
            let Some(&lead) = idx.first() else { continue };
            for (k, _) in values[lead].iter().enumerate() {
                w.write_field(id)?;
                w.write_field(num.format(k + 1))?;
                for &j in idx.iter() {
                    self.cols[j].write(w, &values[j][k])?;
                }
                w.write_record(END)?;
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
        t.row(*src, &Values::from_rows(values))?;
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
