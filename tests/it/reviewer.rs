//! Reviewer-facing features: claims (pass, mismatch, needs input, documented mismatch), the
//! report (snapshot), the README's claims map, the example study, and an edited copy of the real
//! dataset turning a claim into a MISMATCH with both values shown.

use crate::util::{Project, mirror_dir, paper_project};

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
    r.says("MISMATCH               rows_total                         printed 4, computed 3");
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

/// A project with no `report:` section and none of the conventional files: the checklist says
/// what is missing in the project's own terms, never a path of this repository.
#[test]
fn report_snapshot() {
    let p = claims_project();
    p.run(&["run", "-j", "1"]).code(0);
    p.run(&["check"]).code(6);
    p.run(&["report"]).code(0);
    let md = normalise(&p.read("REPORT.md"));
    for this_repo_only in [
        "data/LICENSE-dataset",
        "docs/pipeline.md",
        "examples/minimal",
    ] {
        assert!(!md.contains(this_repo_only), "{this_repo_only} in\n{md}");
    }
    insta::assert_snapshot!("report_md_by_convention", md);
    let html = p.read("report.html");
    assert!(html.starts_with("<!doctype html>") && html.contains("<h2 id=\"claims\">Claims</h2>"));
    // Verdicts coloured, `what` beside the id, the note's backticks as code.
    assert!(
        html.contains(
            "<tr id=\"claim-b_count\"><td><code>b_count</code></td><td>Figure 2</td><td>5</td><td>4</td><td class=\"verdict mismatch\">MISMATCH</td>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<td><code>rows_total</code><span class=\"what\">Rows</span></td>"),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"verdict pass\">PASS</td>"),
        "{html}"
    );
    assert!(html.contains("<td class=\"verdict documented\">MISMATCH (documented)</td>"));
    assert!(html.contains("<td class=\"verdict needs-input\">NEEDS INPUT</td>"));
    assert!(
        !html.contains("---"),
        "Markdown separator rows must not reach the HTML"
    );
}

/// The `report:` section names the title, licences, test command, docs and examples; claims
/// link to the figure and table that show them (from the pipeline, and from `shown_in`).
#[test]
fn report_takes_its_checklist_from_the_project_and_links_claims_to_outputs() {
    let p = claims_project();
    let pipeline = p.read("pipeline.yaml");
    p.write(
        "pipeline.yaml",
        &format!(
            "{}  fig:\n    kind: plot\n    inputs: [results/t.csv]\n    outputs: [figs/t.svg, figs/t.png]\n    with: {{data: results/t.csv, chart: grouped, x: kind, value: n}}\n\
             report:\n  title: A Study of Things\n  licences: [{{path: COPYING.txt, what: code licence}}]\n  test: {{command: just check}}\n  docs: [{{path: MANUAL.md, what: manual}}]\n  examples: []\n",
            pipeline
        ),
    );
    p.write(
        "data/claims.yaml",
        &CLAIMS.replace(
            "  - id: kappa\n",
            "    shown_in: [paper/table-3.tex]\n  - id: kappa\n",
        ),
    );
    p.write("COPYING.txt", "MIT\n")
        .write("MANUAL.md", "# Manual\n")
        // One row per bar.
        .write("data/t.csv", "kind,n\na,5\nb,4\nc,1\n");
    p.run(&["run"]).code(0);
    p.run(&["check"]).code(6);
    p.run(&["report"]).code(0);
    let md = p.read("REPORT.md");
    assert!(
        md.starts_with("# Reviewer report: A Study of Things\n"),
        "{md}"
    );
    for row in [
        "| Available | code licence | `COPYING.txt`: yes |",
        "| Functional | test command | `just check` |",
        "| Reusable | manual | `MANUAL.md`: yes |",
    ] {
        assert!(md.contains(row), "{row} not in\n{md}");
    }
    assert!(!md.contains("example project"), "{md}");
    assert!(!md.contains("make test"), "{md}");
    let html = p.read("report.html");
    assert!(html.contains("<title>Reviewer report: A Study of Things</title>"));
    // Every claim on results/t.csv links to the figure (inlined below, so an anchor); the
    // documented one also to the table its `shown_in` names.
    assert!(
        html.contains("<a href=\"#figs-t-png\">figs/t.png</a>"),
        "{html}"
    );
    assert!(html.contains(
        "<figure id=\"figs-t-png\"><img alt=\"figs/t.png\" src=\"data:image/png;base64,iVBORw0KGgo"
    ));
    assert!(html.contains(
        "<a href=\"paper/table-3.tex\">paper/table-3.tex</a><br><a href=\"#figs-t-png\">figs/t.png</a>"
    ), "{html}");
    // A typo in the section is an invalid pipeline, located.
    p.write(
        "pipeline.yaml",
        &format!("{pipeline}report:\n  licenses: [{{path: LICENSE}}]\n"),
    );
    let r = p.run(&["report"]);
    r.code(3);
    assert!(
        r.stderr.contains(
            "pipeline.yaml:14:3: error: report: unknown key \"licenses\" (expected one of: title, licences, citation, test, docs, examples)"
        ),
        "{}",
        r.stderr
    );
}

/// A user's mistake is not an internal error (exit 1, "a bug"): `report` before any run says
/// which stage has no verdicts (exit 5), and a claims file it cannot read is invalid input
/// (exit 3), named by its project path. Found by an adversarial helper.
#[test]
fn report_without_verdicts_or_with_a_bad_claims_file_says_so() {
    let p = claims_project();
    let r = p.run(&["report"]);
    r.code(5);
    let want =
        "error: stage claims did not succeed: its verdicts, results/claims.csv, do not exist";
    assert!(r.stderr.starts_with(want), "{}", r.stderr);
    p.run(&["run"]).code(0);
    p.write(
        "data/claims.yaml",
        &CLAIMS.replacen("printed: \"4\"", "printed: \"4,0\"", 1),
    );
    let r = p.run(&["report"]);
    r.code(3);
    let want = "data/claims.yaml: claim rows_total: printed value \"4,0\" is not a number";
    assert!(r.stderr.starts_with(want), "{}", r.stderr);
}

/// `report` writes only where a report belongs: never over the pipeline file or a declared
/// input or output, never outside the project; a REPORT.md it did not write is kept first.
/// Found by an adversarial helper (`--md pipeline.yaml` overwrote the pipeline).
#[test]
fn report_never_overwrites_what_it_did_not_write() {
    let p = claims_project();
    p.run(&["run"]).code(0);
    for (args, want) in [
        (
            ["--md", "pipeline.yaml"],
            "error: --md pipeline.yaml: that is the pipeline file",
        ),
        (
            ["--html", "results/t.csv"],
            "error: --html results/t.csv: that is an output of stage make",
        ),
        (
            ["--md", "../x.md"],
            "error: --md \"../x.md\": the path escapes the project root",
        ),
        (
            ["--html", "REPORT.md"],
            "error: --md and --html name the same file, REPORT.md",
        ),
    ] {
        let r = p.run(&["report", args[0], args[1]]);
        r.code(2);
        assert!(r.stderr.starts_with(want), "{args:?}: {}", r.stderr);
    }
    p.write("REPORT.md", "my notes\n");
    let r = p.run(&["report"]);
    r.code(0);
    assert!(
        r.stderr.contains("REPORT.md was not made by this pipeline"),
        "{}",
        r.stderr
    );
    assert_eq!(p.read(".artifact/kept/REPORT.md"), "my notes\n");
    // Its own report it replaces without a copy.
    let r = p.run(&["report"]);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

/// On a fresh clone `check` is the first run: `report` then works from what it recorded, and
/// names the stages it did not run.
#[test]
fn report_works_after_check_alone() {
    let p = claims_project();
    let pipeline = p.read("pipeline.yaml");
    p.write(
        "pipeline.yaml",
        &format!("{pipeline}  extra:\n    kind: command\n    outputs: [out/x.txt]\n    with: {{ run: 'mkdir -p out && echo x > out/x.txt' }}\n"),
    );
    p.run(&["check"]).code(6);
    let r = p.run(&["report"]);
    r.code(0);
    let md = p.read("REPORT.md");
    assert!(
        md.contains("2 of 2 stages succeeded in the last run that did work ("),
        "{md}"
    );
    assert!(
        md.contains("; 1 stage(s) not run (extra; `artifact run` runs them): NO |"),
        "{md}"
    );
    assert!(md.contains("| claims | claims | ran |"), "{md}");
    // A stage not run is not a failure: the verdict follows the claims (one unexpected
    // mismatch here).
    assert!(md.contains("**Verdict: NOT reproduced.** 2 of 4"), "{md}");
    p.write(
        "data/claims.yaml",
        &CLAIMS.replace("printed: \"5\"", "printed: \"4\""),
    );
    p.run(&["check"]).code(0);
    p.run(&["report"]).code(0);
    let md = p.read("REPORT.md");
    assert!(md.contains("**Verdict: results reproduced.**"), "{md}");
    assert!(
        md.contains("(extra; `artifact run` runs them): NO |"),
        "{md}"
    );
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
    r.says("4 stages: 4 ran");
    assert_eq!(p.read("out/rows.txt").trim(), "12");
    assert!(
        p.read("out/by_cause.csv")
            .starts_with("project,cause,tests,median_days\nalpha,network,1,2.0\n")
    );
    assert!(p.read("out/by_cause.tex").contains("\\toprule"));
    assert!(p.path("out/by_cause.png").exists());
    p.run(&["run", "--check"]).code(0);
}

/// Non-negotiable 4 in CI: the real pipeline, run from scratch on the pinned data from the
/// mirror folder, makes every committed output of `results/`, `figures/` and `paper-tables/`
/// byte for byte, and the same `pipeline.lock` (each stage's cache key, each output's sha256,
/// the row-level tables included). A change that alters a figure, table or result fails here
/// until its commit regenerates them (`make artifact`).
#[test]
fn a_fresh_run_makes_the_committed_outputs_byte_for_byte() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |rel: &str| std::fs::read(repo.join(rel)).expect("a committed file");
    let p = paper_project(&String::from_utf8(read("pipeline.yaml")).expect("UTF-8"));
    let mirror = mirror_dir();
    let mirror = mirror.to_str().expect("a UTF-8 mirror path");
    p.run(&["run", "-q", "--offline", "--mirror", mirror])
        .code(0);
    let mut made = 0;
    for dir in ["results", "figures", "paper-tables"] {
        for e in std::fs::read_dir(p.path(dir)).expect("an output folder") {
            let rel = format!("{dir}/{}", e.expect("entry").file_name().to_string_lossy());
            let committed = std::fs::read(repo.join(&rel)).unwrap_or_default();
            let fresh = std::fs::read(p.path(&rel)).expect("a file the run made");
            assert!(committed == fresh, "{rel}: not the committed bytes");
            made += 1;
        }
    }
    let lock = String::from_utf8(read("pipeline.lock")).expect("UTF-8");
    let listed = ["\"results/", "\"figures/", "\"paper-tables/"];
    let listed = lock
        .lines()
        .map(str::trim)
        .filter(|l| listed.iter().any(|d| l.starts_with(d)));
    assert_eq!(
        made,
        listed.count(),
        "files made against outputs in pipeline.lock"
    );
    let fresh = p.read("pipeline.lock");
    let first = lock.lines().zip(fresh.lines()).find(|(a, b)| a != b);
    assert!(
        fresh == lock,
        "pipeline.lock: committed / fresh run first differ at {first:?}"
    );
}

/// The real dataset from the mirror folder.
fn real_dataset() -> String {
    std::fs::read_to_string(mirror_dir().join("dataset.csv"))
        .expect("the real dataset in the mirror folder (set ARTIFACT_MIRROR)")
}

/// The real pipeline in a temporary folder, its fetch stage replaced by a copy of `dataset`.
fn paper_on(dataset: &str) -> Project {
    let repo = env!("CARGO_MANIFEST_DIR");
    let pipeline = std::fs::read_to_string(format!("{repo}/pipeline.yaml")).unwrap();
    let start = pipeline.find("  fetch_dataset:\n").expect("fetch stage");
    let end = start
        + pipeline[start..]
            .find("\n  validate:\n")
            .expect("validate stage");
    let local = "  fetch_dataset:\n    kind: command\n    inputs: [data/edited.csv]\n    outputs: [data/raw/dataset.csv]\n    with: { run: 'mkdir -p data/raw && cp data/edited.csv data/raw/dataset.csv' }\n";
    let p = paper_project(&format!(
        "{}{local}{}",
        &pipeline[..start],
        &pipeline[end..]
    ));
    p.write("data/edited.csv", dataset);
    p
}

/// The real pipeline on an edited copy of the real dataset (its last bug removed): the claims
/// that depend on the bug count turn into MISMATCH, showing the printed and computed values.
#[test]
fn an_edited_dataset_turns_claims_into_mismatches() {
    let raw = real_dataset();
    let mut lines: Vec<&str> = raw.lines().collect();
    let dropped = lines.pop().expect("rows");
    assert!(dropped.contains("github.com"));
    let p = paper_on(&(lines.join("\n") + "\n"));
    let r = p.run(&["check"]);
    r.code(6);
    r.says("MISMATCH               bugs_total                         printed 929, computed 928");
    assert!(
        r.stdout
            .contains("PASS                   uo_x_functionality"),
        "{}",
        r.stdout
    );
}

/// The documented way to edit the paper's dataset: a correction in `data/corrections.yaml`
/// relabels one bug of the pinned data; only what depends on it changes, and the report says
/// the results come from edited data. A correction whose `was` no longer holds, or that names
/// no row, fails the run at its line in the file and keeps the previous tables.
#[test]
fn a_correction_relabels_one_bug_and_the_report_says_the_data_was_edited() {
    let raw = real_dataset();
    let p = paper_on(&raw);
    p.run(&["run", "-q"]).code(0);
    let before = p.read("results/phases_by_engine.csv");
    // The first bug, moved to the phase of the first bug with another phase.
    let mut rdr = csv::Reader::from_reader(raw.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    let h = rdr.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|x| x == name).unwrap();
    let (url, phase) = (&rows[0][col("URL")], &rows[0][col("Phase")]);
    let other = rows
        .iter()
        .map(|r| &r[col("Phase")])
        .find(|x| x != &phase)
        .unwrap();
    let correction = |was: &str| {
        format!(
            "# relabelled by hand\n- where: {{url: \"{url}\"}}\n  was: {{phase: \"{was}\"}}\n  set: {{phase: \"{other}\"}}\n  why: a test\n"
        )
    };
    p.write("data/corrections.yaml", &correction(phase));
    let r = p.run(&["run"]);
    r.code(0);
    r.says("ran       validate");
    r.says("ran       phases_by_engine");
    // Only what depends on the phase changes: the symptom table's data did not.
    r.says("cached    tab@table=symptoms\n");
    let after = p.read("results/phases_by_engine.csv");
    assert_ne!(before, after);
    let line_diff: Vec<_> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(line_diff.len() >= 2, "{line_diff:?}");
    let _ = p.run(&["check"]);
    p.run(&["report"]).code(0);
    let md = p.read("REPORT.md");
    assert!(
        md.contains(
            "**The data was edited:** 1 correction(s) in `data/corrections.yaml` (stage validate)"
        ),
        "{md}"
    );
    assert!(md.contains("not from the pinned data alone: NO"), "{md}");
    assert!(p.read("report.html").contains("The data was edited:"));

    // `was` no longer holds: the run fails at the entry and keeps the tables.
    p.write("data/corrections.yaml", &correction("No Such Phase"));
    let r = p.run(&["run"]);
    r.code(5);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("data/corrections.yaml:3:"), "{out}");
    assert!(
        out.contains(&format!(
            "has phase = \"{phase}\", not \"No Such Phase\" as `was` says"
        )),
        "{out}"
    );
    assert_eq!(p.read("results/phases_by_engine.csv"), after);
    // A row that is not there.
    p.write(
        "data/corrections.yaml",
        "- where: {url: nowhere}\n  was: {phase: x}\n  set: {phase: y}\n  why: test\n- where: {nope: 1}\n  was: {phase: x}\n  set: {phase: x}\n  why: ''\n",
    );
    let r = p.run(&["run"]);
    r.code(5);
    let out = format!("{}{}", r.stdout, r.stderr);
    for want in [
        "data/corrections.yaml:5:10: correction 2: no column \"nope\" in `where` (columns: url, engine,",
        "correction 2: `set` changes nothing",
        "correction 2: `why` is empty",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
    p.write(
        "data/corrections.yaml",
        "- where: {url: nowhere}\n  was: {phase: x}\n  set: {phase: y}\n  why: test\n",
    );
    let r = p.run(&["run"]);
    r.code(5);
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(
        out.contains("data/corrections.yaml:1:3: correction 1 matches no row (url = \"nowhere\")"),
        "{out}"
    );
}

/// `artifact synth` (the benchmarks' data generator) draws from the taxonomy's vocabularies a
/// dataset that the real pipeline validates and runs end to end.
#[test]
fn synthetic_data_passes_the_real_pipeline() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("synth.csv");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_artifact"))
        .args(["synth", "--rows", "500", "--seed", "3", "--taxonomy"])
        .arg(format!("{repo}/data/taxonomy.yaml"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let data = std::fs::read_to_string(&out).unwrap();
    assert_eq!(data.lines().count(), 501);
    let p = paper_on(&data);
    p.run(&["run", "-q"]).code(0);
    let overview = p.read("results/overview.csv");
    let bugs: i64 = overview
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(bugs, 500, "{overview}");
}
