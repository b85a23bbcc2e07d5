//! Typed values a kind's parameters are made of, provided by the engine so that every kind
//! gets the same behaviour: [`Located`] (a value and where it is written, so that a problem
//! points at the key), and [`InputPath`] / [`OutputPath`] (a project-relative path, normalised
//! the one way the engine normalises declared paths, and checked against the stage's declared
//! `inputs` / `outputs` while `with:` is parsed, with one wording).
//!
//! They are read through the engine's YAML tree deserializer ([`super::from_node_in`]), which
//! recognises them by private newtype names (the way `serde_saphyr::Spanned` and `toml`'s
//! `Spanned` work); read straight from YAML text by serde-saphyr they take saphyr's location.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Component, Path};

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::node::Declared;
use crate::diag::Loc;

pub(crate) const LOCATED: &str = "$artifact::Located";
pub(crate) const INPUT_PATH: &str = "$artifact::InputPath";
pub(crate) const OUTPUT_PATH: &str = "$artifact::OutputPath";
/// The keys of the map a located value is read from, in order (the first marks the protocol).
pub(crate) const LOCATED_KEYS: [&str; 3] =
    ["$artifact::line", "$artifact::col", "$artifact::value"];

/// A value and the location (line, column) of the YAML node it was read from. As a mapping's
/// key it keeps the key's location; it orders by value first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Located<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Located { value, loc }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Shows the value only.
impl<T: fmt::Display> fmt::Display for Located<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_newtype_struct(LOCATED, LocatedVisitor(PhantomData))
    }
}

struct LocatedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
    type Value = Located<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }
    /// The engine's tree deserializer: line, column, value.
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Located<T>, A::Error> {
        let mut line = 0u32;
        let mut col = 0u32;
        let mut value = None;
        while let Some(k) = m.next_key::<String>()? {
            match LOCATED_KEYS.iter().position(|x| *x == k) {
                Some(0) => line = m.next_value()?,
                Some(1) => col = m.next_value()?,
                Some(_) => value = Some(m.next_value()?),
                None => return Err(de::Error::custom("expected a located value")),
            }
        }
        let value = value.ok_or_else(|| de::Error::custom("expected a located value"))?;
        Ok(Located::new(value, Loc::new(line, col)))
    }
    /// Any other deserializer: serde-saphyr's own spans (unknown elsewhere).
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Located<T>, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        let loc = Loc::new(s.referenced.line() as u32, s.referenced.column() as u32);
        Ok(Located::new(s.value, loc))
    }
}

/// A project-relative path a kind reads, normalised (`./data//x.csv` is `data/x.csv`) and, when
/// parsed for a stage, one of the stage's declared `inputs` (so that it is fingerprinted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputPath(pub Located<String>);

/// A project-relative path a kind writes, normalised and, when parsed for a stage, one of the
/// stage's declared `outputs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputPath(pub Located<String>);

macro_rules! path_type {
    ($t:ident, $name:expr, $output:expr) => {
        impl $t {
            /// The normalised project-relative path.
            pub fn as_str(&self) -> &str {
                &self.0.value
            }
            /// Where the path is written in `pipeline.yaml`.
            pub fn loc(&self) -> Loc {
                self.0.loc
            }
        }
        /// A path built in code (tests, generated stages): normalised when it is well formed,
        /// kept as given otherwise; no location, not checked against any stage.
        impl From<&str> for $t {
            fn from(raw: &str) -> Self {
                let path = normalize(raw).unwrap_or_else(|_| raw.to_string());
                $t(Located::new(path, Loc::default()))
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_newtype_struct($name, PathVisitor($output))
                    .map(|l| $t(l))
            }
        }
    };
}
path_type!(InputPath, INPUT_PATH, false);
path_type!(OutputPath, OUTPUT_PATH, true);

struct PathVisitor(bool);

impl<'de> Visitor<'de> for PathVisitor {
    type Value = Located<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a project-relative path")
    }
    /// The engine's tree deserializer has normalised and checked the path already.
    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Located<String>, A::Error> {
        LocatedVisitor(PhantomData).visit_map(m)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Located<String>, D::Error> {
        let l = LocatedVisitor::<String>(PhantomData).visit_newtype_struct(d)?;
        let path = check_path(&l.value, self.0, None).map_err(de::Error::custom)?;
        Ok(Located::new(path, l.loc))
    }
}

/// Why [`normalize`] refused a path (said after the path: `path "../x" escapes ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("is empty")]
    Empty,
    #[error("escapes the project root (`..` is not allowed)")]
    Escapes,
    #[error("is absolute (paths must be relative to the project root)")]
    Absolute,
    #[error("names the project root itself")]
    Root,
    #[error("is inside the cache folder `{}/`", super::CACHE_DIR)]
    InCache,
    #[error("holds the control character U+{:04X} (a path is one line of printable text)", u32::from(*.0))]
    Control(char),
}

/// Normalises a project-relative path as written (`./a//b` -> `a/b`), refusing one that is
/// empty, absolute, climbs out with `..`, names the root itself, leads into the cache folder or
/// holds a control character (a newline in a path broke the comment line a generated file
/// names its source in, and no report can show it).
/// The one lexical normaliser: declared paths and path parameters both go through it.
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::Empty);
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(PathError::Control(c));
    }
    let mut parts = Vec::new();
    for c in Path::new(raw).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err(PathError::Escapes),
            Component::RootDir | Component::Prefix(_) => return Err(PathError::Absolute),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Root);
    }
    if parts[0] == super::CACHE_DIR {
        return Err(PathError::InCache);
    }
    Ok(parts.join("/"))
}

/// Normalises `raw` and, when `declared` is given, checks it is one of the stage's declared
/// inputs (or outputs).
pub(crate) fn check_path(
    raw: &str,
    output: bool,
    declared: Option<Declared<'_>>,
) -> Result<String, String> {
    let path = normalize(raw).map_err(|why| format!("path {raw:?} {why}"))?;
    if let Some(d) = declared {
        check_declared(raw, &path, None, output, d)?;
    }
    Ok(path)
}

/// Checks that the normalised `path` (written `raw`, as the value of `key` if known) is one of
/// the stage's declared inputs (or outputs): the one place, and the one wording, of that rule.
pub(crate) fn check_declared(
    raw: &str,
    path: &str,
    key: Option<&str>,
    output: bool,
    d: Declared<'_>,
) -> Result<(), String> {
    let (list, list_key) = if output {
        (d.outputs, "outputs")
    } else {
        (d.inputs, "inputs")
    };
    if list.iter().any(|p| p.path == path) {
        return Ok(());
    }
    let what = match key {
        Some(k) => format!("`{k}: {raw:?}`"),
        None => format!("{raw:?}"),
    };
    Err(undeclared(
        &what,
        list_key,
        list.iter().map(|p| p.path.as_str()),
    ))
}

/// "`what` is not one of the stage's inputs (...)": the message for a path a kind uses that
/// the stage does not declare, at validation or (for paths named in data files) at run time.
fn undeclared<'a>(what: &str, key: &str, listed: impl Iterator<Item = &'a str>) -> String {
    let listed: Vec<&str> = listed.collect();
    format!(
        "{what} is not one of the stage's {key} ({}); list it under `{key}` so that {}",
        if listed.is_empty() {
            "there are none".to_string()
        } else {
            listed.join(", ")
        },
        if key == "inputs" {
            "it is fingerprinted"
        } else {
            "the engine stores it"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Node, PathSpec, from_node, from_node_in};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct P {
        data: InputPath,
        out: Option<OutputPath>,
        n: Located<u32>,
    }

    fn spec(path: &str) -> PathSpec {
        PathSpec {
            path: path.into(),
            loc: Loc::default(),
            name: None,
        }
    }

    #[test]
    fn paths_are_normalised_and_located() {
        let node = Node::parse("data: ./data//x.csv\nn: 7\n").unwrap();
        let p: P = from_node(&node).unwrap();
        assert_eq!(p.data.as_str(), "data/x.csv");
        assert_eq!(p.data.loc(), Loc::new(1, 7));
        assert_eq!(*p.n, 7);
        assert_eq!(p.n.loc, Loc::new(2, 4));
        assert!(p.out.is_none());
    }

    #[test]
    fn an_undeclared_path_is_one_problem_at_its_value() {
        let node = Node::parse("data: ./data/y.csv\nout: a.svg\nn: x\n").unwrap();
        let inputs = [spec("data/x.csv")];
        let d = Declared {
            inputs: &inputs,
            outputs: &[],
        };
        let errs = from_node_in::<P>(&node, Some(d)).unwrap_err();
        let mut got: Vec<(Option<Loc>, &str)> =
            errs.iter().map(|e| (e.loc, e.message.as_str())).collect();
        got.sort();
        assert_eq!(
            got,
            [
                (
                    Some(Loc::new(1, 7)),
                    "`data: \"./data/y.csv\"` is not one of the stage's inputs (data/x.csv); list it under `inputs` so that it is fingerprinted"
                ),
                (
                    Some(Loc::new(2, 6)),
                    "`out: \"a.svg\"` is not one of the stage's outputs (there are none); list it under `outputs` so that the engine stores it"
                ),
                (
                    Some(Loc::new(3, 4)),
                    "invalid type: string \"x\", expected a whole number from 0 to 4294967295"
                ),
            ]
        );
    }

    #[test]
    fn paths_that_leave_the_project_are_refused_even_without_a_stage() {
        for (raw, why) in [
            ("../x", "escapes the project root (`..` is not allowed)"),
            (
                "/etc/passwd",
                "is absolute (paths must be relative to the project root)",
            ),
            ("./", "names the project root itself"),
            (
                ".artifact/objects/x",
                "is inside the cache folder `.artifact/`",
            ),
            ("", "is empty"),
            (
                "t\n\\bad.tex",
                "holds the control character U+000A (a path is one line of printable text)",
            ),
        ] {
            let node = Node::parse(&format!("data: {raw:?}\nn: 1\n")).unwrap();
            let errs = from_node::<P>(&node).unwrap_err();
            assert_eq!(errs[0].message, format!("path {raw:?} {why}"), "{raw}");
            assert_eq!(errs[0].loc, Some(Loc::new(1, 7)));
        }
    }

    #[test]
    fn located_values_also_come_from_yaml_text() {
        let p: P = serde_saphyr::from_str("data: ./a.csv\nn: 3\n").unwrap();
        assert_eq!(p.data.as_str(), "a.csv");
        assert_eq!(p.n.loc, Loc::new(2, 4));
        let e = serde_saphyr::from_str::<P>("data: ../a.csv\nn: 3\n").unwrap_err();
        assert!(e.to_string().contains("escapes the project root"), "{e}");
    }

    #[test]
    fn a_path_must_be_a_string() {
        let node = Node::parse("data: [a]\nn: 1\n").unwrap();
        let errs = from_node::<P>(&node).unwrap_err();
        assert_eq!(errs[0].message, "expected a path (a string), found a list");
        assert_eq!(errs[0].loc, Some(Loc::new(1, 7)));
    }
}
