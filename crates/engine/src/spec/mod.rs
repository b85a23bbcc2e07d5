//! `pipeline.yaml` -> validated [`Pipeline`].
//!
//! Two phases: the YAML is read into a located [`node::Node`] tree, then validated into domain
//! types. Every problem is collected (unknown keys at any level, unknown kinds, bad paths,
//! outputs claimed twice, dangling inputs, kind parameters) and reported together, sorted, each
//! with file:line:column and the offending value.

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
}

const STAGE_KEYS: &[&str] = &[
    "kind",
    "description",
    "inputs",
    "outputs",
    "with",
    "executor",
    "resources",
];

impl Validator<'_> {
    fn err(&mut self, loc: Loc, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(self.file, loc, msg));
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
        for (k, val) in top {
            match k.as_str() {
                Some("version") => version = Some(val),
                Some("stages") => stages_node = Some(val),
                Some("report") => self.report = Some(val.clone()),
                _ => self.err(
                    k.loc,
                    format!(
                        "unknown top-level key {} (expected one of: version, stages, report)",
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
        for (k, val) in entries {
            let Some(name) = k.as_str() else {
                self.err(
                    k.loc,
                    format!("a stage name must be a string, found {}", k.show()),
                );
                continue;
            };
            if let Some(first) = seen.get(name) {
                self.err(
                    k.loc,
                    format!(
                        "duplicate stage name {name:?} (first defined at line {})",
                        first.line
                    ),
                );
                continue;
            }
            seen.insert(name.to_string(), k.loc);
            if !valid_name(name) {
                self.err(
                    k.loc,
                    format!(
                        "invalid stage name {name:?} (expected letters, digits, `_`, `-` or `.`)"
                    ),
                );
            }
            if let Some(s) = self.stage(name, k.loc, val, registry) {
                stages.push(s);
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
        let outputs = match outputs {
            None => {
                self.err(
                    loc,
                    format!("stage {name:?} has no outputs (add `outputs: [path, ...]`)"),
                );
                Vec::new()
            }
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
        let Some((kind, kind_loc)) = kind else {
            self.err(
                loc,
                format!(
                    "stage {name:?} has no `kind` (expected one of: {})",
                    registry.names().join(", ")
                ),
            );
            return None;
        };
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
        let items: Vec<&Node> = match &node.value {
            Value::Seq(s) => s.iter().collect(),
            Value::Str(_) => vec![node],
            Value::Null => Vec::new(),
            _ => {
                self.err(
                    node.loc,
                    format!(
                        "`{key}` of stage {stage:?} must be a list of paths, found {}",
                        node.type_name()
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for it in items {
            let Some(raw) = it.as_str() else {
                self.err(
                    it.loc,
                    format!("a path in `{key}` must be a string, found {}", it.show()),
                );
                continue;
            };
            match self.normalize(raw, key == "outputs") {
                Ok(path) => out.push(PathSpec { path, loc: it.loc }),
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
        let norm = typed::normalize(raw)?;
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
