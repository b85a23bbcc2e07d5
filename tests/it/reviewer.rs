//! Reviewer-facing features: claims (pass, mismatch, needs input, documented mismatch), the
//! report (snapshot), the README's claims map, the example study, and an edited copy of the real
//! dataset turning a claim into a MISMATCH with both values shown.

use crate::util::Project;

const CLAIMS: &str = r#"version: 1
claims:
  - id: rows_total
    what: "Rows"
    source: "Table 1"
    printed: "4"
    result: {file: results/t.csv, agg: count}
    rule: exact
  - id: a_share
    source: "§2"
    printed: "50%"
    result: {file: results/t.csv, where: {kind: a}, column: n, agg: sum, percent_of: {column: n, agg: sum}}
  - id: b_count
    source: "Figure 2"
    printed: "5"
    result: {file: results/t.csv, where: {kind: b}, column: n, agg: sum}
    rule: exact
  - id: typo_total
    source: "Figure 3 (v2)"
    printed: "11"
    result: {file: results/t.csv, column: n, agg: sum}
    rule: exact
    expect: mismatch
    reason: "the figure adds up to 10; its printed total is off by one"
  - id: kappa
    source: "§3"
    printed: "0.9"
    needs: "both annotators' labels"
"#;

fn claims_project() -> Project {
    let p = Project::new(
        "version: 1\nstages:\n  make:\n    kind: command\n    inputs: [data/t.csv]\n    outputs: [results/t.csv]\n    with: { run: 'mkdir -p results && cp data/t.csv results/t.csv' }\n  claims:\n    kind: claims\n    inputs: [data/claims.yaml, results/t.csv]\n    outputs: [results/claims.csv, paper-tables/values.tex]\n    with: { claims: data/claims.yaml }\n",
    );
    p.write("data/claims.yaml", CLAIMS)
        .write("data/t.csv", "kind,n\na,3\na,2\nb,4\nc,1\n");
    p
}

#[test]
fn claims_pass_mismatch_and_need_input() {
    let p = claims_project();
    let r = p.run(&["check"]);
    r.code(6);
    assert_eq!(
        r.stdout,
        "PASS                   rows_total                         4 = 4  [Table 1]\n\
         PASS                   a_share                            50% = 50%  [§2]\n\
         MISMATCH               b_count                            printed 5, computed 4  [Figure 2]\n\
         MISMATCH (documented)  typo_total                         printed 11, computed 10 (the figure adds up to 10; its printed total is off by one)  [Figure 3 (v2)]\n\
         NEEDS INPUT            kappa                              needs both annotators' labels  [§3]\n\
         claims: 2 pass, 2 mismatch (1 documented), 1 need input; 1 unexpected\n"
    );
    assert_eq!(
        p.read("paper-tables/values.tex")
            .lines()
            .skip(2)
            .collect::<Vec<_>>(),
        [
            "\\newcommand{\\RowsTotal}{4}",
            "\\newcommand{\\AShare}{50\\%}",
            "\\newcommand{\\BCount}{4}"
        ]
    );
    // Fix the data: the undocumented mismatch goes away and check passes.
    p.write("data/t.csv", "kind,n\na,3\na,2\nb,5\n");
    let r = p.run(&["check"]);
    assert!(
        r.stdout.contains(
            "MISMATCH               rows_total                         printed 4, computed 3"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn a_documented_mismatch_that_disappears_is_flagged() {
    let p = claims_project();
    p.write(
        "data/claims.yaml",
        &CLAIMS
            .replace("printed: \"11\"", "printed: \"10\"")
            .replace("printed: \"5\"", "printed: \"4\""),
    );
    let r = p.run(&["check"]);
    r.code(6);
    assert!(
        r.stdout
            .contains("PASS (documented mismatch no longer occurs!) typo_total"),
        "{}",
        r.stdout
    );
}

/// Replaces the volatile cells of a report (times, memory, compiler version) with placeholders.
fn normalise(report: &str) -> String {
    let mut out = String::new();
    for line in report.lines() {
        let mut l = line.to_string();
        if l.starts_with("| ") {
            l = l
                .split(" | ")
                .map(|c| {
                    let c0 = c.trim_end_matches(" |");
                    let tail = if c.ends_with(" |") { " |" } else { "" };
                    if c0
                        .strip_suffix(" s")
                        .is_some_and(|n| n.parse::<f64>().is_ok())
                    {
                        format!("T s{tail}")
                    } else if c0
                        .strip_suffix(" MiB")
                        .is_some_and(|n| n.parse::<f64>().is_ok())
                    {
                        format!("M MiB{tail}")
                    } else {
                        c.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" | ");
        }
        if l.starts_with("| rustc |") {
            l = "| rustc | RUSTC |".into();
        }
        if let Some(i) = l.find("in the last run that did work (") {
            let j = l[i..].find(')').map_or(l.len(), |j| i + j + 1);
            l = format!("{}in the last run that did work (T){}", &l[..i], &l[j..]);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

#[test]
fn report_snapshot() {
    let p = claims_project();
    p.run(&["run", "-j", "1"]).code(0);
    p.run(&["check"]).code(6);
    p.run(&["report"]).code(0);
    let md = normalise(&p.read("REPORT.md"));
    let html = p.read("report.html");
    assert!(html.starts_with("<!doctype html>") && html.contains("<h2 id=\"claims\">Claims</h2>"));
    assert!(
        html.contains(
            "<td><code>b_count</code></td><td>Figure 2</td><td>5</td><td>4</td><td>MISMATCH</td>"
        ),
        "{html}"
    );
    assert!(
        !html.contains("---"),
        "Markdown separator rows must not reach the HTML"
    );
    let expected_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/report/REPORT.expected.md"
    );
    if std::env::var_os("REPORT_BLESS").is_some() {
        std::fs::write(expected_path, &md).unwrap();
    }
    let expected =
        std::fs::read_to_string(expected_path).expect("snapshot (REPORT_BLESS=1 writes it)");
    assert_eq!(md, expected);
}

#[test]
fn readme_claims_map_is_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"))
        .args(["claims-map", "--check", "README.md"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_example_study_runs() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/minimal");
    let p = Project::new("version: 1\nstages: {}\n");
    for f in ["pipeline.yaml", "data/flaky.csv", "templates/by_cause.tex"] {
        p.write(f, &std::fs::read_to_string(format!("{src}/{f}")).unwrap());
    }
    let r = p.run(&["run"]);
    r.code(0);
    assert!(r.stdout.contains("4 stages: 4 ran"), "{}", r.stdout);
    assert_eq!(p.read("out/rows.txt").trim(), "12");
    assert!(
        p.read("out/by_cause.csv")
            .starts_with("project,cause,tests,median_days\nalpha,network,1,2.0\n")
    );
    assert!(p.read("out/by_cause.tex").contains("\\toprule"));
    assert!(p.path("out/by_cause.png").exists());
    p.run(&["run", "--check"]).code(0);
}

/// The real pipeline on an edited copy of the real dataset (its last bug removed): the claims
/// that depend on the bug count turn into MISMATCH, showing the printed and computed values.
#[test]
fn an_edited_dataset_turns_claims_into_mismatches() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let mirror = std::env::var("ARTIFACT_MIRROR")
        .unwrap_or_else(|_| format!("{repo}/../shared/upstream/bugs-in-LLM-inference-engines"));
    let raw = std::fs::read_to_string(format!("{mirror}/dataset.csv"))
        .expect("the real dataset in the mirror folder (set ARTIFACT_MIRROR)");
    let mut lines: Vec<&str> = raw.lines().collect();
    let dropped = lines.pop().expect("rows");
    assert!(dropped.contains("github.com"));
    let pipeline = std::fs::read_to_string(format!("{repo}/pipeline.yaml")).unwrap();
    let start = pipeline.find("  fetch_dataset:\n").expect("fetch stage");
    let end = start + pipeline[start..].find("\n  clean:\n").expect("clean stage");
    let local = "  fetch_dataset:\n    kind: command\n    inputs: [data/edited.csv]\n    outputs: [data/raw/dataset.csv]\n    with: { run: 'mkdir -p data/raw && cp data/edited.csv data/raw/dataset.csv' }\n";
    let p = Project::new(&format!(
        "{}{local}{}",
        &pipeline[..start],
        &pipeline[end..]
    ));
    p.write("data/edited.csv", &(lines.join("\n") + "\n"));
    for f in ["data/taxonomy.yaml", "data/claims.yaml"] {
        p.write(f, &std::fs::read_to_string(format!("{repo}/{f}")).unwrap());
    }
    for e in std::fs::read_dir(format!("{repo}/templates")).unwrap() {
        let e = e.unwrap();
        let name = format!("templates/{}", e.file_name().to_string_lossy());
        p.write(&name, &std::fs::read_to_string(e.path()).unwrap());
    }
    let r = p.run(&["check"]);
    r.code(6);
    assert!(
        r.stdout.contains(
            "MISMATCH               bugs_total                         printed 929, computed 928"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("PASS                   uo_x_functionality"),
        "{}",
        r.stdout
    );
}
