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

/// Builds and writes every table; `output` gives the path to write a declared output at.
pub fn write_all(
    p: &Params,
    vocabs: &BTreeMap<String, Vocab>,
    checked: &Checked,
    output: &dyn Fn(&str) -> std::io::Result<PathBuf>,
) -> Result<(), StageError> {
    let heads: BTreeMap<String, Vec<String>> = headers(p, vocabs).into_iter().collect();
    let write =
        |path: &str, rows: &mut dyn Iterator<Item = Vec<String>>| -> Result<(), StageError> {
            let abs = output(path).map_err(|e| format!("cannot create {path}: {e}"))?;
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_path(&abs)
                .map_err(|e| format!("cannot create {path}: {e}"))?;
            w.write_record(&heads[path])?;
            for r in rows {
                w.write_record(&r)?;
            }
            w.flush().map_err(|e| format!("cannot write {path}: {e}"))?;
            Ok(())
        };
    let cols: Vec<(&str, bool, Option<&Vocab>)> = p
        .columns
        .0
        .iter()
        .map(|(n, c)| (n.as_str(), c.separator.is_some(), vocab_of(p, vocabs, n)))
        .collect();
    if let Some(w) = &p.tables.wide {
        let mut rows = checked.rows.iter().enumerate().map(|(i, (src, values))| {
            let mut r = vec![(i + 1).to_string(), src.to_string()];
            for ((_, multi, voc), vs) in cols.iter().zip(values) {
                match (multi, vs.first()) {
                    (true, _) => r.push(vs.len().to_string()),
                    (false, Some(v)) => expand_value(v, *voc, &mut r),
                    (false, None) => {
                        r.extend(std::iter::repeat_n(String::new(), expand("", *voc).len()))
                    }
                }
            }
            r
        });
        write(w.path.as_str(), &mut rows)?;
    }
    for l in &p.tables.long {
        let idx: Vec<usize> = l
            .columns
            .iter()
            .map(|c| cols.iter().position(|x| x.0 == c).expect("checked column"))
            .collect();
        let (idx, cols) = (&idx, &cols);
        let mut rows = checked
            .rows
            .iter()
            .enumerate()
            .flat_map(|(i, (_, values))| {
                let n = values[idx[0]].len();
                (0..n)
                    .map(move |k| {
                        let mut r = vec![(i + 1).to_string(), (k + 1).to_string()];
                        for &j in idx {
                            expand_value(&values[j][k], cols[j].2, &mut r);
                        }
                        r
                    })
                    .collect::<Vec<_>>()
            });
        write(l.path.as_str(), &mut rows)?;
    }
    for d in &p.tables.dimensions {
        let voc = &vocabs[&d.vocabulary.value];
        let depth = level_depth(voc, d.level.as_ref().map(|l| l.value.as_str()));
        let mut rows = voc
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.depth == depth)
            .map(|(i, n)| {
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
                r
            });
        write(d.path.as_str(), &mut rows)?;
    }
    Ok(())
}
