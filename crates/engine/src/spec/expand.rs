//! `${...}` substitution, stage matrices and the params file.
//!
//! A stage with a `matrix:` (a mapping of axis names to lists) stands for one stage per
//! combination of the axes' values (their cross product, the first axis varying slowest).
//! Each copy is the stage as written with every `${matrix.<axis>}` replaced by that copy's
//! value; its name is `<name>@<axis>=<label>,...` (the label of a scalar value is the value,
//! of a mapping its `name` entry), or the stage key itself after substitution when the key
//! holds a reference (`fig_${matrix.engine}`). `${params.<key>...}` reads the params file
//! declared at the top of the pipeline (`params: params.yaml`).
//!
//! Substitution works on the parsed YAML tree, never on text, so a value cannot inject YAML:
//! a string that is exactly one reference takes the referenced value with its type (a number,
//! a list, a mapping), and a reference inside a longer string is replaced by the value's text
//! (a scalar only). Inserted values are not substituted again (no recursion). `$${` writes a
//! literal `${` (e.g. a shell variable in a `command`). Every problem is reported at the node
//! that holds the reference.

use std::collections::BTreeMap;

use super::node::{Node, Value};
use crate::diag::Loc;

/// Most stages a pipeline may expand to (all matrices together): a pipeline of this size
/// already takes a second to validate; a larger product is far more likely a mistake.
pub const MAX_EXPANDED: usize = 10_000;

/// The params file, parsed.
pub(crate) struct ParamsDoc {
    /// Its project-relative path, as messages name it.
    pub file: String,
    pub root: Node,
    /// The file could not be read or parsed (that is reported once): references to it are
    /// not reported again.
    pub broken: bool,
}

/// What references may name while one stage (or one copy of a matrix stage) is substituted.
#[derive(Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub params: Option<&'a ParamsDoc>,
    /// `(axis, value)` of the copy being built; `None` outside a matrix stage.
    pub matrix: Option<&'a [(String, &'a Node)]>,
    /// Substituting the `matrix:` itself (which may use params, not itself).
    pub in_matrix: bool,
}

/// One piece of a string with references.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Ref(Vec<String>),
}

/// Splits `s` into text and references. `$${` is a literal `${`.
fn pieces(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            // `$${`: a literal `${`.
            text.push_str(&rest[..i - 1]);
            text.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        text.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unterminated `${{` in {s:?}: close the reference with `}}`, or write `$${{` for a literal `${{`"
            ));
        };
        let inner = after[..end].trim();
        let path: Vec<String> = inner.split('.').map(str::to_string).collect();
        let ok_seg = |p: &String| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if inner.is_empty() || !path.iter().all(ok_seg) {
            return Err(format!(
                "malformed reference `${{{}}}` in {s:?}: expected `${{matrix.<axis>}}` or `${{params.<key>}}` (keys joined by `.`, each of letters, digits, `_` or `-`); write `$${{` for a literal `${{`",
                &after[..end]
            ));
        }
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(Piece::Ref(path));
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

fn show_ref(path: &[String]) -> String {
    format!("${{{}}}", path.join("."))
}

/// Where a substituted value comes from.
enum Origin {
    Matrix,
    Params(Loc),
}

/// The node a reference names, and where it comes from.
fn resolve<'a>(path: &[String], vars: Vars<'a>) -> Result<(&'a Node, Origin), String> {
    let r = show_ref(path);
    let (node, rest, origin) = match path[0].as_str() {
        "params" => {
            let Some(p) = vars.params else {
                return Err(format!(
                    "`{r}` names a parameter, but the pipeline declares no params file (add `params: params.yaml` at the top)"
                ));
            };
            if p.broken {
                return Err(String::new());
            }
            if path.len() < 2 {
                return Err(format!(
                    "`{r}` names the whole params file: name a key (`${{params.<key>}}`)"
                ));
            }
            (&p.root, &path[1..], None)
        }
        "matrix" => {
            let Some(m) = vars.matrix else {
                if vars.in_matrix {
                    return Err(format!(
                        "`{r}` in a `matrix:` value: a matrix cannot refer to itself (values may use `${{params.<key>}}`)"
                    ));
                }
                return Err(format!(
                    "`{r}` is used in a stage without `matrix:` (add `matrix: {{<axis>: [values]}}` to the stage)"
                ));
            };
            let Some(axis) = path.get(1) else {
                return Err(format!(
                    "`{r}` names no axis (this stage's axes: {})",
                    m.iter()
                        .map(|(a, _)| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            let Some((_, v)) = m.iter().find(|(a, _)| a == axis) else {
                return Err(format!(
                    "unknown matrix axis `{axis}` in `{r}` (this stage's axes: {})",
                    m.iter()
                        .map(|(a, _)| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            (*v, &path[2..], Some(()))
        }
        other => {
            return Err(format!(
                "unknown variable `{other}` in `{r}` (expected `${{matrix.<axis>}}` or `${{params.<key>}}`; write `$${{` for a literal `${{`, e.g. a shell variable)"
            ));
        }
    };
    let mut node = node;
    let mut walked = path[..path.len() - rest.len()].join(".");
    for seg in rest {
        let next = match &node.value {
            Value::Map(m) => m
                .iter()
                .find(|(k, _)| key_text(k).as_deref() == Some(seg.as_str()))
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    let keys: Vec<String> = m.iter().filter_map(|(k, _)| key_text(k)).collect();
                    let whose = if origin.is_none() {
                        format!(" in {}", vars.params.map_or("", |p| p.file.as_str()))
                    } else {
                        String::new()
                    };
                    format!(
                        "unknown key `{seg}` in `{r}`: `{walked}`{whose} has {}",
                        if keys.is_empty() {
                            "no keys".to_string()
                        } else {
                            format!("the keys {}", keys.join(", "))
                        }
                    )
                })?,
            Value::Seq(s) => seg.parse::<usize>().ok().and_then(|i| s.get(i)).ok_or_else(|| {
                format!(
                    "`{r}`: `{walked}` is a list of {} items; `{seg}` is not an index into it (0 to {})",
                    s.len(),
                    s.len().saturating_sub(1)
                )
            })?,
            _ => {
                return Err(format!(
                    "`{r}`: `{walked}` is {} ({}), which has no key `{seg}`",
                    node.type_name(),
                    node.show()
                ));
            }
        };
        walked.push('.');
        walked.push_str(seg);
        node = next;
    }
    let origin = match origin {
        Some(()) => Origin::Matrix,
        None => Origin::Params(node.loc),
    };
    Ok((node, origin))
}

fn key_text(k: &Node) -> Option<String> {
    match &k.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The text of a scalar inserted into a longer string; `None` for null, lists and mappings.
fn scalar_text(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Sets every location in `n` to `loc` (a value from the params file, shown at its reference).
fn relocate(n: &mut Node, loc: Loc) {
    n.loc = loc;
    match &mut n.value {
        Value::Seq(s) => s.iter_mut().for_each(|x| relocate(x, loc)),
        Value::Map(m) => m.iter_mut().for_each(|(k, v)| {
            relocate(k, loc);
            relocate(v, loc)
        }),
        _ => {}
    }
}

/// Substitutes references in a tree, collecting problems and notes (where a value came from).
pub(crate) struct Subst<'a> {
    pub vars: Vars<'a>,
    pub errors: Vec<(Loc, String)>,
    /// Location of a node whose value came from the params file -> what to add to a message
    /// about it.
    pub notes: BTreeMap<Loc, String>,
}

impl<'a> Subst<'a> {
    pub fn new(vars: Vars<'a>) -> Self {
        Subst {
            vars,
            errors: Vec::new(),
            notes: BTreeMap::new(),
        }
    }

    /// `node` with every reference substituted (a node with a problem is kept as written).
    pub fn node(&mut self, node: &Node) -> Node {
        match &node.value {
            Value::Str(s) if s.contains("${") => self.string(node, s),
            Value::Seq(items) => Node {
                loc: node.loc,
                value: Value::Seq(items.iter().map(|n| self.node(n)).collect()),
            },
            Value::Map(m) => Node {
                loc: node.loc,
                value: Value::Map(
                    m.iter()
                        .map(|(k, v)| (self.node(k), self.node(v)))
                        .collect(),
                ),
            },
            _ => node.clone(),
        }
    }

    fn string(&mut self, node: &Node, s: &str) -> Node {
        let parts = match pieces(s) {
            Ok(p) => p,
            Err(m) => {
                self.errors.push((node.loc, m));
                return node.clone();
            }
        };
        // Exactly one reference: the value itself, with its type.
        if let [Piece::Ref(path)] = parts.as_slice() {
            return match resolve(path, self.vars) {
                Ok((v, Origin::Matrix)) => v.clone(),
                Ok((v, Origin::Params(at))) => {
                    let mut v = v.clone();
                    relocate(&mut v, node.loc);
                    self.note(node.loc, path, &v, at);
                    v
                }
                Err(m) => {
                    self.errors.push((node.loc, m));
                    node.clone()
                }
            };
        }
        let mut out = String::new();
        for p in &parts {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Ref(path) => match resolve(path, self.vars) {
                    Ok((v, origin)) => match scalar_text(v) {
                        Some(t) => {
                            if let Origin::Params(at) = origin {
                                self.note(node.loc, path, v, at);
                            }
                            out.push_str(&t)
                        }
                        None => {
                            self.errors.push((
                                node.loc,
                                format!(
                                    "`{}` is {}, which cannot be part of a longer string; only a value that is exactly `{}` can take it whole",
                                    show_ref(path),
                                    v.type_name(),
                                    show_ref(path)
                                ),
                            ));
                            return node.clone();
                        }
                    },
                    Err(m) => {
                        self.errors.push((node.loc, m));
                        return node.clone();
                    }
                },
            }
        }
        Node {
            loc: node.loc,
            value: Value::Str(out),
        }
    }

    fn note(&mut self, loc: Loc, path: &[String], v: &Node, at: Loc) {
        let file = self.vars.params.map_or("", |p| p.file.as_str());
        self.notes.insert(
            loc,
            format!(
                "`{}` is {} ({file}:{}:{})",
                show_ref(path),
                v.show(),
                at.line,
                at.col
            ),
        );
    }
}

/// One axis of a matrix: its name and its values, each with its label.
pub(crate) struct Axis<'a> {
    pub name: String,
    pub values: Vec<(String, &'a Node)>,
}

/// Reads a stage's `matrix:` (already substituted with params) into axes, or the problems.
pub(crate) fn axes<'a>(stage: &str, m: &'a Node) -> Result<Vec<Axis<'a>>, Vec<(Loc, String)>> {
    let mut errs = Vec::new();
    let Some(entries) = m.as_map() else {
        return Err(vec![(
            m.loc,
            format!(
                "`matrix` of stage {stage:?} must be a mapping of axis names to lists of values, found {}",
                m.type_name()
            ),
        )]);
    };
    if entries.is_empty() {
        return Err(vec![(
            m.loc,
            format!("`matrix` of stage {stage:?} is empty: give at least one axis with values"),
        )]);
    }
    let mut axes = Vec::new();
    for (k, v) in entries {
        let name = match k.as_str() {
            Some(n) if is_identifier(n) => n.to_string(),
            _ => {
                errs.push((
                    k.loc,
                    format!(
                        "matrix axis {} of stage {stage:?} must be a name of letters, digits and `_` (not starting with a digit)",
                        k.show()
                    ),
                ));
                continue;
            }
        };
        let Value::Seq(items) = &v.value else {
            errs.push((
                v.loc,
                format!(
                    "matrix axis `{name}` of stage {stage:?} must be a list of values, found {}",
                    v.type_name()
                ),
            ));
            continue;
        };
        if items.is_empty() {
            errs.push((
                v.loc,
                format!(
                    "matrix axis `{name}` of stage {stage:?} is empty: it would expand to no stage"
                ),
            ));
            continue;
        }
        let mut values: Vec<(String, &Node)> = Vec::new();
        for it in items {
            let label = match &it.value {
                Value::Map(m) => match m.iter().find(|(k, _)| k.as_str() == Some("name")) {
                    Some((_, n)) => scalar_text(n),
                    None => {
                        errs.push((
                            it.loc,
                            format!(
                                "a mapping in matrix axis `{name}` needs a `name` key (it names the expanded stage, `{stage}@{name}=<name>`)"
                            ),
                        ));
                        continue;
                    }
                },
                _ => scalar_text(it),
            };
            let Some(label) = label else {
                errs.push((
                    it.loc,
                    format!(
                        "matrix axis `{name}` of stage {stage:?}: {} cannot name a stage (use a string, a number or a mapping with a `name`)",
                        it.show()
                    ),
                ));
                continue;
            };
            if !super::valid_name(&label) {
                errs.push((
                    it.loc,
                    format!(
                        "matrix value {label:?} (axis `{name}` of stage {stage:?}) cannot be part of a stage name: use letters, digits, `_`, `-` or `.` (for other text, give mappings with a plain `name`)"
                    ),
                ));
                continue;
            }
            if values.iter().any(|(l, _)| *l == label) {
                errs.push((
                    it.loc,
                    format!(
                        "matrix value {label:?} appears twice in axis `{name}` of stage {stage:?} (it would make two stages named `{stage}@{name}={label}`)"
                    ),
                ));
                continue;
            }
            values.push((label, it));
        }
        axes.push(Axis { name, values });
    }
    if errs.is_empty() { Ok(axes) } else { Err(errs) }
}

/// The number of combinations of `axes`, if it is at most `cap`.
pub(crate) fn product(axes: &[Axis<'_>], cap: usize) -> Result<usize, String> {
    let mut n: usize = 1;
    for a in axes {
        n = n.saturating_mul(a.values.len());
    }
    if n > cap {
        let sizes: Vec<String> = axes
            .iter()
            .map(|a| format!("{} {}", a.values.len(), a.name))
            .collect();
        return Err(format!(
            "the matrix expands to {} stages ({}), more than the {cap} the pipeline may still hold (at most {MAX_EXPANDED} stages in all): split it or shorten its lists",
            if n == usize::MAX {
                "too many".to_string()
            } else {
                n.to_string()
            },
            sizes.join(" x ")
        ));
    }
    Ok(n)
}

/// The `i`-th combination (first axis slowest): `(axis, label, value)` per axis.
pub(crate) fn combination<'a>(axes: &[Axis<'a>], mut i: usize) -> Vec<(String, String, &'a Node)> {
    let mut out = Vec::with_capacity(axes.len());
    for a in axes.iter().rev() {
        let n = a.values.len();
        let (label, v) = &a.values[i % n];
        out.push((a.name.clone(), label.clone(), *v));
        i /= n;
    }
    out.reverse();
    out
}

/// A plain identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_text_and_references() {
        assert_eq!(
            pieces("a/${matrix.x}.csv").unwrap(),
            [
                Piece::Text("a/".into()),
                Piece::Ref(vec!["matrix".into(), "x".into()]),
                Piece::Text(".csv".into())
            ]
        );
        assert_eq!(
            pieces("echo $${HOME} $$ ${ params.a }").unwrap(),
            [
                Piece::Text("echo ${HOME} $$ ".into()),
                Piece::Ref(vec!["params".into(), "a".into()])
            ]
        );
        assert!(pieces("x ${matrix.a").unwrap_err().contains("unterminated"));
        assert!(pieces("${}").unwrap_err().contains("malformed"));
        assert!(pieces("${a..b}").unwrap_err().contains("malformed"));
        assert!(pieces("${a${b}}").unwrap_err().contains("malformed"));
    }
}
