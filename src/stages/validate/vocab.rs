//! Vocabulary files: named, ordered sets of accepted values, read from YAML (see
//! `docs/kinds.md`, "validate"). This module owns the file format, its checks (every problem
//! named `file:line`) and the flattened form the row checks and dimension tables use.

use std::collections::{BTreeMap, HashMap, HashSet};

/// A map looked up once or more per row: a fixed-seed fast hasher (keys are the study's own
/// labels and ids, so hash flooding is not a concern, and nothing iterates these maps into an
/// output, so the order is irrelevant).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;
use std::path::Path;

use engine::kind::Located;
use serde::Deserialize;

/// The file: `vocabularies:`, a mapping of vocabulary names to definitions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    vocabularies: BTreeMap<Located<String>, VocabDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabDef {
    /// Names of the levels above the values, top first (a hierarchy of `levels.len() + 1`).
    #[serde(default)]
    levels: Vec<String>,
    /// Extra keys a value may carry (written as columns of the dimension tables).
    #[serde(default)]
    attributes: Vec<String>,
    /// When set, cells write a value as its path from the top level joined by this string
    /// (`Parent - Child`).
    #[serde(default)]
    path_separator: Option<String>,
    #[serde(default)]
    aliases: Vec<Located<AliasDef>>,
    /// Where the values come from (documentation only, like every `source`).
    #[serde(default, rename = "source")]
    _source: Option<String>,
    values: Vec<Located<ValueDef>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasDef {
    from: String,
    /// The canonical value; empty means "no value".
    to: String,
    #[serde(default, rename = "source")]
    _source: Option<String>,
}

/// A value: `label`, an optional `source`, children under `values`, and attributes (any other
/// key, each declared in the vocabulary's `attributes`).
#[derive(Debug, Deserialize)]
struct ValueDef {
    label: String,
    #[serde(default, rename = "source")]
    _source: Option<String>,
    #[serde(default)]
    values: Vec<Located<ValueDef>>,
    #[serde(flatten)]
    attrs: BTreeMap<String, serde_json::Value>,
}

/// One value of a vocabulary at any level.
#[derive(Clone, Debug)]
pub struct Node {
    pub label: String,
    /// How cells write it (the label, or the path from the top with the path separator).
    pub written: String,
    pub depth: usize,
    pub parent: Option<usize>,
    /// 1-based rank among the nodes of its depth.
    pub rank: usize,
    /// Leaves under it (1 for a leaf).
    pub leaf_count: usize,
    /// Attribute -> its values as text (one for a scalar, several for a list).
    pub attrs: BTreeMap<String, Vec<String>>,
}

/// A checked vocabulary. Accepted values are the leaves (the deepest level), in rank order.
#[derive(Clone, Debug)]
pub struct Vocab {
    pub name: String,
    pub levels: Vec<String>,
    pub attributes: Vec<String>,
    /// Every node, depth first in file order.
    pub nodes: Vec<Node>,
    /// Written form of a leaf -> node index.
    pub leaf: FastMap<String, usize>,
    /// Alias -> canonical written form (`""` = no value).
    pub aliases: FastMap<String, String>,
}

impl Vocab {
    /// The leaves in rank order.
    pub fn leaves(&self) -> impl Iterator<Item = &Node> {
        let depth = self.levels.len();
        self.nodes.iter().filter(move |n| n.depth == depth)
    }

    /// Ancestors of a node, top first (`levels.len()` of them for a leaf).
    pub fn ancestors(&self, mut i: usize) -> Vec<&Node> {
        let mut v = Vec::new();
        while let Some(p) = self.nodes[i].parent {
            v.push(&self.nodes[p]);
            i = p;
        }
        v.reverse();
        v
    }

    /// The level name of a depth (the vocabulary's own name for the leaves).
    pub fn level_name(&self, depth: usize) -> &str {
        self.levels.get(depth).map_or(&self.name, String::as_str)
    }
}

/// Reads every vocabulary of one file; `shown` is the path used in messages.
pub fn load(path: &Path, shown: &str) -> Result<Vec<Vocab>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read the file: {e}"))?;
    parse(&text, shown)
}

/// A YAML reader's error as `shown:line:column: <its first line>` (the rest of serde-saphyr's
/// message is a source excerpt the location already gives).
pub fn yaml_error(e: &serde_saphyr::Error, shown: &str) -> String {
    let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    let msg = e.to_string();
    let first = msg.lines().next().unwrap_or("unreadable").trim();
    format!("{shown}:{line}:{col}: {first}")
}

/// Parses vocabulary YAML text; every problem is reported as `shown:line:column: ...`.
pub fn parse(text: &str, shown: &str) -> Result<Vec<Vocab>, String> {
    if text.trim().is_empty() {
        return Err(format!(
            "{shown}:1:1: the file is empty (expected `vocabularies:`)"
        ));
    }
    let def: FileDef = serde_saphyr::from_str(text).map_err(|e| yaml_error(&e, shown))?;
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for (name, v) in def.vocabularies {
        let at = |loc: engine::diag::Loc| format!("{shown}:{}:{}", loc.line, loc.col);
        let mut b = Builder {
            vocab: Vocab {
                name: name.value.clone(),
                levels: v.levels.clone(),
                attributes: v.attributes.clone(),
                nodes: Vec::new(),
                leaf: FastMap::default(),
                aliases: FastMap::default(),
            },
            sep: v.path_separator.clone(),
            problems: Vec::new(),
            seen: HashSet::new(),
        };
        if v.values.is_empty() {
            b.problems.push((
                name.loc,
                format!("vocabulary {:?} has no values", name.value),
            ));
        }
        let levels: HashSet<&String> = v.levels.iter().collect();
        if levels.len() != v.levels.len() || levels.contains(&name.value) {
            b.problems.push((
                name.loc,
                format!(
                    "vocabulary {:?}: `levels` repeats a name (or the vocabulary's own)",
                    name.value
                ),
            ));
        }
        if v.path_separator.as_deref() == Some("") {
            b.problems
                .push((name.loc, "`path_separator` is empty".into()));
        }
        b.add(&v.values, None, 0, "");
        for a in &v.aliases {
            if b.vocab.leaf.contains_key(&a.from) {
                b.problems.push((
                    a.loc,
                    format!("alias {:?} is already a value of {:?}", a.from, name.value),
                ));
            } else if !a.to.is_empty() && !b.vocab.leaf.contains_key(&a.to) {
                b.problems.push((
                    a.loc,
                    format!(
                        "alias {:?}: target {:?} is not a value of {:?}",
                        a.from, a.to, name.value
                    ),
                ));
            } else if b
                .vocab
                .aliases
                .insert(a.from.clone(), a.to.clone())
                .is_some()
            {
                b.problems
                    .push((a.loc, format!("alias {:?} is listed twice", a.from)));
            }
        }
        problems.extend(
            b.problems
                .into_iter()
                .map(|(l, m)| (l, format!("{}: {m}", at(l)))),
        );
        out.push(b.vocab);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        problems.sort();
        Err(problems
            .into_iter()
            .map(|(_, m)| m)
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

struct Builder {
    vocab: Vocab,
    sep: Option<String>,
    problems: Vec<(engine::diag::Loc, String)>,
    seen: HashSet<(usize, String)>,
}

impl Builder {
    fn add(
        &mut self,
        values: &[Located<ValueDef>],
        parent: Option<usize>,
        depth: usize,
        path: &str,
    ) {
        let name = self.vocab.name.clone();
        let leaf_depth = self.vocab.levels.len();
        for v in values {
            let loc = v.loc;
            let label = v.label.clone();
            if label.is_empty() || label.trim() != label {
                self.problems.push((
                    loc,
                    format!("{name}: label {label:?} is empty or has surrounding spaces"),
                ));
            }
            let written = match &self.sep {
                Some(s) if depth > 0 => format!("{path}{s}{label}"),
                _ => label.clone(),
            };
            if !self.seen.insert((depth, written.clone())) {
                self.problems
                    .push((loc, format!("{name}: duplicate value {written:?}")));
            }
            let mut attrs = BTreeMap::new();
            for (k, val) in &v.attrs {
                if !self.vocab.attributes.contains(k) {
                    self.problems.push((
                        loc,
                        format!(
                            "{name}: value {label:?} has key {k:?}, which is not `label`, `source`, \
                             `values` or one of the declared `attributes` ({})",
                            self.vocab.attributes.join(", ")
                        ),
                    ));
                    continue;
                }
                match attr_text(val) {
                    Some(t) => {
                        attrs.insert(k.clone(), t);
                    }
                    None => self.problems.push((
                        loc,
                        format!(
                            "{name}: attribute {k:?} of {label:?} must be a string, number, \
                             boolean or a list of them"
                        ),
                    )),
                }
            }
            let rank = self.vocab.nodes.iter().filter(|n| n.depth == depth).count() + 1;
            let i = self.vocab.nodes.len();
            self.vocab.nodes.push(Node {
                label,
                written: written.clone(),
                depth,
                parent,
                rank,
                leaf_count: 0,
                attrs,
            });
            if depth == leaf_depth {
                if !v.values.is_empty() {
                    self.problems.push((
                        loc,
                        format!(
                            "{name}: {written:?} has `values`, but the vocabulary has {} level(s) \
                             above its values (`levels: [{}]`)",
                            leaf_depth,
                            self.vocab.levels.join(", ")
                        ),
                    ));
                }
                self.vocab.leaf.insert(written, i);
                let mut p = Some(i);
                while let Some(j) = p {
                    self.vocab.nodes[j].leaf_count += 1;
                    p = self.vocab.nodes[j].parent;
                }
            } else if v.values.is_empty() {
                self.problems.push((
                    loc,
                    format!(
                        "{name}: {written:?} is at level {:?} and needs `values` (every value \
                         sits {} level(s) down)",
                        self.vocab.levels[depth], leaf_depth
                    ),
                ));
            } else {
                self.add(&v.values, Some(i), depth + 1, &written);
            }
        }
    }
}

/// An attribute's values as text: a scalar gives one, a list of scalars several.
fn attr_text(v: &serde_json::Value) -> Option<Vec<String>> {
    use serde_json::Value as J;
    let one = |v: &J| match v {
        J::String(s) => Some(s.clone()),
        J::Number(n) => Some(n.to_string()),
        J::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match v {
        J::Null => Some(Vec::new()),
        J::Array(a) => a.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}
