//! A YAML document as a tree of located nodes, and a serde `Deserializer` over that tree so that
//! stage kinds can parse their `with:` parameters into typed structs while every error keeps the
//! line and column of the offending key or value.

use std::cell::RefCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use crate::diag::Loc;

/// A located YAML node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub loc: Loc,
    pub value: Value,
}

/// The value of a YAML node. Mappings keep their keys' order and locations.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Parses YAML text into a node tree. Errors carry saphyr's location.
    pub fn parse(text: &str) -> Result<Node, (Loc, String)> {
        if text.trim().is_empty() {
            return Err((Loc::new(1, 1), "the file is empty".into()));
        }
        // YAML 1.2 booleans only: a stage called `y` or an output named `no` stays a string.
        let opts = serde_saphyr::options! { strict_booleans: true };
        serde_saphyr::from_str_with_options::<Node>(text, opts).map_err(|e| {
            let loc = e
                .location()
                .map(|l| Loc::new(l.line() as u32, l.column() as u32))
                .unwrap_or(Loc::new(1, 1));
            (loc, yaml_error_message(&e, text))
        })
    }

    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Short rendering of a scalar for error messages.
    pub fn show(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Seq(_) => "[...]".into(),
            Value::Map(_) => "{...}".into(),
        }
    }

    /// A node tree from JSON, every node at `loc` (the inverse of [`Node::to_json`] up to
    /// locations and key order, which the key does not record either).
    pub fn from_json(v: &serde_json::Value, loc: Loc) -> Node {
        let value = match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => {
                Value::Seq(a.iter().map(|x| Node::from_json(x, loc)).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, x)| {
                        (
                            Node {
                                loc,
                                value: Value::Str(k.clone()),
                            },
                            Node::from_json(x, loc),
                        )
                    })
                    .collect(),
            ),
        };
        Node { loc, value }
    }

    /// Canonical JSON (mapping keys sorted, locations dropped): what a cache key records.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => s.clone().into(),
            Value::Seq(v) => v.iter().map(Node::to_json).collect(),
            Value::Map(m) => {
                let mut obj = serde_json::Map::new();
                for (k, v) in m {
                    let key = match &k.value {
                        Value::Str(s) => s.clone(),
                        _ => k.show(),
                    };
                    obj.insert(key, v.to_json());
                }
                serde_json::Value::Object(obj)
            }
        }
    }

    /// An empty mapping at `loc`.
    pub fn empty_map(loc: Loc) -> Node {
        Node {
            loc,
            value: Value::Map(Vec::new()),
        }
    }
}

/// What a YAML error means for the person who wrote the file: what is wrong, where, and how to
/// fix it, in place of the library's wording (which names its own options and functions).
pub(crate) fn yaml_error_message(e: &serde_saphyr::Error, text: &str) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    match e.without_snippet() {
        E::DuplicateMappingKey { key, location, .. } => {
            let first = key
                .as_deref()
                .and_then(|k| first_key_line(text, k, location.line() as usize));
            match (key, first) {
                (Some(k), Some(n)) => format!(
                    "duplicate key `{k}` (first at line {n}): each key may appear once in a mapping; remove or rename one of them"
                ),
                (Some(k), None) => format!(
                    "duplicate key `{k}`: each key may appear once in a mapping; remove or rename one of them"
                ),
                (None, _) => "duplicate key: each key may appear once in a mapping; remove or rename one of them".into(),
            }
        }
        E::MultipleDocuments { .. } => "the file holds several YAML documents (`---`); a pipeline file holds one: remove the extra `---` and merge what follows into the first document".into(),
        E::Budget { breach, .. } => match breach {
            B::Nodes { .. } => "the file is too large or too deeply nested (more than 250,000 nodes); a pipeline file is far smaller: split generated lists or check for a runaway generator".into(),
            B::Depth { .. } => "the file is nested too deeply (more than 64 levels)".into(),
            B::Events { .. } => "the file is too large (more than 1,000,000 YAML items)".into(),
            B::Aliases { .. } | B::Anchors { .. } | B::AliasAnchorRatio { .. } => "the file uses too many anchors or aliases (`&name`, `*name`); expand them by hand or use fewer".into(),
            B::ScalarBytes { .. } => "the file's text values are too large in total (more than 64 MiB)".into(),
            B::InputBytes { .. } => "the file is too large (more than 256 MiB)".into(),
            B::Documents { .. } => "the file holds too many YAML documents (`---`); a pipeline file holds one".into(),
            B::MergeKeys { .. } => "the file uses too many merge keys (`<<`)".into(),
            _ => "the file is too large or too complex for a pipeline file".into(),
        },
        // `a: &a [*a]`: saphyr says "recursive references require weak recursion types".
        _ if e.to_string().contains("recursive references") => "an alias (`*name`) refers to the anchor (`&name`) it stands inside: the value would contain itself; anchor a separate value instead".into(),
        _ => {
            // saphyr's Display may append its own location and a snippet; keep the first line.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("").trim();
            let mut msg = format!(
                "malformed YAML: {}",
                if first.is_empty() { "unreadable" } else { first }
            );
            // `{` and `}` end a plain value inside `[...]` and `{...}`: a reference there must
            // be quoted.
            let line = e
                .location()
                .and_then(|l| text.lines().nth((l.line() as usize).saturating_sub(1)));
            if line.is_some_and(|l| l.contains("${")) {
                msg.push_str(
                    " (inside `[...]` or `{...}`, quote a value holding a `${...}` reference: `[\"out/${matrix.x}.csv\"]`)",
                );
            }
            msg
        }
    }
}

/// The line (1-based) of the first `key:` before line `before` indented like the key on line
/// `before`, if any (for "duplicate key ... (first at line N)").
fn first_key_line(text: &str, key: &str, before: usize) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let dup = lines.get(before.checked_sub(1)?)?;
    let indent = |l: &str| l.len() - l.trim_start().len();
    let want = indent(dup);
    let is_key = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ");
        [key.to_string(), format!("{key:?}"), format!("'{key}'")]
            .iter()
            .any(|k| {
                t.strip_prefix(k.as_str())
                    .is_some_and(|r| r.trim_start().starts_with(':'))
            })
    };
    lines
        .iter()
        .take(before - 1)
        .position(|l| indent(l) == want && is_key(l))
        .map(|i| i + 1)
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let l = super::Located::<Value>::deserialize(d)?;
        Ok(Node {
            loc: l.loc,
            value: l.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            v.push(n);
        }
        Ok(Value::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some((k, val)) = map.next_entry::<Node, Node>()? {
            v.push((k, val));
        }
        Ok(Value::Map(v))
    }
}

// ---------------------------------------------------------------------------------------------
// Deserializing typed parameters out of a node tree, keeping locations.

/// An error raised while deserializing from a [`Node`]: a message and where it applies.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeError {
    pub loc: Option<Loc>,
    pub message: String,
    /// Set for `deny_unknown_fields` errors: the rejected key.
    pub unknown_field: Option<String>,
    /// Set for a missing required key: its name.
    pub missing_field: Option<String>,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for NodeError {}

/// What serde expected, in the user's terms: its primitive visitors say `u32` or `f64`.
fn in_words(exp: &dyn de::Expected) -> String {
    let exp = exp.to_string();
    let range = |max: u64| format!("a whole number from 0 to {max}");
    match exp.as_str() {
        "u8" => range(u8::MAX.into()),
        "u16" => range(u16::MAX.into()),
        "u32" => range(u32::MAX.into()),
        "u64" | "usize" => "a whole number of 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        _ => exp,
    }
}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NodeError {
            loc: None,
            message: msg.to_string(),
            unknown_field: None,
            missing_field: None,
        }
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        NodeError::custom(format!("invalid type: {unexp}, expected {}", in_words(exp)))
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        NodeError::custom(format!(
            "invalid value: {unexp}, expected {}",
            in_words(exp)
        ))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        NodeError {
            loc: None,
            message: format!(
                "unknown key {field:?} (expected one of: {})",
                expected.join(", ")
            ),
            unknown_field: Some(field.to_string()),
            missing_field: None,
        }
    }
    fn missing_field(field: &'static str) -> Self {
        NodeError {
            missing_field: Some(field.to_string()),
            ..NodeError::custom(format!("missing required key {field:?}"))
        }
    }
}

fn at(loc: Loc) -> impl FnOnce(NodeError) -> NodeError {
    move |mut e| {
        if e.loc.is_none() {
            e.loc = Some(loc);
        }
        e
    }
}

/// Deserializes `T` from a node, reporting every problem it can find, each with its location:
/// after an error at some key or value, that entry is dropped and deserialization retried
/// (a "missing key" error for a dropped key is not reported twice). Paths
/// ([`super::InputPath`], [`super::OutputPath`]) are normalised but not checked against any
/// stage; see [`from_node_in`].
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, Vec<NodeError>> {
    from_node_in(node, None)
}

/// Like [`from_node`], checking every [`super::InputPath`] and [`super::OutputPath`] against
/// the stage's declared inputs and outputs when `declared` is given.
pub fn from_node_in<T: de::DeserializeOwned>(
    node: &Node,
    declared: Option<Declared<'_>>,
) -> Result<T, Vec<NodeError>> {
    match from_node_all(node, declared) {
        (Some(v), errors) if errors.is_empty() => Ok(v),
        (_, errors) => Err(errors),
    }
}

/// Like [`from_node_in`], but a path that is well formed and only not declared by the stage
/// does not stop parsing: when that is the only kind of problem, the value comes back with
/// every problem, so that a kind's own checks can still run and all problems are reported at
/// once.
pub fn from_node_all<T: de::DeserializeOwned>(
    node: &Node,
    declared: Option<Declared<'_>>,
) -> (Option<T>, Vec<NodeError>) {
    let mut node = node.clone();
    let mut errors: Vec<NodeError> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    // Missing required keys by the location of their mapping: serde reports the first one
    // only, so a stand-in value is put in its place and the rest found by trying again; they
    // are reported together, one message per mapping.
    let mut missing: Vec<(Loc, Vec<String>)> = Vec::new();
    let finish = |mut errors: Vec<NodeError>, missing: Vec<(Loc, Vec<String>)>| {
        for (loc, keys) in missing {
            let quoted: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
            let message = match quoted.as_slice() {
                [one] => format!("missing required key {one}"),
                [init @ .., last] => {
                    format!("missing required keys {} and {last}", init.join(", "))
                }
                [] => continue,
            };
            errors.push(NodeError {
                loc: Some(loc),
                message,
                unknown_field: None,
                missing_field: None,
            });
        }
        errors
    };
    for _ in 0..256 {
        let checker = declared.map(|d| Checker {
            declared: d,
            undeclared: RefCell::new(Vec::new()),
        });
        let result = T::deserialize(NodeDe {
            node: &node,
            checker: checker.as_ref(),
            key: None,
        });
        // Undeclared paths of this attempt (the most complete one so far).
        let undeclared = checker
            .map(|c| c.undeclared.into_inner())
            .unwrap_or_default();
        match result {
            // A value read with entries dropped (or stand-ins added) is not handed on: checks
            // of it could report problems that are only the dropped entries' absence.
            Ok(v) => {
                let clean = errors.is_empty() && missing.is_empty();
                errors.extend(undeclared);
                return (clean.then_some(v), finish(errors, missing));
            }
            Err(e) => {
                if e.loc == Some(STAND_IN) {
                    // A stand-in that the type refuses: stop with what is known.
                    errors.extend(undeclared);
                    return (None, finish(errors, missing));
                }
                if let (Some(field), Some(l)) = (&e.missing_field, e.loc)
                    && add_stand_in(&mut node, l, field)
                {
                    if !dropped.contains(field) {
                        match missing.iter_mut().find(|(m, _)| *m == l) {
                            Some((_, keys)) => keys.push(field.clone()),
                            None => missing.push((l, vec![field.clone()])),
                        }
                    }
                    continue;
                }
                let redundant = dropped
                    .iter()
                    .any(|k| e.message == format!("missing required key {k:?}"));
                let removed = match e.loc {
                    Some(l) if e.unknown_field.is_some() => {
                        remove_key_at(&mut node, l).map(|_| None)
                    }
                    Some(l) => remove_entry_at(&mut node, l),
                    None => None,
                };
                if !redundant {
                    errors.push(e);
                }
                match removed {
                    Some(Some(key)) => dropped.push(key),
                    Some(None) => {}
                    None => {
                        errors.extend(undeclared);
                        return (None, finish(errors, missing));
                    }
                }
            }
        }
    }
    (None, finish(errors, missing))
}

/// The location that marks a stand-in for a missing key (see [`from_node_all`]).
const STAND_IN: Loc = Loc::new(u32::MAX, u32::MAX);

/// Adds `key` with a stand-in value to the mapping at `loc`; false if there is none.
fn add_stand_in(node: &mut Node, loc: Loc, key: &str) -> bool {
    match &mut node.value {
        Value::Map(m) if node.loc == loc => {
            if m.iter().any(|(k, _)| k.as_str() == Some(key)) {
                return false;
            }
            m.push((
                Node {
                    loc,
                    value: Value::Str(key.to_string()),
                },
                Node {
                    loc: STAND_IN,
                    value: Value::Null,
                },
            ));
            true
        }
        Value::Map(m) => m.iter_mut().any(|(_, v)| add_stand_in(v, loc, key)),
        Value::Seq(s) => s.iter_mut().any(|v| add_stand_in(v, loc, key)),
        _ => false,
    }
}

/// Removes the mapping entry whose key is at `loc`.
fn remove_key_at(node: &mut Node, loc: Loc) -> Option<()> {
    match &mut node.value {
        Value::Map(m) => {
            if let Some(i) = m.iter().position(|(k, _)| k.loc == loc) {
                m.remove(i);
                return Some(());
            }
            m.iter_mut().find_map(|(_, v)| remove_key_at(v, loc))
        }
        Value::Seq(s) => s.iter_mut().find_map(|v| remove_key_at(v, loc)),
        _ => None,
    }
}

/// Removes the mapping entry (or list element) whose value is at `loc`; returns the removed
/// entry's key (`None` for a list element).
fn remove_entry_at(node: &mut Node, loc: Loc) -> Option<Option<String>> {
    match &mut node.value {
        Value::Map(m) => {
            if let Some(i) = m.iter().position(|(_, v)| v.loc == loc && !is_container(v)) {
                let (k, _) = m.remove(i);
                return Some(Some(k.as_str().unwrap_or_default().to_string()));
            }
            m.iter_mut().find_map(|(_, v)| remove_entry_at(v, loc))
        }
        Value::Seq(s) => {
            if let Some(i) = s.iter().position(|v| v.loc == loc && !is_container(v)) {
                s.remove(i);
                return Some(None);
            }
            s.iter_mut().find_map(|v| remove_entry_at(v, loc))
        }
        _ => None,
    }
}

fn is_container(n: &Node) -> bool {
    matches!(n.value, Value::Map(_) | Value::Seq(_))
}

/// The stage's declared paths, against which typed path parameters are checked.
#[derive(Clone, Copy, Debug)]
pub struct Declared<'a> {
    pub inputs: &'a [super::PathSpec],
    pub outputs: &'a [super::PathSpec],
}

/// A `serde` deserializer over a node tree: every error gets the location of the node it
/// concerns; [`super::Located`], [`super::InputPath`] and [`super::OutputPath`] get their
/// node's location (and paths their check) through private newtype names.
#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    checker: Option<&'a Checker<'a>>,
    /// The mapping key this node is the value of, for messages.
    key: Option<&'a str>,
}

/// Checks path parameters against the stage's declared paths, collecting those that are not.
struct Checker<'a> {
    declared: Declared<'a>,
    undeclared: RefCell<Vec<NodeError>>,
}

impl<'a> NodeDe<'a> {
    fn at(self, node: &'a Node, key: Option<&'a str>) -> NodeDe<'a> {
        NodeDe {
            node,
            checker: self.checker,
            key,
        }
    }

    fn error(&self, message: String) -> NodeError {
        NodeError {
            loc: Some(self.node.loc),
            message,
            unknown_field: None,
            missing_field: None,
        }
    }
}

macro_rules! stand_in_or_any {
    ($($m:ident)*) => {
        $(fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
            if self.node.loc == STAND_IN {
                return StandIn.$m(v);
            }
            self.deserialize_any(v)
        })*
    };
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_any(v);
        }
        let r = match &self.node.value {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => v.visit_i64(*i),
            Value::Float(f) => v.visit_f64(*f),
            Value::Str(s) => v.visit_str(s),
            Value::Seq(s) => v.visit_seq(SeqDe {
                it: s.iter(),
                de: self,
            }),
            Value::Map(m) => v.visit_map(MapDe {
                it: m.iter(),
                value: None,
                de: self,
            }),
        };
        r.map_err(at(self.node.loc))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_option(v);
        }
        match self.node.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_newtype_struct(name, v);
        }
        let output = match name {
            super::typed::LOCATED => {
                return v
                    .visit_map(LocatedDe::new(self, None))
                    .map_err(at(self.node.loc));
            }
            super::typed::INPUT_PATH => false,
            super::typed::OUTPUT_PATH => true,
            _ => return v.visit_newtype_struct(self),
        };
        let Some(raw) = self.node.as_str() else {
            return Err(self.error(format!(
                "expected a path (a string), found {}",
                self.node.type_name()
            )));
        };
        // An input named in `inputs: {name: path}` may be given by its name.
        if !output
            && let Some(c) = self.checker
            && let Some(p) = c
                .declared
                .inputs
                .iter()
                .find(|p| p.name.as_deref() == Some(raw))
        {
            return v
                .visit_map(LocatedDe::new(self, Some(p.path.clone())))
                .map_err(at(self.node.loc));
        }
        let path = super::typed::normalize(raw)
            .map_err(|why| self.error(format!("path {raw:?} {why}")))?;
        if let Some(c) = self.checker
            && let Err(m) = super::typed::check_declared(raw, &path, self.key, output, c.declared)
        {
            c.undeclared.borrow_mut().push(self.error(m));
        }
        v.visit_map(LocatedDe::new(self, Some(path)))
            .map_err(at(self.node.loc))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_enum(name, variants, v);
        }
        match &self.node.value {
            Value::Str(s) => v
                .visit_enum(s.as_str().into_deserializer())
                .map_err(at(self.node.loc)),
            _ => Err(self.error(format!(
                "expected a string, found {}",
                self.node.type_name()
            ))),
        }
    }

    // A stand-in answers each type with a value of that type; anything else is read by its
    // node's own type.
    stand_in_or_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_seq deserialize_map deserialize_identifier deserialize_ignored_any
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_unit_struct(name, v);
        }
        self.deserialize_any(v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_tuple(len, v);
        }
        self.deserialize_any(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_tuple_struct(name, len, v);
        }
        self.deserialize_any(v)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        if self.node.loc == STAND_IN {
            return StandIn.deserialize_struct(name, fields, v);
        }
        self.deserialize_any(v)
    }
}

/// The value put in place of a missing required key so that parsing can go on and find the
/// next one: the plainest value of whatever type is asked for (never handed to a kind).
#[derive(Clone, Copy)]
struct StandIn;

impl<'de> Deserializer<'de> for StandIn {
    type Error = NodeError;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_unit()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_bool(false)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_i64(0)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_u64(0)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_f64(0.0)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_str("stand-in")
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_none()
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_seq(de::value::SeqDeserializer::new(
            std::iter::empty::<StandIn>(),
        ))
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_map(de::value::MapDeserializer::new(std::iter::empty::<(
            StandIn,
            StandIn,
        )>()))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        v.visit_map(de::value::MapDeserializer::new(
            fields.iter().map(|f| (*f, StandIn)),
        ))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, NodeError> {
        let first = variants.first().copied().unwrap_or("");
        v.visit_enum(first.into_deserializer())
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, NodeError> {
        match name {
            super::typed::LOCATED | super::typed::INPUT_PATH | super::typed::OUTPUT_PATH => {
                v.visit_map(StandInLocated(0))
            }
            _ => v.visit_newtype_struct(self),
        }
    }
    serde::forward_to_deserialize_any! {
        unit unit_struct ignored_any
    }
    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_u64(v)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_u64(v)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_u64(v)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_u64(v)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_f64(v)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_char('x')
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(v)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(v)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_bytes(b"")
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, NodeError> {
        v.visit_bytes(b"")
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, NodeError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_seq(v)
    }
}

impl IntoDeserializer<'_, NodeError> for StandIn {
    type Deserializer = StandIn;
    fn into_deserializer(self) -> StandIn {
        self
    }
}

/// A stand-in [`super::Located`] value (or path): line 0, column 0, a stand-in value.
struct StandInLocated(usize);

impl<'de> MapAccess<'de> for StandInLocated {
    type Error = NodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let Some(key) = super::typed::LOCATED_KEYS.get(self.0) else {
            return Ok(None);
        };
        seed.deserialize(de::value::StrDeserializer::<NodeError>::new(key))
            .map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let i = self.0;
        self.0 += 1;
        match i {
            0 | 1 => seed.deserialize(de::value::U32Deserializer::<NodeError>::new(0)),
            _ => seed.deserialize(StandIn),
        }
    }
}

struct SeqDe<'a> {
    it: std::slice::Iter<'a, Node>,
    de: NodeDe<'a>,
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = NodeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        match self.it.next() {
            Some(n) => seed
                .deserialize(self.de.at(n, None))
                .map(Some)
                .map_err(at(n.loc)),
            None => Ok(None),
        }
    }
}

struct MapDe<'a> {
    it: std::slice::Iter<'a, (Node, Node)>,
    value: Option<(&'a Node, &'a Node)>,
    de: NodeDe<'a>,
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = NodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        match self.it.next() {
            Some((k, v)) => {
                self.value = Some((k, v));
                seed.deserialize(self.de.at(k, None))
                    .map(Some)
                    .map_err(at(k.loc))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let (k, v) = self.value.take().expect("value after key");
        seed.deserialize(self.de.at(v, k.as_str()))
            .map_err(at(v.loc))
    }
}

/// The map a [`super::Located`] (or a path) is read from: the private marker key, the node's
/// line and column, then its value (for a path: the normalised path).
struct LocatedDe<'a> {
    de: NodeDe<'a>,
    path: Option<String>,
    next: usize,
}

impl<'a> LocatedDe<'a> {
    fn new(de: NodeDe<'a>, path: Option<String>) -> Self {
        LocatedDe { de, path, next: 0 }
    }
}

impl<'de> MapAccess<'de> for LocatedDe<'_> {
    type Error = NodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let Some(key) = super::typed::LOCATED_KEYS.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(de::value::StrDeserializer::<NodeError>::new(key))
            .map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let i = self.next;
        self.next += 1;
        let loc = self.de.node.loc;
        match i {
            0 => seed.deserialize(de::value::U32Deserializer::<NodeError>::new(loc.line)),
            1 => seed.deserialize(de::value::U32Deserializer::<NodeError>::new(loc.col)),
            _ => match self.path.take() {
                Some(p) => seed.deserialize(de::value::StringDeserializer::<NodeError>::new(p)),
                None => seed.deserialize(self.de),
            },
        }
    }
}
