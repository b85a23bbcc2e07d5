//! Stage matrices, `${...}` substitution, the params file, named inputs and missing keys: what
//! they expand to, what reruns when they change, and every error, located.

use serde::Deserialize;

use super::*;
use crate::kind::{InputPath, Kind};
use crate::spec::expand::MAX_EXPANDED;

/// A kind with required keys of several types and an input path, for the tests below.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadParams {
    data: InputPath,
    label: String,
    width: u32,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

struct Read;

impl Kind for Read {
    type Params = ReadParams;
    fn name(&self) -> &'static str {
        "read"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, p: &ReadParams, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let s = std::fs::read_to_string(ctx.input(&p.data))?;
        for o in &ctx.stage.outputs {
            std::fs::write(ctx.output(&o.path)?, format!("{}:{}:{s}", p.label, p.width))?;
        }
        Ok(())
    }
}

fn registry() -> Registry {
    Registry::new()
        .with(Fake::default())
        .with(Read)
        .with(CommandKind)
}

/// A project whose registry has the `read` kind too.
fn proj(yaml: &str, files: &[(&str, &str)]) -> Proj {
    let mut p = Proj::new(yaml, files);
    p.registry = registry();
    p
}

fn load(p: &Proj) -> Result<Pipeline, Vec<String>> {
    crate::spec::load(&p.root().join("pipeline.yaml"), &registry())
        .map_err(|d| d.0.iter().map(ToString::to_string).collect())
}

fn errors(yaml: &str, files: &[(&str, &str)]) -> Vec<String> {
    load(&Proj::new(yaml, files)).err().unwrap_or_default()
}

fn names(p: &Pipeline) -> Vec<&str> {
    p.stages.iter().map(|s| s.name.as_str()).collect()
}

const CROSS: &str = r#"version: 1
stages:
  fig:
    matrix:
      engine: [vllm, llama.cpp]
      format: [svg, png]
    kind: fake
    description: ${matrix.engine} as ${matrix.format}
    inputs: ["data/${matrix.engine}.csv"]
    outputs: ["out/${matrix.engine}.${matrix.format}"]
    with: { text: "${matrix.format}" }
"#;

#[test]
fn a_cross_product_expands_to_one_stage_per_combination() {
    let p = Proj::new(
        CROSS,
        &[("data/vllm.csv", "v\n"), ("data/llama.cpp.csv", "l\n")],
    );
    let pl = load(&p).unwrap();
    assert_eq!(
        names(&pl),
        [
            "fig@engine=llama.cpp,format=png",
            "fig@engine=llama.cpp,format=svg",
            "fig@engine=vllm,format=png",
            "fig@engine=vllm,format=svg",
        ]
    );
    let s = pl.stage("fig@engine=vllm,format=png").unwrap();
    assert_eq!(s.description.as_deref(), Some("vllm as png"));
    assert_eq!(s.inputs[0].path, "data/vllm.csv");
    assert_eq!(s.outputs[0].path, "out/vllm.png");
    assert_eq!(s.with.to_json(), serde_json::json!({"text": "png"}));
    // The copies are located at the stage as written.
    assert_eq!(s.loc, crate::diag::Loc::new(3, 3));
    // `fig` selects every copy; an exact name selects one.
    assert_eq!(pl.select("fig").len(), 4);
    assert_eq!(pl.select("fig@engine=vllm,format=png").len(), 1);
    assert!(pl.select("fi").is_empty());
    let mut log = p.run();
    log.dedup();
    assert_eq!(log.len(), 4);
    assert_eq!(p.read("out/llama.cpp.svg"), "l\nsvg");
}

#[test]
fn whole_values_keep_their_type_and_mappings_give_names() {
    let yaml = r#"version: 1
stages:
  r:
    matrix:
      spec:
        - {name: small, width: 10, label: "a: b", data: data/a.csv}
        - {name: big, width: 2000, label: "}{ $${x}", data: data/a.csv}
    kind: read
    inputs: ["${matrix.spec.data}"]
    outputs: ["out/${matrix.spec.name}.txt"]
    with: {data: "${matrix.spec.data}", label: "${matrix.spec.label}", width: "${matrix.spec.width}"}
"#;
    let p = proj(yaml, &[("data/a.csv", "A")]);
    let pl = load(&p).unwrap();
    assert_eq!(names(&pl), ["r@spec=big", "r@spec=small"]);
    // The integer stays an integer; text from a value is never read as YAML or substituted
    // again.
    assert_eq!(
        pl.stage("r@spec=big").unwrap().with.to_json(),
        serde_json::json!({"data": "data/a.csv", "label": "}{ ${x}", "width": 2000})
    );
    p.run();
    assert_eq!(p.read("out/small.txt"), "a: b:10:A");
}

#[test]
fn a_reference_in_the_stage_key_names_the_copies() {
    let yaml = r#"version: 1
stages:
  fig_${matrix.e}:
    matrix: {e: [a, b]}
    kind: fake
    outputs: ["out/${matrix.e}.txt"]
"#;
    let pl = load(&Proj::new(yaml, &[])).unwrap();
    assert_eq!(names(&pl), ["fig_a", "fig_b"]);
}

#[test]
fn expansion_errors_are_located() {
    let yaml = r#"version: 1
stages:
  a:
    matrix: {e: [x, y]}
    kind: fake
    outputs: ["out/${matrix.f}.txt"]
    with: {text: "${item}"}
  b:
    matrix: {}
    kind: fake
    outputs: [b]
  c:
    matrix: {e: []}
    kind: fake
    outputs: [c]
  d:
    matrix: {e: [x, x, "has space", {label: 1}, [1]]}
    kind: fake
    outputs: ["out/d-${matrix.e}"]
  e:
    kind: fake
    outputs: ["out/${matrix.e}"]
    with: {text: "${matrix.e"}
  f:
    matrix: {e: [x, y]}
    kind: fake
    outputs: [out/same.txt]
  g_${matrix.e}:
    matrix: {e: ["1", "2"]}
    kind: fake
    outputs: ["out/g${matrix.e}"]
  g_1:
    kind: fake
    outputs: [out/g_1]
  h:
    matrix: {e: [a/b]}
    kind: fake
    outputs: [h]
"#;
    assert_eq!(
        errors(yaml, &[]),
        [
            "pipeline.yaml:6:15: error: unknown matrix axis `f` in `${matrix.f}` (this stage's axes: e)",
            "pipeline.yaml:7:18: error: unknown variable `item` in `${item}` (expected `${matrix.<axis>}` or `${params.<key>}`; write `$${` for a literal `${`, e.g. a shell variable)",
            "pipeline.yaml:9:13: error: `matrix` of stage \"b\" is empty: give at least one axis with values",
            "pipeline.yaml:13:17: error: matrix axis `e` of stage \"c\" is empty: it would expand to no stage",
            "pipeline.yaml:17:21: error: matrix value \"x\" appears twice in axis `e` of stage \"d\" (it would make two stages named `d@e=x`)",
            "pipeline.yaml:17:24: error: matrix value \"has space\" (axis `e` of stage \"d\") cannot be part of a stage name: use letters, digits, `_`, `-` or `.` (for other text, give mappings with a plain `name`)",
            "pipeline.yaml:17:37: error: a mapping in matrix axis `e` needs a `name` key (it names the expanded stage, `d@e=<name>`)",
            "pipeline.yaml:17:49: error: matrix axis `e` of stage \"d\": [...] cannot name a stage (use a string, a number or a mapping with a `name`)",
            "pipeline.yaml:22:15: error: `${matrix.e}` is used in a stage without `matrix:` (add `matrix: {<axis>: [values]}` to the stage)",
            "pipeline.yaml:23:18: error: unterminated `${` in \"${matrix.e\": close the reference with `}`, or write `$${` for a literal `${`",
            "pipeline.yaml:27:15: error: output \"out/same.txt\" of stage \"f@e=y\" is already claimed by stage \"f@e=x\" (line 27)",
            "pipeline.yaml:32:3: error: duplicate stage name \"g_1\" (first defined at line 28)",
            "pipeline.yaml:36:18: error: matrix value \"a/b\" (axis `e` of stage \"h\") cannot be part of a stage name: use letters, digits, `_`, `-` or `.` (for other text, give mappings with a plain `name`)",
        ]
    );
}

#[test]
fn user_stage_names_cannot_hold_the_copy_separators() {
    let yaml = "version: 1\nstages:\n  a@b=c:\n    kind: fake\n    outputs: [a]\n  x=y:\n    kind: fake\n    outputs: [b]\n";
    assert_eq!(
        errors(yaml, &[]),
        [
            r#"pipeline.yaml:3:3: error: invalid stage name "a@b=c" (expected letters, digits, `_`, `-` or `.`)"#,
            r#"pipeline.yaml:6:3: error: invalid stage name "x=y" (expected letters, digits, `_`, `-` or `.`)"#,
        ]
    );
}

#[test]
fn a_mistake_in_a_matrix_stage_is_reported_once_not_per_copy() {
    let yaml = "version: 1\nstages:\n  a:\n    matrix: {e: [x, y, z]}\n    kind: fake\n    outputs: [\"out/${matrix.e}\"]\n    with: {txt: 1}\n";
    assert_eq!(
        errors(yaml, &[]),
        [
            r#"pipeline.yaml:7:12: error: in `with` of stage "a@e=x" (kind fake): unknown key "txt" (expected one of: text, first_line, fail, sleep_ms, interrupt)"#
        ]
    );
}

#[test]
fn huge_matrices_are_capped_before_they_expand() {
    let axis: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let list = format!("[{}]", axis.join(", "));
    let yaml = format!(
        "version: 1\nstages:\n  a:\n    matrix: {{x: {list}, y: {list}, z: {list}, w: {list}, v: {list}, u: {list}, t: {list}, s: {list}, r: {list}, q: {list}}}\n    kind: fake\n    outputs: [\"out/${{matrix.x}}\"]\n"
    );
    let e = errors(&yaml, &[]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("pipeline.yaml:4:13: error: in stage \"a\": the matrix expands to too many stages (101 x x 101 y"),
        "{}",
        e[0]
    );
    assert!(
        e[0].contains(&format!("at most {MAX_EXPANDED} stages in all")),
        "{}",
        e[0]
    );
    // Up to the cap, counting the other stages, and one over it.
    let short: Vec<String> = (0..99).map(|i| i.to_string()).collect();
    let yaml = format!(
        "version: 1\nstages:\n  one:\n    kind: fake\n    outputs: [one]\n  a:\n    matrix: {{x: [{s}], y: {list}}}\n    kind: fake\n    outputs: [\"out/${{matrix.x}}-${{matrix.y}}\"]\n",
        s = short.join(", ")
    );
    assert!(errors(&yaml, &[]).is_empty());
    let big: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let yaml = format!(
        "version: 1\nstages:\n  one:\n    kind: fake\n    outputs: [one]\n  a:\n    matrix: {{x: [{b}], y: [{b}]}}\n    kind: fake\n    outputs: [\"out/${{matrix.x}}-${{matrix.y}}\"]\n",
        b = big.join(", ")
    );
    let e = errors(&yaml, &[]);
    assert!(
        e[0].contains("the matrix expands to 10000 stages (100 x x 100 y), more than the 9999"),
        "{e:?}"
    );
}

#[test]
fn a_literal_dollar_brace_is_written_doubled() {
    let yaml = "version: 1\nstages:\n  a:\n    kind: command\n    outputs: [out.txt]\n    with: {run: 'X=hi; echo \"$${X}\" > out.txt'}\n";
    let p = Proj::new(yaml, &[]);
    let pl = load(&p).unwrap();
    assert_eq!(
        pl.stages[0].with.to_json(),
        serde_json::json!({"run": "X=hi; echo \"${X}\" > out.txt"})
    );
    p.run();
    assert_eq!(p.read("out.txt"), "hi\n");
}

const PARAMS_PIPE: &str = r#"version: 1
params: params.yaml
stages:
  wide:
    kind: read
    inputs: [data/a.csv]
    outputs: [out/wide.txt]
    with: {data: data/a.csv, label: "w ${params.plot.label}", width: "${params.plot.width}"}
  tall:
    kind: read
    inputs: [data/a.csv]
    outputs: [out/tall.txt]
    with: {data: data/a.csv, label: tall, width: "${params.table.rows}"}
  plain:
    kind: fake
    outputs: [out/plain.txt]
"#;

#[test]
fn a_stage_reruns_only_for_the_params_it_references() {
    let p = proj(
        PARAMS_PIPE,
        &[
            ("data/a.csv", "A"),
            (
                "params.yaml",
                "plot: {width: 600, label: x}\ntable: {rows: 3}\nunused: 1\n",
            ),
        ],
    );
    p.run();
    assert_eq!(p.read("out/wide.txt"), "w x:600:A");
    let ran = |p: &Proj| {
        let (_, res) = p.run_with(&Options::default(), &[]);
        let mut v: Vec<String> = res
            .iter()
            .filter(|r| matches!(r.status, Status::Ran))
            .map(|r| r.stage.clone())
            .collect();
        v.sort();
        v
    };
    // An unrelated key: nothing reruns.
    p.write(
        "params.yaml",
        "plot: {width: 600, label: x}\ntable: {rows: 3}\nunused: 2\nnew: {x: 1}\n",
    );
    assert_eq!(ran(&p), Vec::<String>::new());
    // A referenced key: exactly the stages that reference it.
    p.write(
        "params.yaml",
        "plot: {width: 700, label: x}\ntable: {rows: 3}\nunused: 2\n",
    );
    assert_eq!(ran(&p), ["wide"]);
    assert_eq!(p.read("out/wide.txt"), "w x:700:A");
    p.write(
        "params.yaml",
        "plot: {width: 700, label: x}\ntable: {rows: 4}\nunused: 2\n",
    );
    assert_eq!(ran(&p), ["tall"]);
    assert_eq!(
        p.pipeline().params.as_ref().map(|f| f.path.as_str()),
        Some("params.yaml")
    );
}

#[test]
fn params_errors_are_located() {
    let files = |params: &'static str| vec![("data/a.csv", "A"), ("params.yaml", params)];
    // Unknown key, a bad type (reported where it is used, saying where the value comes
    // from), a mapping inside a longer string.
    assert_eq!(
        errors(
            PARAMS_PIPE,
            &files("plot: {width: wide, label: {a: 1}}\ntable: {cols: 3}\n")
        ),
        [
            "pipeline.yaml:8:37: error: `${params.plot.label}` is a mapping, which cannot be part of a longer string; only a value that is exactly `${params.plot.label}` can take it whole",
            "pipeline.yaml:13:50: error: unknown key `rows` in `${params.table.rows}`: `params.table` in params.yaml has the keys cols",
        ]
    );
    assert_eq!(
        errors(
            PARAMS_PIPE,
            &files("plot: {width: wide, label: a}\ntable: {rows: 3}\n")
        ),
        [
            "pipeline.yaml:8:70: error: in `with` of stage \"wide\" (kind read): invalid type: string \"wide\", expected a whole number from 0 to 4294967295 (`${params.plot.width}` is \"wide\" (params.yaml:1:15))",
        ]
    );
    // The file's own problems name the file.
    assert_eq!(
        errors(PARAMS_PIPE, &files("plot: [1\n")),
        ["params.yaml:1:7: error: malformed YAML: error: line 1 column 7: unclosed bracket '['"]
    );
    assert_eq!(
        errors(PARAMS_PIPE, &files("- 1\n")),
        [
            "params.yaml:1:1: error: a params file must be a mapping of names to values, found a list"
        ]
    );
    let e = errors(PARAMS_PIPE, &[("data/a.csv", "A")]);
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("pipeline.yaml:2:9: error: cannot read the params file \"params.yaml\""),
        "{e:?}"
    );
    // A reference to params with no params file; the params file as an output.
    let yaml = "version: 1\nparams: p.yaml\nstages:\n  a:\n    kind: fake\n    outputs: [p.yaml]\n    with: {text: \"${params.a}\"}\n  b:\n    kind: fake\n    outputs: [b]\n";
    assert_eq!(
        errors(yaml, &[("p.yaml", "a: 1\n")]),
        [
            r#"pipeline.yaml:6:15: error: path "p.yaml" in `outputs` of stage "a" is the params file; it cannot be a stage's output"#,
            r#"pipeline.yaml:7:18: error: in `with` of stage "a" (kind fake): invalid type: integer `1`, expected a string (`${params.a}` is 1 (p.yaml:1:4))"#,
        ]
    );
    let yaml = "version: 1\nstages:\n  a:\n    kind: fake\n    outputs: [a]\n    with: {text: \"${params.a}\"}\n";
    assert_eq!(
        errors(yaml, &[]),
        [
            "pipeline.yaml:6:18: error: `${params.a}` names a parameter, but the pipeline declares no params file (add `params: params.yaml` at the top)"
        ]
    );
}

#[test]
fn a_matrix_cannot_refer_to_itself_and_values_cannot_inject_yaml() {
    let yaml = "version: 1\nstages:\n  a:\n    matrix: {e: [x, \"${matrix.e}\"]}\n    kind: fake\n    outputs: [\"out/${matrix.e}\"]\n";
    assert_eq!(
        errors(yaml, &[]),
        [
            "pipeline.yaml:4:21: error: `${matrix.e}` in a `matrix:` value: a matrix cannot refer to itself (values may use `${params.<key>}`)"
        ]
    );
    // A value holding YAML (a newline, a key, a flow mapping) stays one string.
    let yaml = "version: 1\nstages:\n  a:\n    matrix:\n      e: [{name: x, text: \"t\\n    kind: command\\n    with: {run: rm -rf /}\"}]\n    kind: fake\n    outputs: [out/x]\n    with: {text: \"${matrix.e.text}\"}\n";
    let p = Proj::new(yaml, &[]);
    let pl = load(&p).unwrap();
    assert_eq!(pl.stages[0].kind, "fake");
    assert_eq!(
        pl.stages[0].with.to_json(),
        serde_json::json!({"text": "t\n    kind: command\n    with: {run: rm -rf /}"})
    );
}

#[test]
fn a_matrix_can_take_its_values_from_params() {
    let yaml = "version: 1\nparams: params.yaml\nstages:\n  a:\n    matrix: {e: \"${params.engines}\"}\n    kind: fake\n    outputs: [\"out/${matrix.e}\"]\n";
    let p = Proj::new(yaml, &[("params.yaml", "engines: [x, y]\n")]);
    assert_eq!(names(&load(&p).unwrap()), ["a@e=x", "a@e=y"]);
}

#[test]
fn named_inputs_are_used_by_name_and_renaming_one_reruns() {
    let yaml = |name: &str| {
        format!(
            "version: 1\nstages:\n  r:\n    kind: read\n    inputs: {{{name}: data/a.csv, other: data/b.csv}}\n    outputs: [out.txt]\n    with: {{data: {name}, label: l, width: 1}}\n"
        )
    };
    let p = proj(&yaml("table"), &[("data/a.csv", "A"), ("data/b.csv", "B")]);
    let pl = load(&p).unwrap();
    let s = &pl.stages[0];
    assert_eq!(s.inputs[0].name.as_deref(), Some("table"));
    assert_eq!(s.inputs[0].path, "data/a.csv");
    let params = Read::params_of(s).unwrap();
    assert_eq!(params.data.as_str(), "data/a.csv");
    p.run();
    assert_eq!(p.read("out.txt"), "l:1:A");
    // Renaming an input changes the key (kinds may read inputs by name).
    p.write("pipeline.yaml", &yaml("renamed"));
    let (_, res) = p.run_with(&Options::default(), &[]);
    assert!(matches!(status_of(&res, "r"), Status::Ran));
}

#[test]
fn named_input_errors_are_located() {
    let yaml = "version: 1\nstages:\n  r:\n    kind: fake\n    inputs: {1x: a, ok: [b], \"a b\": c}\n    outputs: {o: x}\n";
    assert_eq!(
        errors(yaml, &[("a", ""), ("c", "")]),
        [
            r#"pipeline.yaml:5:14: error: input name "1x" of stage "r" must be a name of letters, digits and `_`, not starting with a digit (kinds use it as a table or variable name)"#,
            r#"pipeline.yaml:5:25: error: a path in `inputs` must be a string, found [...]"#,
            r#"pipeline.yaml:5:30: error: input name "a b" of stage "r" must be a name of letters, digits and `_`, not starting with a digit (kinds use it as a table or variable name)"#,
            r#"pipeline.yaml:6:14: error: `outputs` of stage "r" must be a list of paths, found a mapping"#,
        ]
    );
    // Names made by substitution may collide.
    let yaml = "version: 1\nstages:\n  r:\n    matrix: {e: [a]}\n    kind: fake\n    inputs: {\"${matrix.e}\": a, a: b}\n    outputs: [x]\n";
    assert_eq!(
        errors(yaml, &[("a", ""), ("b", "")]),
        [r#"pipeline.yaml:6:32: error: input name "a" appears twice in stage "r@e=a""#]
    );
}

#[test]
fn every_missing_key_is_reported_at_once() {
    let yaml = "version: 1\nstages:\n  r:\n    kind: read\n    inputs: [a]\n    outputs: [x]\n    with: {note: n}\n  s:\n    description: nothing else\n";
    assert_eq!(
        errors(yaml, &[("a", "")]),
        [
            r#"pipeline.yaml:7:11: error: in `with` of stage "r" (kind read): missing required keys "data", "label" and "width""#,
            r#"pipeline.yaml:8:3: error: stage "s" is missing the required keys `kind` (one of: command, fake, read) and `outputs` (`outputs: [path, ...]`)"#,
        ]
    );
    // Alongside other problems of the same mapping.
    let yaml = "version: 1\nstages:\n  r:\n    kind: read\n    inputs: [a]\n    outputs: [x]\n    with: {width: -1, bad: 1}\n";
    assert_eq!(
        errors(yaml, &[("a", "")]),
        [
            r#"pipeline.yaml:7:11: error: in `with` of stage "r" (kind read): missing required keys "data" and "label""#,
            r#"pipeline.yaml:7:19: error: in `with` of stage "r" (kind read): invalid value: integer `-1`, expected a whole number from 0 to 4294967295"#,
            r#"pipeline.yaml:7:23: error: in `with` of stage "r" (kind read): unknown key "bad" (expected one of: data, label, width, note)"#,
        ]
    );
}
