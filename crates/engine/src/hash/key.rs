//! The cache key: a canonical, printable struct of everything that affects a stage's outputs.
//! Its SHA-256 (over canonical JSON) is the stage's fingerprint; `why` diffs two keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bump when the key's layout or meaning changes.
pub const KEY_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    pub key_version: u32,
    pub tool_version: String,
    pub kind: String,
    pub kind_version: u32,
    /// The stage's `with:` as canonical JSON (object keys sorted).
    pub params: serde_json::Value,
    /// Extra material a kind adds (e.g. digests of passed-through environment variables; a kind
    /// must never put a secret here in plain text: keys are stored and printed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    /// Input path -> content digest.
    pub inputs: BTreeMap<String, String>,
    /// Input name -> path, for inputs declared by name (`inputs: {bugs: data/bugs.csv}`):
    /// kinds read inputs by these names, so renaming one is a change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<String, String>,
    /// Declared outputs, in declaration order.
    pub outputs: Vec<String>,
}

/// One difference between two keys, as `plan` and `why` print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChange {
    KeyVersion(u32, u32),
    ToolVersion(String, String),
    Kind(String, String),
    KindVersion(u32, u32),
    Params(String, String),
    /// A multi-line text parameter changed: (path, old, new), shown as a line diff.
    Text(String, String, String),
    Extra(String, Option<String>, Option<String>),
    InputChanged(String, String, String),
    InputAdded(String),
    InputRemoved(String),
    Outputs(Vec<String>, Vec<String>),
}

impl std::fmt::Display for KeyChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |s: &str| s.get(..12).unwrap_or(s).to_string();
        match self {
            KeyChange::KeyVersion(a, b) => write!(f, "cache key version changed: {a} -> {b}"),
            KeyChange::ToolVersion(a, b) => write!(f, "tool version changed: {a} -> {b}"),
            KeyChange::Kind(a, b) => write!(f, "kind changed: {a} -> {b}"),
            KeyChange::KindVersion(a, b) => write!(f, "kind version changed: {a} -> {b}"),
            KeyChange::Params(a, b) => write!(f, "param changed: {a} -> {b}"),
            KeyChange::Text(p, a, b) => {
                write!(f, "param changed: {p} (lines - before, + now):")?;
                let diff = similar::TextDiff::from_lines(a.as_str(), b.as_str());
                let mut u = diff.unified_diff();
                u.context_radius(1).missing_newline_hint(false);
                for hunk in u.iter_hunks() {
                    for line in hunk.to_string().lines() {
                        write!(f, "\n    {line}")?;
                    }
                }
                Ok(())
            }
            // Never the values: for `env.*` they stand for variables that may hold secrets
            // (the key keeps only digests of them anyway).
            KeyChange::Extra(k, _, _) => write!(f, "{k} changed"),
            KeyChange::InputChanged(p, a, b) => {
                write!(f, "input {p} changed: {} -> {}", short(a), short(b))
            }
            KeyChange::InputAdded(p) => write!(f, "input {p} added"),
            KeyChange::InputRemoved(p) => write!(f, "input {p} removed"),
            KeyChange::Outputs(a, b) => {
                write!(
                    f,
                    "outputs changed: [{}] -> [{}]",
                    a.join(", "),
                    b.join(", ")
                )
            }
        }
    }
}

impl CacheKey {
    /// Canonical JSON bytes (serde_json maps are sorted; struct fields have a fixed order).
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a cache key serializes")
    }

    /// Hex SHA-256 of the canonical form.
    pub fn digest(&self) -> String {
        super::sha256_bytes(&self.canonical())
    }

    /// Pretty, printable form.
    pub fn pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a cache key serializes")
    }

    /// What changed from `old` to `self`.
    pub fn diff(&self, old: &CacheKey) -> Vec<KeyChange> {
        let mut v = Vec::new();
        if old.key_version != self.key_version {
            v.push(KeyChange::KeyVersion(old.key_version, self.key_version));
        }
        if old.tool_version != self.tool_version {
            v.push(KeyChange::ToolVersion(
                old.tool_version.clone(),
                self.tool_version.clone(),
            ));
        }
        if old.kind != self.kind {
            v.push(KeyChange::Kind(old.kind.clone(), self.kind.clone()));
        }
        if old.kind_version != self.kind_version {
            v.push(KeyChange::KindVersion(old.kind_version, self.kind_version));
        }
        if old.params != self.params {
            diff_json("with", &old.params, &self.params, &mut v);
        }
        let keys: std::collections::BTreeSet<&String> =
            old.extra.keys().chain(self.extra.keys()).collect();
        for k in keys {
            let (a, b) = (old.extra.get(k), self.extra.get(k));
            if a != b {
                v.push(KeyChange::Extra(k.clone(), a.cloned(), b.cloned()));
            }
        }
        for (p, d) in &self.inputs {
            match old.inputs.get(p) {
                None => v.push(KeyChange::InputAdded(p.clone())),
                Some(o) if o != d => {
                    v.push(KeyChange::InputChanged(p.clone(), o.clone(), d.clone()))
                }
                _ => {}
            }
        }
        for p in old.inputs.keys() {
            if !self.inputs.contains_key(p) {
                v.push(KeyChange::InputRemoved(p.clone()));
            }
        }
        if old.names != self.names {
            let names: std::collections::BTreeSet<&String> =
                old.names.keys().chain(self.names.keys()).collect();
            for n in names {
                let show = |m: &BTreeMap<String, String>| match m.get(n) {
                    Some(p) => format!("inputs.{n} = {p}"),
                    None => "(absent)".to_string(),
                };
                let (a, b) = (show(&old.names), show(&self.names));
                if a != b {
                    v.push(KeyChange::Params(a, b));
                }
            }
        }
        if old.outputs != self.outputs {
            v.push(KeyChange::Outputs(
                old.outputs.clone(),
                self.outputs.clone(),
            ));
        }
        v
    }
}

fn diff_json(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<KeyChange>) {
    use serde_json::Value as J;
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(w)) if u != w => diff_json(&p, u, w, out),
                    (Some(u), None) => {
                        out.push(KeyChange::Params(format!("{p} = {u}"), "(removed)".into()))
                    }
                    (None, Some(w)) => {
                        out.push(KeyChange::Params("(absent)".into(), format!("{p} = {w}")))
                    }
                    _ => {}
                }
            }
        }
        (J::String(x), J::String(y)) if x.contains('\n') || y.contains('\n') => {
            out.push(KeyChange::Text(path.to_string(), x.clone(), y.clone()))
        }
        _ => out.push(KeyChange::Params(
            format!("{path} = {a}"),
            format!("{path} = {b}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            key_version: KEY_VERSION,
            tool_version: "0.1.0".into(),
            kind: "command".into(),
            kind_version: 1,
            params: serde_json::json!({"run": "cat a > b"}),
            extra: BTreeMap::new(),
            inputs: [("a".to_string(), "00".to_string())].into(),
            names: BTreeMap::new(),
            outputs: vec!["b".into()],
        }
    }

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = key();
        assert_eq!(a.digest(), key().digest());
        let mut b = key();
        b.inputs.insert("a".into(), "01".into());
        assert_ne!(a.digest(), b.digest());
        assert_eq!(
            b.diff(&a)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["input a changed: 00 -> 01"]
        );
    }

    #[test]
    fn param_diff_names_the_key() {
        let a = key();
        let mut b = key();
        b.params = serde_json::json!({"run": "cat a a > b"});
        assert_eq!(
            b.diff(&a)[0].to_string(),
            r#"param changed: with.run = "cat a > b" -> with.run = "cat a a > b""#
        );
    }

    #[test]
    fn a_changed_query_is_shown_as_a_line_diff_not_twice_whole() {
        let mut a = key();
        a.params =
            serde_json::json!({"query": "SELECT a,\n  b\nFROM t\nWHERE x = 1\nORDER BY a\n"});
        let mut b = key();
        b.params =
            serde_json::json!({"query": "SELECT a,\n  b\nFROM t\nWHERE x = 2\nORDER BY a\n"});
        assert_eq!(
            b.diff(&a)[0].to_string(),
            "param changed: with.query (lines - before, + now):\n    @@ -3,3 +3,3 @@\n     FROM t\n    -WHERE x = 1\n    +WHERE x = 2\n     ORDER BY a"
        );
    }
}
