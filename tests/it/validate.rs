//! The `validate` kind through the binary: the second example study (`examples/app-reviews/`,
//! shaped unlike the paper's) end to end, and hostile inputs, each reported with its row,
//! column, value and expected set while the previous outputs stay in place.

use crate::util::Project;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/app-reviews");
const FILES: [&str; 4] = [
    "pipeline.yaml",
    "data/reviews.csv",
    "data/vocabulary.yaml",
    "templates/by_area.tex",
];

/// A copy of the example study in a temporary folder.
fn example() -> Project {
    let p = Project::new("version: 1\nstages: {}\n");
    for f in FILES {
        p.write(
            f,
            &std::fs::read_to_string(format!("{EXAMPLE}/{f}")).unwrap(),
        );
    }
    p
}

fn rows(p: &Project, rel: &str) -> usize {
    p.read(rel).lines().count() - 1
}

#[test]
fn the_app_reviews_example_runs_with_no_study_specific_code() {
    let p = example();
    let r = p.run(&["run"]);
    r.code(0);
    r.says("4 stages: 4 ran");
    // 42 reviews, 4 false positives dropped before validation (their labels are empty).
    assert_eq!(rows(&p, "out/tidy/reviews.csv"), 38);
    assert_eq!(
        p.read("out/by_area.csv"),
        "area,kinds,complaints,high\nUI,2,21,7\nPerformance,3,10,2\nData,2,15,5\nAccount,1,6,1\n"
    );
    assert_eq!(
        p.read("out/by_app.csv"),
        "app,store,reviews,replied,mean_rating,first_posted\n\
         Notes,play,14,14,3.14,2024-01-01\n\
         Transit,app-store,14,0,2.86,2024-03-15\n\
         Bank,play,10,10,3.10,2024-02-08\n"
    );
    let wide = p.read("out/tidy/reviews.csv");
    assert!(wide.starts_with(
        "review_no,source_row,review,app,app_rank,posted,rating,replied,reply_date,status,complaint_count,severity_count\n\
         1,2,\"transit, 2024, #1\",Transit,2,2024-06-08,4,false,,confirmed,1,1\n"
    ), "{wide}");
    let long = p.read("out/tidy/complaints.csv");
    assert!(
        long.contains("\n6,1,Data - Sync,6,Data,3,Medium,2\n"),
        "the alias Med is written Medium: {long}"
    );
    assert_eq!(
        p.read("out/tidy/areas.csv"),
        "area,area_rank,leaf_count\nUI,1,2\nPerformance,2,3\nData,3,2\nAccount,4,1\n"
    );
    assert!(
        p.read("out/tidy/complaint_types.csv")
            .contains("\nPerformance - Memory,5,Performance,2\n")
    );
    assert!(
        p.read("out/by_area.tex")
            .contains("Performance & 3 & 10 & 2 \\\\")
    );
    p.run(&["run", "--check"]).code(0);
}

/// Runs the example once, edits `rel` with `edit`, reruns `validate`: it must fail (exit 5)
/// with every wanted text in its output, and the previous tables must be unchanged.
fn fails_keeping_outputs(rel: &str, edit: &dyn Fn(&str) -> String, want: &[&str]) -> String {
    let p = example();
    p.run(&["run", "validate"]).code(0);
    let before = p.read("out/tidy/reviews.csv");
    p.write(rel, &edit(&p.read(rel)));
    let r = p.run(&["run", "validate"]);
    r.code(5);
    let all = format!("{}{}", r.stdout, r.stderr);
    for w in want {
        assert!(all.contains(w), "missing {w:?} in:\n{all}");
    }
    assert_eq!(
        p.read("out/tidy/reviews.csv"),
        before,
        "previous outputs kept"
    );
    all
}

#[test]
fn unknown_labels_bad_dates_parallel_lengths_and_duplicates_are_all_listed() {
    let all = fails_keeping_outputs(
        "data/reviews.csv",
        &|t| {
            let mut t = t
                .replacen("UI - Layout, ", "UI - Layuot, ", 1)
                .replacen("15/11/2024", "31/02/2024", 1)
                .replace(
                    "Performance - Startup,Low",
                    "Performance - Startup,\"Low, High\"",
                );
            let first = t.lines().nth(1).unwrap().to_string();
            t.push_str(&first);
            t.push('\n');
            t
        },
        &[
            "data/reviews.csv: 4 problem(s) (header = row 1); nothing was written:",
            "row 3 (bank, 2024, #2), column \"Posted\": not a date \"31/02/2024\"; expected a date written %d/%m/%Y",
            "row 4 (notes, 2024, #3), column \"Severity\": 2 value(s), but 1 in \"Complaints\": \"Low, High\"; expected as many values as in each parallel column (Complaints, Severity)",
            "row 9 (bank, 2024, #8), column \"Complaints\": unknown value \"UI - Layuot\"; expected one of {\"UI - Layout\", \"UI - Dark Mode\", ",
            "did you mean \"UI - Layout\"?",
            "row 44 (transit, 2024, #1), column \"Review ID\": duplicate (first at row 2): \"transit, 2024, #1\"; expected unique values of (review)",
            "  \"Complaints\": 1 (unknown value: 1)",
            "every problem is listed in .artifact/logs/validate.problems.csv",
        ],
    );
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn rules_and_the_problem_file() {
    let p = example();
    let text = p.read("data/reviews.csv").replace(
        "\"bank, 2024, #2\",Bank,15/11/2024,2,yes,2024-11-17",
        "\"bank, 2024, #2\",Bank,15/11/2024,7,yes,",
    );
    p.write("data/reviews.csv", &text);
    let r = p.run(&["run", "validate"]);
    r.code(5);
    for w in [
        "row 3 (bank, 2024, #2), column \"Reply Date\": rule 1 (when replied is \"true\") fails for \"\"; expected reply_date is not empty",
        "row 3 (bank, 2024, #2), column \"Rating\": rule 2 fails for \"7\"; expected a rating from 1 to 5",
    ] {
        assert!(r.stdout.contains(w), "missing {w:?} in:\n{}", r.stdout);
    }
    let listed = p.read(".artifact/logs/validate.problems.csv");
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.starts_with("row,column,key,problem,value,expected,hint\n"),
        "{listed}"
    );
}

#[test]
fn a_missing_column_is_named_with_a_close_header() {
    fails_keeping_outputs(
        "data/reviews.csv",
        &|t| {
            t.replacen("Rating", "Ratings", 1)
                .replacen("Status", "State", 1)
        },
        &[
            "data/reviews.csv: missing column(s) \"Rating\" (did you mean \"Ratings\"?), \"Status\" (did you mean \"State\"?) (the header has: \"Review ID\", ",
        ],
    );
}

#[test]
fn vocabulary_errors_name_the_file_and_line() {
    fails_keeping_outputs(
        "data/vocabulary.yaml",
        &|t| {
            t.replace("- {label: Memory}", "- {label: Battery}")
                .replace(
                    "{label: Bank, store: play, kind: finance}",
                    "{label: Bank, stor: play}",
                )
        },
        &[
            "data/vocabulary.yaml:8:9: app: value \"Bank\" has key \"stor\", which is not `label`, `source`, `values` or one of the declared `attributes` (store, kind)",
            "data/vocabulary.yaml:22:13: complaint: duplicate value \"Performance - Battery\"",
        ],
    );
    fails_keeping_outputs(
        "data/vocabulary.yaml",
        &|t| t.replace("  severity:\n    values:", "  severity:\n    valeus:"),
        &["data/vocabulary.yaml:3"],
    );
}

#[test]
fn a_huge_cell_is_clipped_in_the_message() {
    let all = fails_keeping_outputs(
        "data/reviews.csv",
        &|t| {
            t.replacen(
                ",Performance - Battery,",
                &format!(",\"{}\",", "x".repeat(1_000_000)),
                1,
            )
        },
        &["unknown value \"xxxxxxxx", "... (1000000 characters)"],
    );
    assert!(all.len() < 20_000, "{} bytes of output", all.len());
}

#[test]
fn an_empty_file_and_a_header_only_file() {
    fails_keeping_outputs(
        "data/reviews.csv",
        &|_| String::new(),
        &[
            "data/reviews.csv: the file is empty; expected a header row with the columns \"Review ID\", \"App\"",
        ],
    );
    let p = example();
    let header = p
        .read("data/reviews.csv")
        .lines()
        .next()
        .unwrap()
        .to_string();
    p.write("data/reviews.csv", &format!("{header}\n"));
    p.run(&["run", "validate"]).code(0);
    assert_eq!(rows(&p, "out/tidy/reviews.csv"), 0);
    assert_eq!(rows(&p, "out/tidy/apps.csv"), 3);
}

#[test]
fn a_bom_and_crlf_line_ends_change_nothing() {
    let plain = example();
    plain.run(&["run", "validate"]).code(0);
    let p = example();
    let text = p.read("data/reviews.csv").replace('\n', "\r\n");
    p.write("data/reviews.csv", &format!("\u{feff}{text}"));
    p.run(&["run", "validate"]).code(0);
    for t in ["reviews", "complaints", "apps"] {
        let rel = format!("out/tidy/{t}.csv");
        assert_eq!(p.read(&rel), plain.read(&rel), "{rel}");
    }
}

#[test]
fn another_delimiter_and_no_quoting() {
    let p = example();
    let text = p
        .read("data/reviews.csv")
        .replace(',', ";")
        .replace("; ", ", ")
        .replace('"', "");
    p.write("data/reviews.csv", &text);
    let y = p.read("pipeline.yaml").replace(
        "      input: data/reviews.csv\n",
        "      input: data/reviews.csv\n      delimiter: \";\"\n      quote: \"\"\n",
    );
    p.write("pipeline.yaml", &y);
    p.run(&["run", "validate"]).code(0);
    assert!(
        p.read("out/tidy/reviews.csv")
            .contains("\n1,2,\"transit, 2024, #1\",Transit,")
    );
}
