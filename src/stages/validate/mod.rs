//! The `validate` kind: checks a raw CSV against a schema declared in `pipeline.yaml` (columns,
//! types, cell structure, row filters, uniqueness, cross-column rules) and vocabularies declared
//! in YAML files, then writes typed tidy tables named in `with:`. Nothing about any one study is
//! written here; `docs/kinds.md` ("validate") documents every parameter.
//!
//! This module owns the parameters and their checks; [`vocab`] the vocabulary files,
//! [`corrections`] the hand edits applied to the raw cells, [`rows`] the row checks and the
//! problem report, [`tables`] the output tables.

pub mod corrections;
pub mod rows;
pub mod tables;
pub mod vocab;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use engine::kind::{InputPath, Kind, Located, OutputPath, Problem, StageCtx, StageError};
use engine::spec::StageSpec;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

pub use corrections::Corrections;
pub use rows::{Checked, ValidateError};
pub use vocab::Vocab;

/// Parameters of a `validate` stage.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub input: InputPath,
    /// The field delimiter (one ASCII character; default `,`).
    #[serde(default)]
    pub delimiter: Option<Located<String>>,
    /// The quote character (one ASCII character; default `"`; `""` turns quoting off).
    #[serde(default)]
    pub quote: Option<Located<String>>,
    /// Vocabulary files.
    #[serde(default)]
    pub vocabularies: Vec<InputPath>,
    /// A corrections file: hand edits of raw cells, applied before the checks (see
    /// [`corrections`]).
    #[serde(default)]
    pub corrections: Option<InputPath>,
    /// The columns, in order: the name used in the outputs -> how to read and check it.
    pub columns: Located<Ordered<Column>>,
    /// Keep only rows meeting every condition (checked on the raw cells, before validation).
    #[serde(default)]
    pub keep: Vec<Cond>,
    /// Drop rows meeting any condition (raw cells, before validation).
    #[serde(default)]
    pub drop: Vec<Cond>,
    /// Uniqueness keys: each a list of columns whose values together are unique.
    #[serde(default)]
    pub unique: Vec<Located<Vec<String>>>,
    /// Groups of multi-valued columns that must hold the same number of values in each row.
    #[serde(default)]
    pub parallel: Vec<Located<Vec<String>>>,
    #[serde(default)]
    pub rules: Vec<Located<Rule>>,
    pub tables: Tables,
}

/// How one column is read and checked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The raw CSV's header (default: the column's name).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default, rename = "type")]
    pub ty: Type,
    /// A `date` column's format (chrono `strftime` syntax; default `%Y-%m-%d`).
    #[serde(default)]
    pub format: Option<String>,
    /// Every value must be one of this vocabulary's values.
    #[serde(default)]
    pub vocabulary: Option<Located<String>>,
    /// Rewrite the vocabulary's aliases to their canonical value before checking.
    #[serde(default)]
    pub aliases: bool,
    /// An empty cell is allowed (a null; no values in a multi-valued column).
    #[serde(default)]
    pub optional: bool,
    /// Multi-valued: the string between values.
    #[serde(default)]
    pub separator: Option<Located<String>>,
    /// Multi-valued: a value may not be listed twice in one cell.
    #[serde(default)]
    pub distinct: bool,
}

/// A column's type; values are written in one canonical form.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    #[default]
    String,
    Int,
    Float,
    Bool,
    Date,
}

/// A condition on one column's values (for a multi-valued column: on any of its values).
/// Exactly one test is given.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cond {
    pub column: Located<String>,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default, rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// A regular expression the whole value must match; in a rule's `require`, `{col.attr}`
    /// stands for the attribute `attr` of column `col`'s vocabulary value in the same row
    /// (`{col.a|b}`: any value of attributes `a` or `b`).
    #[serde(default)]
    pub matches: Option<Located<String>>,
    /// `true`: the cell is empty; `false`: it is not.
    #[serde(default)]
    pub empty: Option<bool>,
}

/// A cross-column rule: in every row where `when` holds (always, without `when`), `require`
/// must hold.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub when: Option<Cond>,
    pub require: Cond,
    /// What to show as the expected form (placeholders as in `matches`).
    #[serde(default)]
    pub expected: Option<String>,
}

/// The output tables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tables {
    #[serde(default)]
    pub wide: Option<Wide>,
    #[serde(default)]
    pub long: Vec<Long>,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
}

/// One row per kept row: the id, the source row, every single-valued column (with its rank and
/// levels when it has a vocabulary) and a `<column>_count` per multi-valued column.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wide {
    pub path: OutputPath,
    /// The name of the row id column (1, 2, ... in file order); default `id`.
    #[serde(default)]
    pub id: Option<String>,
}

/// One row per value of a multi-valued column (or per position of parallel columns).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Long {
    pub path: OutputPath,
    pub columns: Located<Vec<String>>,
}

/// One row per value of a vocabulary (or per node of one of its levels).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    pub path: OutputPath,
    pub vocabulary: Located<String>,
    #[serde(default)]
    pub level: Option<Located<String>>,
}

/// A mapping read in the order it is written.
#[derive(Clone, Debug)]
pub struct Ordered<T>(pub Vec<(Located<String>, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered<T>, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry()? {
                    v.push(e);
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl Params {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .0
            .iter()
            .find(|(k, _)| k.value == name)
            .map(|(_, c)| c)
    }

    /// The id column's name in every row-level table.
    pub fn id_name(&self) -> &str {
        self.tables
            .wide
            .as_ref()
            .and_then(|w| w.id.as_deref())
            .unwrap_or("id")
    }

    /// One ASCII byte from an optional parameter, or the default; `None` for `""`.
    fn byte(p: &Option<Located<String>>, default: u8) -> Result<Option<u8>, Problem> {
        match p {
            None => Ok(Some(default)),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) if s.len() == 1 && s.is_ascii() && s.as_str() != "\n" => {
                Ok(Some(s.as_bytes()[0]))
            }
            Some(s) => Err(Problem::at(
                s.loc,
                format!("{:?} is not one ASCII character", s.value),
            )),
        }
    }

    pub fn delimiter(&self) -> u8 {
        Self::byte(&self.delimiter, b',')
            .ok()
            .flatten()
            .unwrap_or(b',')
    }

    pub fn quote(&self) -> Option<u8> {
        Self::byte(&self.quote, b'"').unwrap_or(Some(b'"'))
    }
}

/// See the module docs.
pub struct ValidateKind;

impl Kind for ValidateKind {
    type Params = Params;
    fn name(&self) -> &'static str {
        "validate"
    }
    fn version(&self) -> u32 {
        1
    }
    fn about(&self) -> &'static str {
        "check a raw CSV against a schema and vocabularies declared in YAML; write typed tidy tables"
    }
    fn validate(&self, p: &Params, stage: &StageSpec) -> Vec<Problem> {
        check_params(p, stage)
    }
    fn run(&self, p: &Params, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let vocabs = load_vocabularies(p, ctx.root)?;
        let log_rel = format!(".artifact/logs/{}.problems.csv", ctx.stage.name);
        let input = ctx.input(&p.input);
        let fixes = match &p.corrections {
            Some(f) => Some(Corrections::load(&ctx.input(f), f.as_str(), p)?),
            None => None,
        };
        let output = |rel: &str| ctx.output(rel);
        // Rows go to the tables as they are checked (nothing holds them all); after a problem
        // the run fails and these partial files are never used (outputs are committed only
        // when the stage succeeds).
        let mut row_tables = tables::RowTables::new(p, &vocabs, &output)?;
        rows::check_stream(
            &input,
            p,
            &vocabs,
            fixes.as_ref(),
            Some(&ctx.root.join(&log_rel)),
            &mut |src, values| row_tables.row(src, values),
        )
        .map_err(|e| rows::relabel(e, p.input.as_str(), &input, &log_rel))?;
        row_tables.finish()?;
        tables::write_dimensions(p, &vocabs, &output)
    }
}

/// Reads every vocabulary file of `p` (paths relative to `root`) and checks that the names
/// `with:` uses exist in them; every problem at once.
pub fn load_vocabularies(p: &Params, root: &Path) -> Result<BTreeMap<String, Vocab>, StageError> {
    let mut vocabs = BTreeMap::new();
    let mut errors = Vec::new();
    for f in &p.vocabularies {
        match vocab::load(&root.join(f.as_str()), f.as_str()) {
            Ok(vs) => {
                for v in vs {
                    if vocabs.contains_key(&v.name) {
                        errors.push(format!(
                            "{f}: vocabulary {:?} is defined in two files",
                            v.name
                        ));
                    }
                    vocabs.insert(v.name.clone(), v);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n").into());
    }
    tables::check_references(p, &vocabs)?;
    Ok(vocabs)
}

/// Checks that need no file: names, references between keys, patterns, the output list.
fn check_params(p: &Params, stage: &StageSpec) -> Vec<Problem> {
    let mut v = Vec::new();
    for b in [&p.delimiter, &p.quote] {
        if let Err(e) = Params::byte(b, b',') {
            v.push(e);
        }
    }
    if p.delimiter.as_ref().is_some_and(|d| d.is_empty()) {
        v.push(Problem::new(None, "`delimiter` is empty"));
    }
    let mut names = HashSet::new();
    let mut froms = HashSet::new();
    for (name, c) in &p.columns.0 {
        if !names.insert(name.value.as_str()) {
            v.push(Problem::at(
                name.loc,
                format!("column {:?} is declared twice", name.value),
            ));
        }
        let from = c.from.as_deref().unwrap_or(&name.value);
        if !froms.insert(from) {
            v.push(Problem::at(
                name.loc,
                format!("raw column {from:?} is read twice"),
            ));
        }
        if let Some(s) = &c.separator
            && s.is_empty()
        {
            v.push(Problem::at(s.loc, "`separator` is empty"));
        }
        if c.distinct && c.separator.is_none() {
            v.push(Problem::at(name.loc, "`distinct` needs a `separator`"));
        }
        if c.vocabulary.is_some() && c.ty != Type::String {
            v.push(Problem::at(
                name.loc,
                "a column with a `vocabulary` has type string",
            ));
        }
        if c.aliases && c.vocabulary.is_none() {
            v.push(Problem::at(name.loc, "`aliases` needs a `vocabulary`"));
        }
        if c.format.is_some() && c.ty != Type::Date {
            v.push(Problem::at(
                name.loc,
                "`format` is for `type: date` columns",
            ));
        }
    }
    let known = |c: &str| p.column(c).is_some();
    let unknown = |loc, c: &str| {
        let list: Vec<&str> = p.columns.0.iter().map(|(k, _)| k.value.as_str()).collect();
        Problem::at(
            loc,
            format!("no column {c:?} (columns: {})", list.join(", ")),
        )
    };
    let conds = p
        .keep
        .iter()
        .chain(&p.drop)
        .map(|c| (c, false))
        .chain(p.rules.iter().flat_map(|r| {
            r.when
                .iter()
                .map(|c| (c, false))
                .chain([(&r.require, true)])
        }));
    for (c, placeholders) in conds {
        if !known(&c.column) {
            v.push(unknown(c.column.loc, &c.column));
        }
        let tests = [
            c.equals.is_some(),
            c.one_of.is_some(),
            c.matches.is_some(),
            c.empty.is_some(),
        ];
        if tests.iter().filter(|t| **t).count() != 1 {
            v.push(Problem::at(
                c.column.loc,
                "a condition has exactly one of `equals`, `in`, `matches`, `empty`",
            ));
        }
        if let Some(m) = &c.matches {
            match rows::Pattern::parse(m) {
                Err(e) => v.push(Problem::at(m.loc, e)),
                Ok(pat) => {
                    if !placeholders && !pat.refs.is_empty() {
                        v.push(Problem::at(
                            m.loc,
                            "`{column.attribute}` placeholders are only allowed in a rule's `require`",
                        ));
                    }
                    for (col, _) in &pat.refs {
                        match p.column(col) {
                            None => v.push(unknown(m.loc, col)),
                            Some(cc) if cc.vocabulary.is_none() || cc.separator.is_some() => {
                                v.push(Problem::at(
                                    m.loc,
                                    format!("placeholder column {col:?} needs a vocabulary and one value per cell"),
                                ))
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
    for r in &p.rules {
        if let Some(t) = &r.expected {
            for (col, _) in rows::Pattern::split(t).refs {
                if !known(&col) {
                    v.push(unknown(r.loc, &col));
                }
            }
        }
    }
    for key in p.unique.iter().chain(&p.parallel) {
        for c in key.iter() {
            if !known(c) {
                v.push(unknown(key.loc, c));
            }
        }
    }
    for g in &p.parallel {
        if g.iter()
            .any(|c| p.column(c).is_some_and(|c| c.separator.is_none()))
        {
            v.push(Problem::at(g.loc, "`parallel` columns need a `separator`"));
        }
    }
    // Outputs: each declared output is one table.
    let mut paths: Vec<&OutputPath> = Vec::new();
    if let Some(w) = &p.tables.wide {
        paths.push(&w.path);
        if w.id
            .as_deref()
            .is_some_and(|id| known(id) || id == "source_row")
        {
            v.push(Problem::at(
                w.path.loc(),
                "the `id` name is already a column's",
            ));
        }
    }
    for l in &p.tables.long {
        paths.push(&l.path);
        for c in l.columns.iter() {
            match p.column(c) {
                None => v.push(unknown(l.columns.loc, c)),
                Some(cc) if cc.separator.is_none() => v.push(Problem::at(
                    l.columns.loc,
                    format!(
                        "column {c:?} has no `separator`: a long table is for multi-valued columns"
                    ),
                )),
                Some(_) => {}
            }
        }
        if l.columns.is_empty() {
            v.push(Problem::at(l.columns.loc, "`columns` is empty"));
        }
        if l.columns.len() > 1
            && !p
                .parallel
                .iter()
                .any(|g| l.columns.iter().all(|c| g.contains(c)))
        {
            v.push(Problem::at(
                l.columns.loc,
                "columns of one long table must be declared together in `parallel`",
            ));
        }
    }
    paths.extend(p.tables.dimensions.iter().map(|d| &d.path));
    let mut seen = HashSet::new();
    for path in &paths {
        if !seen.insert(path.as_str()) {
            v.push(Problem::at(
                path.loc(),
                format!("{path:?} is written by two tables"),
            ));
        }
    }
    for o in &stage.outputs {
        if !seen.contains(o.path.as_str()) {
            v.push(Problem::new(
                Some(o.loc),
                format!("output {:?} is not one of `tables`", o.path),
            ));
        }
    }
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};

    use super::super::aggregate::testkit::{self, place, read};
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        testkit::root().join("tests/fixtures/validate").join(name)
    }

    /// The `validate` stage of the real `pipeline.yaml` with the fixture vocabularies.
    pub(crate) fn paper_schema() -> (Params, BTreeMap<String, Vocab>) {
        let p = testkit::pipeline();
        let stage = p.stage("validate").expect("validate stage");
        let params = ValidateKind::params_of(stage).expect("params").clone();
        let dir = tempfile::tempdir().expect("tempdir");
        place(&fixture("taxonomy.yaml"), dir.path(), "data/taxonomy.yaml");
        let vocabs = load_vocabularies(&params, dir.path()).expect("fixture vocabularies");
        (params, vocabs)
    }

    fn problems(csv: &Path, aliases: bool) -> Result<Checked, ValidateError> {
        let (mut params, vocabs) = paper_schema();
        for (_, c) in &mut params.columns.value.0 {
            c.aliases = aliases && c.vocabulary.is_some();
        }
        rows::check_file(csv, &params, &vocabs, None, None)
            .map_err(|e| *e.downcast::<ValidateError>().expect("a ValidateError"))
    }

    #[test]
    fn every_problem_is_reported_sorted_with_did_you_mean() {
        let e = problems(&fixture("bad.csv"), false).expect_err("invalid");
        let got: Vec<(u64, &str, &str, &str)> = e
            .problems
            .iter()
            .map(|p| (p.row, p.column.as_str(), p.value.as_str(), p.kind))
            .collect();
        let url = "URL";
        assert_eq!(
            got,
            [
                (2, "Component", "Operators@@Model Loader", "lengths differ"),
                (3, "Symptom(s)", "Crashh", "unknown value"),
                (
                    4,
                    url,
                    "https://github.com/vllm-project/vllm/issues/1",
                    "duplicate key"
                ),
                (
                    5,
                    url,
                    "https://github.com/vllm-project/vllm/issues/5",
                    "rule"
                ),
                (6, "Symptom(s)", "Crash", "rule"),
                (
                    7,
                    url,
                    "https://github.com/ggml-org/llama.cpp/pull/7",
                    "rule"
                ),
                (7, "Phase", "Model Conversion", "unknown value"),
                (8, "repo", "llama.cpp", "unknown value"),
                (8, "Component", "", "empty value"),
            ]
        );
        let text = e.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].ends_with("column \"Component\": 2 value(s), but 1 in \"Root Cause(s)\": \"Operators@@Model Loader\"; expected as many values as in each parallel column (Root Cause(s), Component)"),
            "{text}"
        );
        assert!(
            lines[0].ends_with("9 problem(s) (header = row 1); nothing was written:"),
            "{text}"
        );
        assert_eq!(
            lines[2].trim(),
            "row 3 (https://github.com/vllm-project/vllm/issues/2), column \"Symptom(s)\": unknown \
             value \"Crashh\"; expected one of {\"Crash\", \"Unexpected Output\", \"System Hang\"}; \
             did you mean \"Crash\"?"
        );
        assert_eq!(
            lines[4].trim(),
            "row 5 (https://github.com/vllm-project/vllm/issues/5), column \"URL\": rule 1 fails \
             for \"https://github.com/vllm-project/vllm/issues/5\"; expected \
             https://github.com/ggml-org/llama.cpp/issues/<N>; it fits engine \"vllm\" (the row \
             has \"Llama.cpp\")"
        );
        assert!(
            text.contains("row 6 (https://github.com/ggml-org/llama.cpp/issues/6), column \"Symptom(s)\": rule 2 (when token_subtype is not empty) fails for \"Crash\"; expected symptom is \"Unexpected Output\""),
            "{text}"
        );
        assert!(text.contains("row 8 (https://github.com/ggml-org/llama.cpp/issues/8), column \"repo\": unknown value \"llama.cpp\"; expected one of {\"Llama.cpp\", \"vllm\", \"DeepSpeed\"}; did you mean \"Llama.cpp\"?"), "{text}");
        assert!(
            text.contains("\n  \"URL\": 3 (duplicate key: 1, rule: 2)"),
            "{text}"
        );
    }

    #[test]
    fn aliases_are_opt_in() {
        let strict: Vec<(u64, String)> = problems(&fixture("aliases.csv"), false)
            .expect_err("strict")
            .problems
            .into_iter()
            .map(|p| (p.row, p.value))
            .collect();
        assert_eq!(
            strict,
            [
                (2, "character".into()),
                (3, "Hang".into()),
                (3, "Not-a-token-bug".into())
            ]
        );
        let ok = problems(&fixture("aliases.csv"), true).expect("aliases");
        let cells: Vec<&Vec<String>> = ok.rows.iter().map(|(_, v)| &v[3]).collect();
        assert_eq!(
            cells,
            [
                &vec!["Unexpected Output".to_string()],
                &vec!["Crash".into(), "System Hang".into()]
            ]
        );
        assert!(ok.rows[1].1[4].is_empty(), "Not-a-token-bug is no value");
    }

    const HEADER: &str = "URL,repo,Phase,Symptom(s),Unexpected Tokens,Component,Root Cause(s)\n";

    fn row(i: usize, symptom: &str) -> String {
        format!(
            "https://github.com/deepspeedai/deepspeed/issues/{i},DeepSpeed,Engine Setup,{symptom},,Operators,Misused API\n"
        )
    }

    /// A million bad rows printed a million lines: the report shows the first 20 of each
    /// column and kind, counts by column, and names the file listing every problem.
    #[test]
    fn many_bad_rows_give_a_bounded_report_and_a_full_problem_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let csv = dir.path().join("raw.csv");
        let mut text = String::from(HEADER);
        for i in 1..=5000 {
            text.push_str(&row(i, if i % 1000 == 0 { "" } else { "Crashh" }));
        }
        std::fs::write(&csv, text).expect("write");
        let log = dir.path().join(".artifact/logs/v.problems.csv");
        let (params, vocabs) = paper_schema();
        let e = rows::check_file(&csv, &params, &vocabs, None, Some(&log))
            .expect_err("invalid")
            .downcast::<ValidateError>()
            .expect("a ValidateError");
        assert_eq!(e.total, 5000);
        assert!(
            e.problems.len() <= 1000 + 2 * 20,
            "{} kept",
            e.problems.len()
        );
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        let count = |what: &str| {
            lines
                .iter()
                .filter(|l| l.starts_with("  row ") && l.contains(what))
                .count()
        };
        assert_eq!(count("unknown value \"Crashh\""), 20);
        assert_eq!(count("empty value"), 5);
        assert!(
            shown
                .contains("\n  ... and 4975 more (the first 20 of each column and kind are shown)"),
            "{shown}"
        );
        assert!(shown.contains("\nproblems by column:\n  \"Symptom(s)\": 5000 (empty value: 5, unknown value: 4995)"), "{shown}");
        assert!(
            shown.ends_with(&format!("every problem is listed in {}", log.display())),
            "{shown}"
        );
        assert!(lines.len() < 35, "{shown}");
        let listed = read(&log);
        assert_eq!(listed.lines().count(), 5001);
        assert!(listed.starts_with("row,column,key,problem,value,expected,hint\n2,Symptom(s),https://github.com/deepspeedai/deepspeed/issues/1,unknown value,Crashh,"), "{}", &listed[..300]);
        // A clean run removes the stale list.
        std::fs::write(&csv, format!("{HEADER}{}", row(1, "Crash"))).expect("write");
        rows::check_file(&csv, &params, &vocabs, None, Some(&log)).expect("valid");
        assert!(!log.exists());
    }

    /// An unclosed quote made the rest of the file one cell: one line says where it opens.
    #[test]
    fn an_unclosed_quote_is_reported_where_it_opens_not_dumped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let csv = dir.path().join("raw.csv");
        let mut text = format!("{HEADER}{}", row(1, "Crash"));
        text.push_str("https://github.com/deepspeedai/deepspeed/issues/2,DeepSpeed,Engine Setup,\"Crash,,Operators,Misused API\n");
        for i in 3..2800 {
            text.push_str(&row(i, "Crash"));
        }
        std::fs::write(&csv, text).expect("write");
        let (params, vocabs) = paper_schema();
        let e = rows::check_file(&csv, &params, &vocabs, None, None)
            .expect_err("invalid")
            .to_string();
        assert!(
            e.len() < 400,
            "{} bytes: {}",
            e.len(),
            &e[..e.len().min(2000)]
        );
        assert!(
            e.contains("row 3 (line 3): a quoted cell opens here and is never closed"),
            "{e}"
        );
        assert_eq!(
            rows::clip(&"x".repeat(100)),
            format!("{}... (100 characters)", "x".repeat(80))
        );
    }

    #[test]
    fn the_real_vocabularies_load() {
        let (params, _) = paper_schema();
        let v = load_vocabularies(&params, &testkit::root()).expect("data/taxonomy.yaml");
        assert_eq!(v["root_cause"].leaves().count(), 28);
        assert_eq!(v["root_cause"].nodes.len(), 33);
        assert_eq!(v["engine"].leaves().count(), 5);
        assert_eq!(v["symptom"].leaves().count(), 6);
        assert_eq!(v["component"].leaves().count(), 14);
        assert_eq!(v["token_subtype"].aliases.len(), 2);
    }

    const STAGE: &str = r#"version: 1
stages:
  v:
    kind: validate
    inputs: [raw.csv, taxonomy.yaml]
    outputs: [out/wide.csv, out/sym.csv]
    with:
      input: raw.csv
      vocabularies: [taxonomy.yaml]
      columns:
        url: {from: URL}
        symptom: {from: Symptom(s), vocabulary: symptom, separator: "@@"}
      tables:
        wide: {path: out/wide.csv}
        long: [{path: out/sym.csv, columns: [symptom]}]
"#;

    #[test]
    fn check_reports_bad_params_all_at_once() {
        let text = STAGE
            .replace("inputs: [raw.csv, taxonomy.yaml]", "inputs: [raw.csv]")
            .replace("outputs: [out/wide.csv, out/sym.csv]", "outputs: [out/wide.csv, out/sym.csv, out/x.csv]")
            .replace("separator: \"@@\"}", "separator: \"\", distinct: true}\n        other: {from: URL, type: date, vocabulary: symptom}")
            .replace("      tables:", "      unique: [[nope]]\n      rules:\n        - {require: {column: url, matches: \"(\", equals: x}}\n      tables:")
            .replace("columns: [symptom]", "columns: [url]");
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = testkit::registry_for(&text);
        let e = engine::spec::parse(&text, "pipeline.yaml", dir.path(), &reg)
            .expect_err("invalid")
            .to_string();
        for want in [
            "\"taxonomy.yaml\" is not one of the stage's inputs (raw.csv)",
            "`separator` is empty",
            "raw column \"URL\" is read twice",
            "a column with a `vocabulary` has type string",
            "no column \"nope\" (columns: url, symptom, other)",
            "a condition has exactly one of `equals`, `in`, `matches`, `empty`",
            "`matches` is not a valid regular expression",
            "column \"url\" has no `separator`: a long table is for multi-valued columns",
            "output \"out/x.csv\" is not one of `tables`",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }
}
