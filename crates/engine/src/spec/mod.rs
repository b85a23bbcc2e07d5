//! `pipeline.yaml` -> validated [`Pipeline`].
//!
//! Two phases: the YAML is read into a located [`node::Node`] tree, then validated into domain
//! types. Every problem is collected (unknown keys at any level, unknown kinds, bad paths,
//! outputs claimed twice, dangling inputs, kind parameters) and reported together, sorted, each
//! with file:line:column and the offending value. Before a stage is validated, `${...}`
//! references are substituted and stage matrices expanded ([`expand`]).

pub mod expand;
pub mod node;
pub mod typed;

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::kind::Registry;
pub use node::{Declared, Node, NodeError, Value, from_node, from_node_all, from_node_in};
pub use typed::{InputPath, Located, OutputPath};

/// The only format version this engine reads.
pub const FORMAT_VERSION: i64 = 1;

/// The folder (under the project root) that holds the cache; no stage may read or write there.
pub const CACHE_DIR: &str = ".artifact";

/// A project-relative path as written in `pipeline.yaml`, normalised (`./a//b` -> `a/b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSpec {
    pub path: String,
    pub loc: Loc,
    /// The input's name when `inputs:` is a mapping (`{bugs: data/bugs.csv}`): kinds may use
    /// it in place of the path, and `aggregate` names its SQL table after it.
    pub name: Option<String>,
}

/// The params file a pipeline declares (`params: params.yaml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamsFile {
    /// Project-relative path.
    pub path: String,
    /// Its stat stamp taken just before it was read (for the no-op snapshot).
    pub stamp: Option<crate::hash::Stamp>,
}

/// One validated stage.
#[derive(Clone, Debug)]
pub struct StageSpec {
    pub name: String,
    pub loc: Loc,
    pub kind: String,
    pub description: Option<String>,
    pub inputs: Vec<PathSpec>,
    pub outputs: Vec<PathSpec>,
    /// The kind's parameters as written; they make the cache key.
    pub with: Node,
    /// The kind's typed parameters, parsed from `with` and checked once when the pipeline is
    /// validated (`None` for a stage built by hand, whose kind then parses `with` itself).
    pub params: Option<Parsed>,
}

impl StageSpec {
    /// The stage's declared paths, against which a kind's path parameters are checked.
    pub fn declared(&self) -> Declared<'_> {
        Declared {
            inputs: &self.inputs,
            outputs: &self.outputs,
        }
    }

    /// Where the value at `path` (keys from the top of `with:`, e.g. `["columns", "x"]`) is
    /// written, for a check that spans several plain parameters; a parameter a check is about
    /// alone is better read as a [`Located`] value.
    pub fn with_loc(&self, path: &[&str]) -> Option<Loc> {
        let mut node = &self.with;
        for key in path {
            node = &node
                .as_map()?
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))?
                .1;
        }
        Some(node.loc)
    }
}

/// A kind's typed parameters, type-erased so that one `StageSpec` serves every kind (the kind
/// gets them back as its own type: [`crate::kind::Kind::params_of`]).
#[derive(Clone)]
pub struct Parsed(pub(crate) Arc<dyn Any + Send + Sync>);

impl Parsed {
    pub fn new<T: Any + Send + Sync>(params: T) -> Self {
        Parsed(Arc::new(params))
    }
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parsed(..)")
    }
}

/// A validated pipeline: stages sorted by name, each input and output checked.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// Project root: the folder holding `pipeline.yaml`.
    pub root: PathBuf,
    /// The pipeline file's name as shown in messages.
    pub file: String,
    pub stages: Vec<StageSpec>,
    /// Declared paths that reach a file through a symlinked folder, mapped to where they really
    /// are (project-relative, e.g. `out/a` -> `build/a` when `out -> build`). Two paths with the
    /// same identity are the same file everywhere: dependencies, claims, cycles.
    pub aliases: BTreeMap<String, String>,
    /// Stages with `executor:` or `resources:` hints (only `command` stages may have them).
    pub placement: BTreeMap<String, crate::exec::slurm::Placement>,
    /// The optional top-level `report:` section, kept as written: the engine never reads it
    /// (no stage key depends on it); the front end that writes a report validates it.
    pub report: Option<Node>,
    /// The params file, if the pipeline declares one.
    pub params: Option<ParamsFile>,
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.stages[i])
    }

    /// Which file `path` (a declared input or output) really is: its resolved project-relative
    /// path, the same for two spellings that reach one file through a symlinked folder.
    pub fn identity<'s>(&'s self, path: &'s str) -> &'s str {
        self.aliases.get(path).map_or(path, String::as_str)
    }

    /// Index of the stage producing each output, by [`Pipeline::identity`].
    pub fn producers(&self) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for (i, s) in self.stages.iter().enumerate() {
            for o in &s.outputs {
                m.entry(self.identity(&o.path)).or_insert(i);
            }
        }
        m
    }

    /// The stages a name given on the command line stands for: the stage of that name, or
    /// every copy of the matrix stage of that name (`fig` -> `fig@engine=a`, `fig@engine=b`).
    pub fn select(&self, name: &str) -> Vec<usize> {
        if let Some(i) = self.stages.iter().position(|s| s.name == name) {
            return vec![i];
        }
        let prefix = format!("{name}@");
        self.stages
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name.starts_with(&prefix))
            .map(|(i, _)| i)
            .collect()
    }

    /// The declared output (as written) that is the same file as `path`, if any.
    pub fn output_named(&self, path: &str) -> Option<&str> {
        let id = self.identity(path);
        self.stages
            .iter()
            .flat_map(|s| &s.outputs)
            .find(|o| self.identity(&o.path) == id)
            .map(|o| o.path.as_str())
    }
}

/// Reads and validates the pipeline file at `path`; messages name the file by its file name.
pub fn load(path: &Path, registry: &Registry) -> Result<Pipeline, Diagnostics> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    load_as(path, &file, registry)
}

/// Like [`load`], naming the file `file` in messages (e.g. the path the user typed).
pub fn load_as(path: &Path, file: &str, registry: &Registry) -> Result<Pipeline, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::new(
            file,
            Loc::default(),
            format!("cannot read the pipeline file: {e}"),
        )])
    })?;
    let root = project_root(path);
    parse(&text, file, &root, registry)
}

/// The project root of the pipeline file at `path`: its folder, made absolute (so that later
/// path operations make no `getcwd` calls).
pub fn project_root(path: &Path) -> PathBuf {
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&root).unwrap_or(root)
}

/// Validates pipeline text; `root` is where relative paths resolve.
pub fn parse(
    text: &str,
    file: &str,
    root: &Path,
    registry: &Registry,
) -> Result<Pipeline, Diagnostics> {
    let doc = Node::parse(text)
        .map_err(|(loc, msg)| Diagnostics(vec![Diagnostic::new(file, loc, msg)]))?;
    let mut resolver = crate::fsutil::Resolver::default();
    let abs_root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let root_canon =
        std::fs::canonicalize(&abs_root).unwrap_or_else(|_| resolver.resolve(&abs_root));
    // The pipeline's own files: the pipeline file (named by its file name in `root`) and its
    // lock file. Neither may ever be a stage's output.
    let own_name = Path::new(file)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("pipeline.yaml"));
    let own_files = vec![
        (
            resolver.resolve(&root_canon.join(&own_name)),
            "the pipeline file itself",
        ),
        (
            resolver.resolve(&root_canon.join(crate::lockfile::lock_path(&own_name))),
            "the pipeline's lock file",
        ),
    ];
    let mut v = Validator {
        file,
        root: &abs_root,
        root_canon,
        resolver,
        own_files,
        aliases: BTreeMap::new(),
        placement: BTreeMap::new(),
        diags: Vec::new(),
        report: None,
        params_file: None,
        refs: text.contains("${"),
        notes: BTreeMap::new(),
        copy_of: None,
        seen_msgs: std::collections::BTreeSet::new(),
    };
    let stages = v.document(&doc, registry);
    if v.diags.is_empty() {
        Ok(Pipeline {
            root: root.to_path_buf(),
            file: file.to_string(),
            stages,
            aliases: v.aliases,
            placement: v.placement,
            report: v.report,
            params: v.params_file,
        })
    } else {
        Err(Diagnostics::sorted(v.diags))
    }
}

struct Validator<'a> {
    file: &'a str,
    root: &'a Path,
    root_canon: PathBuf,
    /// Resolves paths through symlinks (dangling ones by their target text), remembering
    /// folders, so that the symlink check costs one `lstat` per distinct folder.
    resolver: crate::fsutil::Resolver,
    /// Resolved paths of the pipeline's own files, with how to name them.
    own_files: Vec<(PathBuf, &'static str)>,
    aliases: BTreeMap<String, String>,
    placement: BTreeMap<String, crate::exec::slurm::Placement>,
    diags: Vec<Diagnostic>,
    report: Option<Node>,
    params_file: Option<ParamsFile>,
    /// Whether the pipeline text holds any `${` (if not, nothing is substituted).
    refs: bool,
    /// Notes on values that came from the params file, by location (of the stage at hand).
    notes: BTreeMap<Loc, String>,
    /// `(copy, matrix stage)` names while a copy of a matrix stage is validated: a problem of
    /// the stage as written is reported once, for its first copy.
    copy_of: Option<(String, String)>,
    seen_msgs: std::collections::BTreeSet<(Loc, String)>,
}

/// One stage as validated: its name, its tree after substitution, and notes on values that came
/// from the params file.
type StageCopy = (String, Node, BTreeMap<Loc, String>);

const STAGE_KEYS: &[&str] = &[
    "kind",
    "matrix",
    "description",
    "inputs",
    "outputs",
    "with",
    "executor",
    "resources",
];

impl Validator<'_> {
    fn err(&mut self, loc: Loc, msg: impl Into<String>) {
        let mut msg = msg.into();
        if let Some(note) = self.notes.get(&loc) {
            msg = format!("{msg} ({note})");
        }
        if let Some((copy, stage)) = &self.copy_of {
            let general = msg.replace(&format!("{copy:?}"), &format!("{stage:?}"));
            if !self.seen_msgs.insert((loc, general)) {
                return;
            }
        }
        self.diags.push(Diagnostic::new(self.file, loc, msg));
    }

    fn subst_errors(&mut self, errors: Vec<(Loc, String)>) {
        for (l, m) in errors {
            if !m.is_empty() {
                self.err(l, m);
            }
        }
    }

    /// Reads the params file named by the top-level `params:` key.
    fn params(&mut self, n: &Node) -> Option<expand::ParamsDoc> {
        let Some(raw) = n.as_str() else {
            self.err(
                n.loc,
                format!(
                    "`params` must be the path of a YAML file (e.g. `params: params.yaml`), found {}",
                    n.type_name()
                ),
            );
            return None;
        };
        let path = match self.normalize(raw, false) {
            Ok(p) => p,
            Err(why) => {
                self.err(n.loc, format!("the params file {raw:?} {why}"));
                return None;
            }
        };
        let full = self.root.join(&path);
        let resolved = self.resolver.resolve(&self.root_canon.join(&path));
        self.own_files.push((resolved, "the params file"));
        // Stamped before it is read: an edit after this point cannot be taken for this content.
        let stamp = crate::noop::stamp_file(&full);
        let broken = expand::ParamsDoc {
            file: path.clone(),
            root: Node::empty_map(n.loc),
            broken: true,
        };
        let text = match std::fs::read_to_string(&full) {
            Ok(t) => t,
            Err(e) => {
                self.err(n.loc, format!("cannot read the params file {path:?}: {e}"));
                return Some(broken);
            }
        };
        self.params_file = Some(ParamsFile {
            path: path.clone(),
            stamp,
        });
        let root = match Node::parse(&text) {
            Ok(r) => r,
            Err((loc, msg)) => {
                self.diags.push(Diagnostic::new(&path, loc, msg));
                return Some(broken);
            }
        };
        if root.as_map().is_none() {
            self.diags.push(Diagnostic::new(
                &path,
                root.loc,
                format!(
                    "a params file must be a mapping of names to values, found {}",
                    root.type_name()
                ),
            ));
            return Some(broken);
        }
        Some(expand::ParamsDoc {
            file: path,
            root,
            broken: false,
        })
    }

    /// The stage `node` (named `name`, at `key`) with references substituted, or its copies if
    /// it has a `matrix:`: `(name, stage, notes)` each; `None` in place of a copy whose
    /// substitution failed (its problems are reported).
    fn copies(
        &mut self,
        name: &str,
        key: &Node,
        node: &Node,
        params: Option<&expand::ParamsDoc>,
        total: &mut usize,
    ) -> Vec<Option<StageCopy>> {
        use expand::{Subst, Vars};
        let matrix = node
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("matrix")));
        let Some((_, matrix)) = matrix else {
            *total += 1;
            if name.contains("${") {
                self.err(
                    key.loc,
                    format!(
                        "stage name {name:?} holds a reference, but the stage has no `matrix:` to fill it"
                    ),
                );
                return vec![None];
            }
            if !self.refs {
                return vec![Some((name.to_string(), node.clone(), BTreeMap::new()))];
            }
            let mut s = Subst::new(Vars {
                params,
                matrix: None,
                in_matrix: false,
            });
            let out = s.node(node);
            let ok = s.errors.is_empty();
            self.subst_errors(s.errors);
            return vec![ok.then(|| (name.to_string(), out, s.notes))];
        };
        let mut ps = Subst::new(Vars {
            params,
            matrix: None,
            in_matrix: true,
        });
        let m = ps.node(matrix);
        if !ps.errors.is_empty() {
            self.subst_errors(ps.errors);
            return vec![None];
        }
        let axes = match expand::axes(name, &m) {
            Ok(a) => a,
            Err(es) => {
                for (l, msg) in es {
                    self.err(l, msg);
                }
                return vec![None];
            }
        };
        let n = match expand::product(&axes, expand::MAX_EXPANDED.saturating_sub(*total)) {
            Ok(n) => n,
            Err(msg) => {
                self.err(matrix.loc, format!("in stage {name:?}: {msg}"));
                return vec![None];
            }
        };
        *total += n;
        let body = Node {
            loc: node.loc,
            value: Value::Map(
                node.as_map()
                    .unwrap_or(&[])
                    .iter()
                    .filter(|(k, _)| k.as_str() != Some("matrix"))
                    .cloned()
                    .collect(),
            ),
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let combo = expand::combination(&axes, i);
            let vals: Vec<(String, &Node)> =
                combo.iter().map(|(a, _, v)| (a.clone(), *v)).collect();
            let mut s = Subst::new(Vars {
                params,
                matrix: Some(&vals),
                in_matrix: false,
            });
            let stage = s.node(&body);
            let copy = if name.contains("${") {
                let k = s.node(key);
                match k.as_str() {
                    Some(t) if valid_name(t) => Some(t.to_string()),
                    _ if !s.errors.is_empty() => None,
                    _ => {
                        self.err(
                            key.loc,
                            format!(
                                "stage name {name:?} becomes {}, which is not a valid stage name (expected letters, digits, `_`, `-` or `.`)",
                                k.show()
                            ),
                        );
                        None
                    }
                }
            } else {
                let parts: Vec<String> = combo.iter().map(|(a, l, _)| format!("{a}={l}")).collect();
                Some(format!("{name}@{}", parts.join(",")))
            };
            let ok = s.errors.is_empty();
            self.subst_errors(s.errors);
            out.push(copy.filter(|_| ok).map(|c| (c, stage, s.notes)));
        }
        out
    }

    fn document(&mut self, doc: &Node, registry: &Registry) -> Vec<StageSpec> {
        let Some(top) = doc.as_map() else {
            self.err(
                doc.loc,
                format!(
                    "expected a mapping with keys `version` and `stages`, found {}",
                    doc.type_name()
                ),
            );
            return Vec::new();
        };
        let mut version = None;
        let mut stages_node = None;
        let mut params_node = None;
        for (k, val) in top {
            match k.as_str() {
                Some("version") => version = Some(val),
                Some("stages") => stages_node = Some(val),
                Some("report") => self.report = Some(val.clone()),
                Some("params") => params_node = Some(val),
                _ => self.err(
                    k.loc,
                    format!(
                        "unknown top-level key {} (expected one of: version, params, stages, report)",
                        k.show()
                    ),
                ),
            }
        }
        match version {
            None => self.err(
                doc.loc,
                "missing required key `version` (write `version: 1`)",
            ),
            Some(n) if n.value == Value::Int(FORMAT_VERSION) => {}
            Some(Node {
                value: Value::Float(f),
                loc,
                ..
            }) => self.err(
                *loc,
                format!(
                    "`version` must be the integer {FORMAT_VERSION}, found the float {f:?} (write `version: {FORMAT_VERSION}`)"
                ),
            ),
            Some(n) => self.err(
                n.loc,
                format!(
                    "unsupported version {} (this engine reads version {FORMAT_VERSION})",
                    n.show()
                ),
            ),
        }
        let params = params_node.and_then(|n| self.params(n));
        let Some(stages_node) = stages_node else {
            self.err(doc.loc, "missing required key `stages`");
            return Vec::new();
        };
        let Some(entries) = stages_node.as_map() else {
            self.err(
                stages_node.loc,
                format!(
                    "`stages` must be a mapping of stage names to stages, found {}",
                    stages_node.type_name()
                ),
            );
            return Vec::new();
        };
        let mut stages: Vec<StageSpec> = Vec::new();
        let mut seen: BTreeMap<String, Loc> = BTreeMap::new();
        let mut total = 0usize;
        for (k, val) in entries {
            let Some(name) = k.as_str() else {
                self.err(
                    k.loc,
                    format!("a stage name must be a string, found {}", k.show()),
                );
                continue;
            };
            if !name.contains("${") && !valid_name(name) {
                self.err(
                    k.loc,
                    format!(
                        "invalid stage name {name:?} (expected letters, digits, `_`, `-` or `.`)"
                    ),
                );
            }
            let copies = self.copies(name, k, val, params.as_ref(), &mut total);
            let matrix = copies.len() > 1
                || copies
                    .first()
                    .is_some_and(|c| c.as_ref().is_some_and(|c| c.0 != name));
            for (copy, node, notes) in copies.into_iter().flatten() {
                if let Some(first) = seen.get(&copy) {
                    let msg = if matrix {
                        format!(
                            "stage {name:?} expands to the stage name {copy:?} a second time (also defined at line {}): give each copy its own name",
                            first.line
                        )
                    } else {
                        format!(
                            "duplicate stage name {copy:?} (first defined at line {})",
                            first.line
                        )
                    };
                    self.err(k.loc, msg);
                    continue;
                }
                seen.insert(copy.clone(), k.loc);
                self.notes = notes;
                self.copy_of = matrix.then(|| (copy.clone(), name.to_string()));
                if let Some(s) = self.stage(&copy, k.loc, &node, registry) {
                    stages.push(s);
                }
                self.copy_of = None;
                self.notes.clear();
            }
        }
        stages.sort_by(|a, b| a.name.cmp(&b.name));
        self.cross_check(&stages);
        stages
    }

    fn stage(
        &mut self,
        name: &str,
        loc: Loc,
        node: &Node,
        registry: &Registry,
    ) -> Option<StageSpec> {
        let Some(map) = node.as_map() else {
            self.err(
                node.loc,
                format!(
                    "stage {name:?} must be a mapping, found {}",
                    node.type_name()
                ),
            );
            return None;
        };
        let mut kind = None;
        let mut description = None;
        let mut inputs = Vec::new();
        let mut outputs = None;
        let mut with = None;
        let mut placement: Option<(crate::exec::slurm::Placement, Loc)> = None;
        for (k, val) in map {
            match k.as_str() {
                Some("kind") => match val.as_str() {
                    Some(s) => kind = Some((s.to_string(), val.loc)),
                    None => self.err(
                        val.loc,
                        format!("`kind` must be a string, found {}", val.type_name()),
                    ),
                },
                Some("description") => match val.as_str() {
                    Some(s) => description = Some(s.to_string()),
                    None => self.err(
                        val.loc,
                        format!("`description` must be a string, found {}", val.type_name()),
                    ),
                },
                Some("inputs") => inputs = self.paths(name, "inputs", val),
                Some("outputs") => {
                    let empty = matches!(&val.value, Value::Null)
                        || matches!(&val.value, Value::Seq(s) if s.is_empty());
                    outputs = Some((self.paths(name, "outputs", val), val.loc, empty));
                }
                Some("with") => with = Some(val.clone()),
                // Expanded before the stage is read (see `copies`).
                Some("matrix") => {}
                Some(key @ ("executor" | "resources")) => {
                    self.placement_key(name, key, k.loc, val, &mut placement);
                }
                _ => self.err(
                    k.loc,
                    format!(
                        "unknown key {} in stage {name:?} (expected one of: {})",
                        k.show(),
                        STAGE_KEYS.join(", ")
                    ),
                ),
            }
        }
        let with = match with {
            Some(w) if matches!(w.value, Value::Null) => Node::empty_map(w.loc),
            Some(w) => w,
            None => Node::empty_map(loc),
        };
        if !matches!(with.value, Value::Map(_)) {
            self.err(
                with.loc,
                format!(
                    "`with` in stage {name:?} must be a mapping, found {}",
                    with.type_name()
                ),
            );
        }
        // Every missing required key in one message.
        match (&kind, &outputs) {
            (None, None) => self.err(
                loc,
                format!(
                    "stage {name:?} is missing the required keys `kind` (one of: {}) and `outputs` (`outputs: [path, ...]`)",
                    registry.names().join(", ")
                ),
            ),
            (Some(_), None) => self.err(
                loc,
                format!("stage {name:?} has no outputs (add `outputs: [path, ...]`)"),
            ),
            (None, Some(_)) => self.err(
                loc,
                format!(
                    "stage {name:?} has no `kind` (expected one of: {})",
                    registry.names().join(", ")
                ),
            ),
            (Some(_), Some(_)) => {}
        }
        let outputs = match outputs {
            None => Vec::new(),
            Some((o, oloc, empty)) => {
                if empty {
                    self.err(
                        oloc,
                        format!("stage {name:?} has no outputs (the list is empty)"),
                    );
                }
                o
            }
        };
        let (kind, kind_loc) = kind?;
        if let Some((p, ploc)) = placement {
            if kind != "command" {
                self.err(
                    ploc,
                    format!(
                        "`executor` and `resources` are allowed on `command` stages only; stage {name:?} is of kind {kind} (built-in kinds always run locally)"
                    ),
                );
            } else {
                self.placement.insert(name.to_string(), p);
            }
        }
        let mut spec = StageSpec {
            name: name.to_string(),
            loc,
            kind,
            description,
            inputs,
            outputs,
            with,
            params: None,
        };
        match registry.get(&spec.kind) {
            None => self.err(
                kind_loc,
                format!(
                    "unknown kind {:?} in stage {name:?} (expected one of: {})",
                    spec.kind,
                    registry.names().join(", ")
                ),
            ),
            Some(k) if matches!(spec.with.value, Value::Map(_)) => match k.check(&spec) {
                Ok(parsed) => spec.params = Some(parsed),
                Err(problems) => {
                    for e in problems {
                        let loc = e.loc.unwrap_or(spec.with.loc);
                        self.err(
                            loc,
                            format!(
                                "in `with` of stage {name:?} (kind {}): {}",
                                spec.kind, e.message
                            ),
                        );
                    }
                }
            },
            Some(_) => {}
        }
        Some(spec)
    }

    /// Reads `executor:` or `resources:` of a stage into `placement` (kept with the location
    /// of the first such key, for the kind check).
    fn placement_key(
        &mut self,
        stage: &str,
        key: &str,
        loc: Loc,
        val: &Node,
        placement: &mut Option<(crate::exec::slurm::Placement, Loc)>,
    ) {
        let (p, _) = placement.get_or_insert_with(|| (Default::default(), loc));
        if key == "executor" {
            match crate::exec::slurm::parse_executor(val) {
                Ok(e) => p.executor = e,
                Err(m) => self.err(val.loc, format!("in stage {stage:?}: {m}")),
            }
        } else {
            let (r, errs) = crate::exec::slurm::parse_resources(val);
            p.resources = r;
            for (l, m) in errs {
                self.err(l, format!("in stage {stage:?}: {m}"));
            }
        }
    }

    fn paths(&mut self, stage: &str, key: &str, node: &Node) -> Vec<PathSpec> {
        let items: Vec<(Option<&Node>, &Node)> = match &node.value {
            Value::Seq(s) => s.iter().map(|n| (None, n)).collect(),
            Value::Str(_) => vec![(None, node)],
            Value::Null => Vec::new(),
            Value::Map(m) if key == "inputs" => m.iter().map(|(k, v)| (Some(k), v)).collect(),
            _ => {
                let what = if key == "inputs" {
                    "a list of paths or a mapping of names to paths"
                } else {
                    "a list of paths"
                };
                self.err(
                    node.loc,
                    format!(
                        "`{key}` of stage {stage:?} must be {what}, found {}",
                        node.type_name()
                    ),
                );
                return Vec::new();
            }
        };
        let mut out: Vec<PathSpec> = Vec::new();
        for (name, it) in items {
            let name = match name {
                None => None,
                Some(k) => match k.as_str() {
                    Some(n) if expand::is_identifier(n) => {
                        if out.iter().any(|p| p.name.as_deref() == Some(n)) {
                            self.err(
                                k.loc,
                                format!("input name {n:?} appears twice in stage {stage:?}"),
                            );
                            continue;
                        }
                        Some(n.to_string())
                    }
                    _ => {
                        self.err(
                            k.loc,
                            format!(
                                "input name {} of stage {stage:?} must be a name of letters, digits and `_`, not starting with a digit (kinds use it as a table or variable name)",
                                k.show()
                            ),
                        );
                        continue;
                    }
                },
            };
            let Some(raw) = it.as_str() else {
                self.err(
                    it.loc,
                    format!("a path in `{key}` must be a string, found {}", it.show()),
                );
                continue;
            };
            match self.normalize(raw, key == "outputs") {
                Ok(path) => out.push(PathSpec {
                    path,
                    loc: it.loc,
                    name,
                }),
                Err(why) => self.err(
                    it.loc,
                    format!("path {raw:?} in `{key}` of stage {stage:?} {why}"),
                ),
            }
        }
        out
    }

    /// Normalises a project-relative path, refusing anything that escapes the project root
    /// (also through a symlink, dangling or not), leads into the cache folder, or, for an
    /// output, is one of the pipeline's own files. Records the path's identity when a symlink
    /// makes it differ from the path as written.
    fn normalize(&mut self, raw: &str, output: bool) -> Result<String, String> {
        let norm = typed::normalize(raw).map_err(|e| e.to_string())?;
        // Symlinks, including dangling ones (judged by where they point): the path must stay
        // inside the root and out of the cache folder.
        let c = self.resolver.resolve(&self.root_canon.join(&norm));
        if !c.starts_with(&self.root_canon) {
            return Err(format!(
                "escapes the project root through a symlink (resolves to {})",
                c.display()
            ));
        }
        if c.starts_with(self.root_canon.join(CACHE_DIR)) {
            return Err(format!(
                "leads into the cache folder `{CACHE_DIR}/` through a symlink"
            ));
        }
        if output && let Some((_, what)) = self.own_files.iter().find(|(f, _)| *f == c) {
            return Err(format!("is {what}; it cannot be a stage's output"));
        }
        let id = c
            .strip_prefix(&self.root_canon)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_else(|_| norm.clone());
        if id != norm {
            self.aliases.insert(norm.clone(), id);
        }
        Ok(norm)
    }

    fn identity<'s>(&'s self, path: &'s str) -> &'s str {
        self.aliases.get(path).map_or(path, String::as_str)
    }

    fn cross_check(&mut self, stages: &[StageSpec]) {
        let mut producer: BTreeMap<String, (&str, &str, Loc)> = BTreeMap::new();
        let mut msgs = Vec::new();
        for s in stages {
            for o in &s.outputs {
                let id = self.identity(&o.path).to_string();
                if let Some((other, other_path, oloc)) = producer.get(&id) {
                    let same = if *other_path == o.path {
                        String::new()
                    } else {
                        format!(" as {other_path:?}, the same file through a symlink")
                    };
                    let msg = format!(
                        "output {:?} of stage {:?} is already claimed by stage {other:?}{same} (line {})",
                        o.path, s.name, oloc.line
                    );
                    msgs.push((o.loc, msg));
                } else {
                    producer.insert(id, (&s.name, &o.path, o.loc));
                }
            }
        }
        // A file output cannot also be a folder of another output (`x` and `x/y`): found only
        // when running ("Not a directory") until an adversarial helper tried it.
        for s in stages {
            for o in &s.outputs {
                let folders = o.path.match_indices('/').map(|(i, _)| &o.path[..i]);
                for folder in folders {
                    if let Some((other, _, oloc)) = producer.get(self.identity(folder)) {
                        let msg = format!(
                            "output {:?} of stage {:?} lies in {folder:?}, which stage {other:?} writes as a file (line {})",
                            o.path, s.name, oloc.line
                        );
                        msgs.push((o.loc, msg));
                    }
                }
            }
        }
        for (loc, msg) in msgs {
            self.err(loc, msg);
        }
        for s in stages {
            for i in &s.inputs {
                let id = self.identity(&i.path).to_string();
                if let Some(o) = s.outputs.iter().find(|o| self.identity(&o.path) == id) {
                    let same = if o.path == i.path {
                        String::new()
                    } else {
                        format!(" ({:?}, the same file through a symlink)", o.path)
                    };
                    let msg = format!(
                        "input {:?} of stage {:?} is also one of its outputs{same}; a stage cannot read what it writes",
                        i.path, s.name
                    );
                    self.err(i.loc, msg);
                    continue;
                }
                if producer.contains_key(&id) {
                    continue;
                }
                let full = self.root.join(&i.path);
                match std::fs::metadata(&full) {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => self.err(
                        i.loc,
                        format!("input {:?} of stage {:?} is a folder; list files", i.path, s.name),
                    ),
                    Err(_) => self.err(
                        i.loc,
                        format!(
                            "input {:?} of stage {:?} is neither an existing file nor an output of any stage",
                            i.path, s.name
                        ),
                    ),
                }
            }
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
