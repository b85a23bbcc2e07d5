//! Stage matrices, params and named inputs through the binary: expanded names in `plan`,
//! `status`, `dag`, `why` and `run NAME`, the no-op fast path noticing a params edit, and an
//! aggregate reading its named inputs as tables.

use crate::util::Project;

const PIPE: &str = r#"version: 1
params: params.yaml
stages:
  count:
    matrix:
      engine: [vllm, llama.cpp]
    kind: command
    inputs: {rows: "data/${matrix.engine}.csv"}
    outputs: ["out/${matrix.engine}.txt"]
    with: {run: "mkdir -p out && wc -l < data/${matrix.engine}.csv > out/${matrix.engine}.txt && echo ${params.tag} >> out/${matrix.engine}.txt"}
  other:
    kind: command
    outputs: [out/other.txt]
    with: {run: "mkdir -p out && echo ${params.unrelated.x} > out/other.txt"}
"#;

fn project() -> Project {
    let p = Project::new(PIPE);
    p.write("data/vllm.csv", "a\n1\n2\n")
        .write("data/llama.cpp.csv", "a\n1\n")
        .write("params.yaml", "tag: v1\nunrelated: {x: 1}\nspare: 0\n");
    p
}

#[test]
fn expanded_names_are_shown_and_selectable() {
    let p = project();
    let r = p.run(&["plan"]);
    r.code(0);
    assert!(
        r.stdout.contains("count@engine=llama.cpp") && r.stdout.contains("count@engine=vllm"),
        "{}",
        r.stdout
    );
    // `run count` runs every copy, not `other`.
    let r = p.run(&["run", "count"]);
    r.code(0);
    let mut stages = r.stages();
    stages.sort();
    assert_eq!(
        stages,
        ["ran count@engine=llama.cpp", "ran count@engine=vllm"]
    );
    assert_eq!(p.read("out/vllm.txt"), "3\nv1\n");
    let r = p.run(&["run", "count@engine=vllm"]);
    r.code(0);
    assert_eq!(r.stages(), ["cached count@engine=vllm"]);
    let r = p.run(&["status"]);
    r.code(0);
    r.says("count@engine=vllm");
    let r = p.run(&["dag"]);
    r.code(0);
    r.says("count@engine=vllm");
    let r = p.run(&["why", "count@engine=vllm"]);
    r.code(0);
    r.says("count@engine=vllm");
    let r = p.run(&["why", "count"]);
    r.code(4);
    assert!(
        r.stderr.contains("\"count\" is a matrix stage of 2 copies; name one: count@engine=llama.cpp, count@engine=vllm"),
        "{}",
        r.stderr
    );
    let r = p.run(&["run", "cnt"]);
    r.code(4);
}

/// `run --json`: (answered by the snapshot?, stages that ran, sorted).
fn run_json(p: &Project) -> (bool, Vec<String>) {
    let (snapshot, st) = p.run(&["--json", "run", "-j", "1"]).json_finished();
    let ran = st
        .into_iter()
        .filter(|(_, status)| status == "ran")
        .map(|(stage, _)| stage)
        .collect();
    (snapshot, ran)
}

#[test]
fn the_noop_fast_path_notices_a_params_edit_and_only_referencing_stages_rerun() {
    let p = project();
    run_json(&p);
    let (snap, ran) = run_json(&p);
    assert!(snap);
    assert!(ran.is_empty());
    // An unrelated key (same size, so only the content differs): the snapshot misses, nothing
    // reruns, and the next run is answered by the snapshot again.
    p.write("params.yaml", "tag: v1\nunrelated: {x: 1}\nspare: 9\n");
    let (snap, ran) = run_json(&p);
    assert!(!snap, "a params edit must take the full path");
    assert!(ran.is_empty(), "{ran:?}");
    assert!(run_json(&p).0);
    // A referenced key: exactly its stages.
    p.write("params.yaml", "tag: v2\nunrelated: {x: 1}\nspare: 9\n");
    let (snap, ran) = run_json(&p);
    assert!(!snap);
    assert_eq!(ran, ["count@engine=llama.cpp", "count@engine=vllm"]);
    assert_eq!(p.read("out/vllm.txt"), "3\nv2\n");
    p.write("params.yaml", "tag: v2\nunrelated: {x: 2}\nspare: 9\n");
    assert_eq!(run_json(&p).1, ["other"]);
    // A broken params file is an invalid pipeline, located in it.
    p.write("params.yaml", "tag: [v2\n");
    let r = p.run(&["run"]);
    r.code(3);
    assert!(r.stderr.contains("params.yaml:1:"), "{}", r.stderr);
}

#[test]
fn an_aggregate_reads_named_inputs_as_tables() {
    let p = Project::new(
        r#"version: 1
stages:
  agg:
    kind: aggregate
    inputs: {people: data/p.csv, towns: data/t.csv}
    outputs: [out/n.csv]
    with:
      query: SELECT t.town AS town, COUNT(*) AS n FROM people p JOIN towns t ON t.id = p.town_id GROUP BY t.town ORDER BY town
  fig:
    kind: plot
    inputs: {counts: out/n.csv}
    outputs: [out/n.svg]
    with: {data: counts, chart: grouped, x: town, value: n}
"#,
    );
    p.write("data/p.csv", "name,town_id\na,1\nb,1\nc,2\n")
        .write("data/t.csv", "id,town\n1,Ay\n2,Bee\n");
    p.run(&["run"]).code(0);
    assert_eq!(p.read("out/n.csv"), "town,n\nAy,2\nBee,1\n");
    assert!(p.read("out/n.svg").starts_with("<svg"));
    // Without names, `tables` is required, and said so once.
    let p = Project::new(
        "version: 1\nstages:\n  agg:\n    kind: aggregate\n    inputs: [data/p.csv]\n    outputs: [out/n.csv]\n    with: {}\n",
    );
    p.write("data/p.csv", "a\n1\n");
    let r = p.run(&["plan"]);
    r.code(3);
    assert!(
        r.stderr.contains(r#"missing required key "query""#)
            && r.stderr
                .contains(r#"missing required key "tables": name the stage's inputs"#),
        "{}",
        r.stderr
    );
}
