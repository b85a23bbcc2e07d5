//! The stage examples of `docs/kinds.md` are valid pipelines: the docs cannot drift from what
//! the kinds accept.

use std::path::Path;

use crate::util::Project;

/// The files (words with a dot) an example's `inputs:` lines name, as a list or a mapping.
fn inputs(example: &str) -> Vec<&str> {
    let lines = example.lines().filter_map(|l| l.split_once("inputs:"));
    let words = lines.flat_map(|(_, list)| list.split(['[', ']', '{', '}', ',', ' ', ':']));
    words.filter(|w| w.contains('.')).collect()
}

/// Each ```yaml block of `docs/kinds.md` that is a stage (`name:` then `  kind: ...`) or a
/// whole `stages:` mapping passes `artifact plan` in a project holding its inputs, and every
/// kind that has a section there has such an example.
#[test]
fn every_stage_example_in_the_kinds_docs_is_a_valid_pipeline() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kinds.md");
    let docs = std::fs::read_to_string(docs).expect("docs/kinds.md");
    let blocks = docs.split("```yaml\n").skip(1);
    let mut seen = Vec::new();
    for example in blocks.filter_map(|b| b.split("```").next()) {
        let kind = example.lines().nth(1).map(str::trim);
        let pipeline = match kind.and_then(|l| l.strip_prefix("kind: ")) {
            Some(kind) => {
                seen.push(kind);
                let indented: String = example.lines().map(|l| format!("  {l}\n")).collect();
                format!("version: 1\nstages:\n{indented}")
            }
            None if example.starts_with("stages:") => format!("version: 1\n{example}"),
            None => continue,
        };
        let p = Project::new(&pipeline);
        for input in inputs(example) {
            p.write(input, "");
        }
        let run = p.run(&["plan"]);
        assert_eq!(run.code, 0, "{pipeline}\n{}", run.stderr);
    }
    // Every kind the binary offers has a section; all but `validate` (whose example sits in
    // two columns beside its vocabulary file; `tests/it/validate.rs` runs such a stage) have a
    // stage example.
    let listed = Project::new("").run(&["kinds"]);
    let kinds: Vec<&str> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        listed.code == 0 && kinds.len() >= 7,
        "artifact kinds: {kinds:?}"
    );
    for kind in kinds {
        let section = format!("\n## {kind}\n");
        assert!(
            docs.contains(&section),
            "docs/kinds.md has no section `{kind}`"
        );
        let example = seen.contains(&kind) || kind == "validate";
        assert!(example, "docs/kinds.md has no `{kind}` stage example");
    }
}
