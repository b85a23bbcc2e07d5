//! The pipeline examples of the docs are valid pipelines: the docs cannot drift from what the
//! engine and the kinds accept.

use std::path::Path;

use crate::util::Project;

/// The files (words with a dot) an example's `inputs:` lines name, as a list or a mapping.
fn inputs(example: &str) -> Vec<&str> {
    let lines = example.lines().filter_map(|l| l.split_once("inputs:"));
    let words = lines.flat_map(|(_, list)| list.split(['[', ']', '{', '}', ',', ' ', ':']));
    words.filter(|w| w.contains('.')).collect()
}

/// A ```yaml block of the docs as a whole pipeline: a stage (`name:` then `  kind: ...`), a
/// fragment of `stages:` (indented stages) or a pipeline (`version: 1` and `stages:`); `None` for anything
/// else, and for blocks with `${...}` references (their expansion has tests of its own,
/// `tests/it/matrix.rs`). Also the kind of a single-stage example.
fn as_pipeline(block: &str) -> Option<(String, Option<&str>)> {
    let indent = |b: &str| b.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let kind = block
        .lines()
        .nth(1)
        .and_then(|l| l.trim().strip_prefix("kind: "));
    let stage = !block.starts_with(' ') && kind.is_some();
    match () {
        _ if block.contains("${") => None,
        _ if stage => Some((format!("version: 1\nstages:\n{}", indent(block)), kind)),
        _ if block.starts_with("  ") && block.contains("\n    kind: ") => {
            Some((format!("version: 1\nstages:\n{block}"), None))
        }
        _ if block.starts_with("stages:") => Some((format!("version: 1\n{block}"), None)),
        _ if block.starts_with("version: 1\n") && block.contains("\nstages:") => {
            Some((block.to_string(), None))
        }
        _ => None,
    }
}

/// Each pipeline example of the docs (`README.md`, `docs/*.md`; see [`as_pipeline`]) passes
/// `artifact plan` in a project holding its inputs, and every kind the binary offers has a
/// section in `docs/kinds.md` with a stage example.
#[test]
fn every_pipeline_example_in_the_docs_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_dir(root.join("docs")).expect("docs/");
    let mut files: Vec<_> = docs.map(|e| e.expect("docs/ entry").path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "md"));
    files.push(root.join("README.md"));
    files.sort();
    let (mut seen, mut checked) = (Vec::new(), 0);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a doc");
        let blocks = text
            .split("```yaml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next());
        for (pipeline, kind) in blocks.filter_map(as_pipeline) {
            let p = Project::new(&pipeline);
            for input in inputs(&pipeline) {
                p.write(input, "");
            }
            let run = p.run(&["plan"]);
            let name = file.display();
            assert_eq!(run.code, 0, "{name}:\n{pipeline}\n{}", run.stderr);
            seen.extend(kind.map(str::to_string));
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} examples found in {files:?}");
    // Every kind the binary offers has a section; all but `validate` (whose example sits in
    // two columns beside its vocabulary file; `tests/it/validate.rs` runs such a stage) have a
    // stage example.
    let kinds_md = std::fs::read_to_string(root.join("docs/kinds.md")).expect("docs/kinds.md");
    let listed = Project::new("").run(&["kinds"]);
    let kinds: Vec<&str> = (listed.stdout.lines())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        listed.code == 0 && kinds.len() >= 7,
        "artifact kinds: {kinds:?}"
    );
    for kind in kinds {
        let section = format!("\n## {kind}\n");
        assert!(
            kinds_md.contains(&section),
            "docs/kinds.md has no section `{kind}`"
        );
        let example = seen.iter().any(|k| k == kind) || kind == "validate";
        assert!(example, "the docs have no `{kind}` stage example");
    }
}
