//! `artifact report`: the reviewer report, `REPORT.md` and a self-contained `report.html`,
//! rendered with tera from two templates compiled into the binary (`src/cli/report/`). The
//! data comes from the last run that did any work (`.artifact/last-run.json`, written by `run`
//! and `check`), the determinism audit (`.artifact/last-audit.json`), the claims verdicts, the
//! stage records, the lock file and the pipeline: badge checklist with evidence, claims, per-stage
//! time / cache status / memory, input pins, tool and crate versions, the figures and links to
//! the LaTeX tables, and what the public data cannot reproduce.
//!
//! The checklist's paths come from the project: the `report:` section of `pipeline.yaml`
//! ([`ReportConfig`]), or, for each key left out, the conventions documented in
//! `docs/pipeline.md` ("The report"). Nothing here names a path of one particular project.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::Args;
use engine::exit;
use engine::kind::Kind as _;
use engine::spec::StageSpec;
use serde::{Deserialize, Serialize};
use tera::{Context, Kwargs, State, Tera};

use super::Global;
use super::check::read_verdicts;
use super::error::{Error, Result};
use super::project::Project;
use super::records::{Audit, LastRun};
use crate::stages::claims::{ClaimStatus, ClaimVerdict, Query};
use crate::stages::numfmt;
use crate::stages::validate::{Corrections, ValidateKind};
use crate::stages::{fetch::FetchKind, plot::PlotKind, table::TableKind};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Markdown report path.
    #[arg(long, default_value = "REPORT.md")]
    pub md: PathBuf,
    /// HTML report path.
    #[arg(long, default_value = "report.html")]
    pub html: PathBuf,
}

/// The `report:` section of `pipeline.yaml`. Every key is optional; a key left out falls back
/// to a documented convention (see each field).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// The study's title, shown in the report's heading. Default: none.
    #[serde(default)]
    pub title: Option<String>,
    /// Licence files. Default: every `LICENSE*`, `LICENCE*` and `COPYING*` file at the project
    /// root and in `data/`.
    #[serde(default)]
    pub licences: Option<Vec<Entry>>,
    /// The citation file whose `doi:` the report shows. Default: `CITATION.cff`.
    #[serde(default)]
    pub citation: Option<String>,
    /// The command that runs the project's tests. Default: `make test` when the root
    /// `Makefile` has a `test` target.
    #[serde(default)]
    pub test: Option<TestCommand>,
    /// Documentation. Default: `README.md`.
    #[serde(default)]
    pub docs: Option<Vec<Entry>>,
    /// Example projects that show the pipeline reused. Default: every
    /// `examples/*/pipeline.yaml`.
    #[serde(default)]
    pub examples: Option<Vec<Entry>>,
}

/// A file the checklist looks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Project-relative path.
    pub path: String,
    /// What the file shows, in the checklist's "check" column.
    #[serde(default)]
    pub what: Option<String>,
    /// Added after the path in the evidence (e.g. "run by `make test`").
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCommand {
    pub command: String,
    /// What the command covers, shown after it.
    #[serde(default)]
    pub what: Option<String>,
}

impl ReportConfig {
    /// Reads the pipeline's `report:` section; problems are located `file:line:column`.
    pub fn from_pipeline(p: &engine::spec::Pipeline) -> Result<ReportConfig, Vec<String>> {
        let Some(node) = &p.report else {
            return Ok(ReportConfig::default());
        };
        engine::spec::from_node(node).map_err(|errs| {
            errs.iter()
                .map(|e| {
                    let l = e.loc.unwrap_or(node.loc);
                    format!(
                        "{}:{}:{}: error: report: {}",
                        p.file, l.line, l.col, e.message
                    )
                })
                .collect()
        })
    }
}

/// A piece of evidence text; `code` pieces are paths or commands.
#[derive(Serialize)]
struct Seg {
    text: String,
    code: bool,
}

fn text(s: impl Into<String>) -> Seg {
    Seg {
        text: s.into(),
        code: false,
    }
}

fn code(s: impl Into<String>) -> Seg {
    Seg {
        text: s.into(),
        code: true,
    }
}

#[derive(Serialize)]
struct Badge {
    badge: &'static str,
    check: String,
    evidence: Vec<Seg>,
    /// `Some(false)` for a failed check (shown in red in the HTML); `None` when the row states
    /// a fact without judging it.
    ok: Option<bool>,
}

#[derive(Serialize)]
struct Summary {
    reproduced: bool,
    pass: usize,
    checkable: usize,
    documented: usize,
    needs: usize,
    unexpected: usize,
}

#[derive(Serialize)]
struct Link {
    path: String,
    href: String,
}

impl Link {
    /// A link to the project file `path`, beside the report.
    fn file(path: String) -> Link {
        Link {
            href: href(&path),
            path,
        }
    }
}

/// The URL of a project file beside the report: percent-encoded but for letters, digits and
/// `-._~/`, so that no path (they come from the user's YAML) makes a scheme (`javascript:`),
/// a query or fragment, or a host (`//host`, hence the `./` before a leading `/`).
fn href(path: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~')
        .remove(b'/');
    let url = utf8_percent_encode(path, KEEP).to_string();
    if url.starts_with('/') {
        format!(".{url}")
    } else {
        url
    }
}

#[derive(Serialize)]
struct ClaimRow {
    id: String,
    what: String,
    source: String,
    printed: String,
    computed: String,
    status: ClaimStatus,
    /// The status as shown, with "(documented)" and the like.
    verdict: String,
    /// CSS class of the verdict cell.
    class: &'static str,
    note: String,
    shown_in: Vec<Link>,
}

#[derive(Serialize)]
struct StageRow {
    name: String,
    kind: String,
    status: String,
    time: String,
    made_time: String,
    peak: String,
}

#[derive(Serialize)]
struct Pin {
    stage: String,
    url: String,
    sha256: String,
    path: String,
    verified: bool,
}

#[derive(Serialize)]
struct Version {
    name: String,
    version: String,
}

#[derive(Serialize)]
struct Figure {
    path: String,
    /// The PNG's URL beside the report (for REPORT.md).
    href: String,
    anchor: String,
    /// `data:image/png;base64,...`, or `None` when the file is missing.
    data_uri: Option<String>,
}

#[derive(Serialize)]
struct UnsupportedRow {
    what: String,
    source: String,
    needs: String,
}

/// Everything the templates show.
#[derive(Serialize)]
struct Report {
    title: Option<String>,
    summary: Summary,
    /// Hand edits of the data (corrections files of `validate` stages) that hold any.
    edits: Vec<DataEdit>,
    badges: Vec<Badge>,
    claims: Vec<ClaimRow>,
    unsupported: Vec<UnsupportedRow>,
    stages: Vec<StageRow>,
    pins: Vec<Pin>,
    versions: Vec<Version>,
    figures: Vec<Figure>,
    tables: Vec<Link>,
}

/// A `validate` stage's corrections file.
#[derive(Serialize)]
struct DataEdit {
    stage: String,
    file: String,
    /// How many corrections it lists (`None`: it cannot be read; `error` says why).
    count: Option<usize>,
    error: Option<String>,
}

/// The corrections files of the pipeline's `validate` stages.
fn data_edits(p: &Project) -> Vec<DataEdit> {
    let root = &p.pipeline.root;
    p.pipeline
        .stages
        .iter()
        .filter_map(|s| {
            let params = ValidateKind::params_of(s)?;
            let f = params.corrections.as_ref()?;
            let loaded = Corrections::load(&root.join(f.as_str()), f.as_str(), params);
            Some(DataEdit {
                stage: s.name.clone(),
                file: f.as_str().to_string(),
                count: loaded.as_ref().ok().map(|c| c.list.len()),
                error: loaded.err(),
            })
        })
        .collect()
}

fn secs(millis: u64, decimals: usize) -> String {
    format!("{} s", numfmt::fixed(millis as f64 / 1000.0, decimals))
}

fn mark(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// An HTML id from a path: `figures/a b.png` -> `figures-a-b-png`.
fn anchor(path: &str) -> String {
    path.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Files at `dir` (project-relative, `""` for the root) whose upper-cased name starts with one
/// of `prefixes`, sorted.
fn files_named(root: &Path, dir: &str, prefixes: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            let u = n.to_ascii_uppercase();
            prefixes.iter().any(|p| u.starts_with(p))
        })
        .map(|n| {
            if dir.is_empty() {
                n
            } else {
                format!("{dir}/{n}")
            }
        })
        .collect();
    v.sort();
    v
}

fn entry(path: String, what: &str) -> Entry {
    Entry {
        path,
        what: Some(what.to_string()),
        note: None,
    }
}

/// `make test` when the root Makefile has a `test:` target.
fn make_test(root: &Path) -> Option<TestCommand> {
    let text = std::fs::read_to_string(root.join("Makefile")).ok()?;
    text.lines()
        .any(|l| l.starts_with("test:") || l.starts_with("test ::"))
        .then(|| TestCommand {
            command: "make test".into(),
            what: None,
        })
}

/// The `shown_in` links of a claim: the paths the claims file names, then the outputs of every
/// `plot` (its PNG) and `table` stage that reads the claim's result file.
fn shown_in(
    p: &Project,
    claim: Option<&crate::stages::claims::Claim>,
    figures: &[Figure],
) -> Vec<Link> {
    let Some(c) = claim else { return Vec::new() };
    let mut paths: Vec<String> = c.shown_in.clone();
    let mut files = Vec::new();
    let mut q: Option<&Query> = c.result.as_ref();
    while let Some(x) = q {
        if let Some(f) = &x.file {
            files.push(f.clone());
        }
        q = x.percent_of.as_deref();
    }
    for s in &p.pipeline.stages {
        let shows = match s.kind.as_str() {
            "plot" => ".png",
            "table" => ".tex",
            _ => continue,
        };
        if s.inputs.iter().any(|i| files.contains(&i.path)) {
            paths.extend(
                s.outputs
                    .iter()
                    .map(|o| o.path.clone())
                    .filter(|o| o.ends_with(shows)),
            );
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    paths
        .into_iter()
        .filter(|x| seen.insert(x.clone()))
        .map(|path| {
            // A figure links to its inlined PNG in the page (an `.svg` to its PNG twin);
            // anything else to the file beside the report.
            let png = match path.strip_suffix(".svg") {
                Some(stem) => format!("{stem}.png"),
                None => path.clone(),
            };
            match figures.iter().find(|f| f.path == png) {
                Some(f) => Link {
                    href: format!("#{}", f.anchor),
                    path,
                },
                None => Link::file(path),
            }
        })
        .collect()
}

fn summary(verdicts: &[ClaimVerdict], stages_ok: bool) -> Summary {
    let checkable = verdicts
        .iter()
        .filter(|v| v.status != ClaimStatus::NeedsInput)
        .count();
    let unexpected = verdicts.iter().filter(|v| v.unexpected()).count();
    Summary {
        reproduced: unexpected == 0 && stages_ok,
        pass: verdicts
            .iter()
            .filter(|v| v.status == ClaimStatus::Pass)
            .count(),
        checkable,
        documented: verdicts
            .iter()
            .filter(|v| v.status == ClaimStatus::Mismatch && v.expected_mismatch())
            .count(),
        needs: verdicts.len() - checkable,
        unexpected,
    }
}

fn gather(p: &Project, cfg: &ReportConfig) -> Result<Report> {
    let root = &p.pipeline.root;
    let cache = engine::cache::Cache::new(root);
    let verdicts = read_verdicts(p)?;
    let files = super::check::claims_files(p)?;
    let claims_by_id: BTreeMap<&str, &crate::stages::claims::Claim> = files
        .iter()
        .flat_map(|f| f.claims.iter())
        .map(|c| (c.id.as_str(), c))
        .collect();
    let unsupported = files
        .iter()
        .flat_map(|f| &f.unsupported)
        .map(|u| UnsupportedRow {
            what: u.what.clone(),
            source: u.source.clone(),
            needs: u.needs.clone(),
        })
        .collect();
    let last = LastRun::read(&cache.dir).map_err(|e| {
        Error::internal(format!("no readable record of the last run ({e}); run `artifact run` or `artifact check` to write it"
            ),
        )
    })?;
    let mut stages = Vec::new();
    let wall_millis = last.wall_millis;
    for s in last.stages {
        let rec = cache.last(&s.stage);
        stages.push(StageRow {
            kind: s.kind.clone(),
            status: s.status.as_str().to_string(),
            time: secs(s.millis, 3),
            made_time: secs(rec.as_ref().map_or(0, |r| r.millis), 3),
            peak: rec.and_then(|r| r.peak_rss_kib).map_or("-".into(), |k| {
                format!("{} MiB", numfmt::fixed(k as f64 / 1024.0, 1))
            }),
            name: s.stage.clone(),
        });
    }
    // Stages the last run did not reach (`check` runs only what the claims read).
    let not_run: Vec<&str> = p
        .pipeline
        .stages
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !stages.iter().any(|r| r.name == *n))
        .collect();
    let succeeded = stages
        .iter()
        .filter(|r| matches!(r.status.as_str(), "ran" | "cached" | "restored"))
        .count();
    // The verdict asks whether what ran succeeded; the checklist row also wants every stage
    // to have run.
    let ran_ok = succeeded == stages.len();
    let stages_ok = ran_ok && not_run.is_empty();
    let audit = Audit::read(&cache.dir).ok().map(|a| {
        let same = a.stages.iter().filter(|x| x.identical).count();
        (same, a.stages.len())
    });
    let mut pins = Vec::new();
    for (s, pin) in p
        .pipeline
        .stages
        .iter()
        .filter_map(|s| Some((s, FetchKind::pin(s)?)))
    {
        let verified =
            engine::hash::sha256_file(&root.join(pin.path)).is_ok_and(|d| d == pin.sha256);
        pins.push(Pin {
            stage: s.name.clone(),
            url: pin.url.to_string(),
            sha256: pin.sha256.to_string(),
            path: pin.path.to_string(),
            verified,
        });
    }
    // What the running binary was built with (recorded by build.rs).
    let mut versions = vec![
        Version {
            name: "artifact".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        Version {
            name: "rustc".into(),
            version: env!("ARTIFACT_RUSTC_VERSION").into(),
        },
    ];
    for kv in env!("ARTIFACT_CRATE_VERSIONS")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        if let Some((k, v)) = kv.split_once('=') {
            versions.push(Version {
                name: k.into(),
                version: v.into(),
            });
        }
    }
    let outputs_of = |of_kind: fn(&StageSpec) -> bool, ext: &str| -> Vec<String> {
        p.pipeline
            .stages
            .iter()
            .filter(|s| of_kind(s))
            .flat_map(|s| s.outputs.iter().map(|o| o.path.clone()))
            .filter(|o| o.ends_with(ext))
            .collect()
    };
    let figures: Vec<Figure> = outputs_of(PlotKind::matches, ".png")
        .into_iter()
        .map(|path| Figure {
            href: href(&path),
            anchor: anchor(&path),
            data_uri: std::fs::read(root.join(&path)).ok().map(|b| {
                format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(b)
                )
            }),
            path,
        })
        .collect();

    let mut badges = Vec::new();
    let exists = |f: &str| root.join(f).exists();
    // Available: licences, pins, DOI.
    let licences = cfg.licences.clone().unwrap_or_else(|| {
        let prefixes = ["LICENSE", "LICENCE", "COPYING"];
        let mut v = files_named(root, "", &prefixes);
        v.extend(files_named(root, "data", &prefixes));
        v.into_iter().map(|f| entry(f, "licence")).collect()
    });
    // An empty list in `report:` says "none, on purpose": no row.
    if licences.is_empty() && cfg.licences.is_none() {
        badges.push(Badge {
            badge: "Available",
            check: "licence".into(),
            evidence: vec![
                text("no "),
                code("LICENSE*"),
                text(", "),
                code("LICENCE*"),
                text(" or "),
                code("COPYING*"),
                text(" file at the root or in "),
                code("data/"),
                text(" (or list them under "),
                code("report.licences"),
                text("): NO"),
            ],
            ok: Some(false),
        });
    }
    let file_row = |badge: &'static str, e: &Entry, default_what: &str| {
        let ok = exists(&e.path);
        let mut evidence = vec![code(e.path.clone())];
        if let Some(n) = &e.note {
            evidence.push(text(format!(", {n}")));
        }
        evidence.push(text(format!(": {}", mark(ok))));
        Badge {
            badge,
            check: e.what.clone().unwrap_or_else(|| default_what.to_string()),
            evidence,
            ok: Some(ok),
        }
    };
    for e in &licences {
        badges.push(file_row("Available", e, "licence"));
    }
    let pins_ok = !pins.is_empty() && pins.iter().all(|p| p.verified);
    badges.push(Badge {
        badge: "Available",
        check: "data pinned by URL + sha256 and verified".into(),
        evidence: vec![text(format!(
            "{} pin(s), all verified: {}",
            pins.len(),
            mark(pins_ok)
        ))],
        ok: Some(pins_ok),
    });
    let citation = cfg.citation.as_deref().unwrap_or("CITATION.cff");
    let doi = doi(&root.join(citation));
    badges.push(Badge {
        badge: "Available",
        check: "DOI".into(),
        evidence: vec![
            text(format!(
                "{} (",
                doi.clone()
                    .unwrap_or_else(|| format!("no DOI in {citation}"))
            )),
            code(citation),
            text(format!(": {})", mark(exists(citation)))),
        ],
        ok: Some(doi.is_some()),
    });
    // Functional: the run, the tests, the audit.
    let mut run_evidence = format!(
        "{succeeded} of {} stages succeeded in the last run that did work ({})",
        stages.len(),
        secs(wall_millis, 2)
    );
    if !not_run.is_empty() {
        run_evidence.push_str(&format!(
            "; {} stage(s) not run ({}; `artifact run` runs them)",
            not_run.len(),
            not_run.join(", ")
        ));
    }
    badges.push(Badge {
        badge: "Functional",
        check: "every stage ran or was cached".into(),
        evidence: vec![text(format!("{run_evidence}: {}", mark(stages_ok)))],
        ok: Some(stages_ok),
    });
    match cfg.test.clone().or_else(|| make_test(root)) {
        Some(t) => {
            let mut evidence = vec![code(t.command)];
            if let Some(w) = t.what {
                evidence.push(text(format!(" ({w})")));
            }
            badges.push(Badge {
                badge: "Functional",
                check: "test command".into(),
                evidence,
                ok: None,
            });
        }
        None => badges.push(Badge {
            badge: "Functional",
            check: "test command".into(),
            evidence: vec![
                text("none declared (no "),
                code("test"),
                text(" target in a root "),
                code("Makefile"),
                text("; or set "),
                code("report.test"),
                text("): NO"),
            ],
            ok: Some(false),
        }),
    }
    if let Some((same, n)) = audit {
        badges.push(Badge {
            badge: "Functional",
            check: "determinism audit (`artifact run --check`)".into(),
            evidence: vec![text(format!(
                "{same} of {n} stages reproduce byte for byte: {}",
                mark(same == n)
            ))],
            ok: Some(same == n),
        });
    }
    // Reusable: docs and examples.
    let docs = cfg
        .docs
        .clone()
        .unwrap_or_else(|| vec![entry("README.md".into(), "documentation")]);
    for e in &docs {
        badges.push(file_row("Reusable", e, "documentation"));
    }
    let examples = cfg.examples.clone().unwrap_or_else(|| {
        let mut v: Vec<Entry> = std::fs::read_dir(root.join("examples"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .map(|n| format!("examples/{n}/pipeline.yaml"))
            .filter(|f| exists(f))
            .map(|f| entry(f, "example project"))
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    });
    if examples.is_empty() && cfg.examples.is_none() {
        badges.push(Badge {
            badge: "Reusable",
            check: "example project".into(),
            evidence: vec![
                text("none ("),
                code("examples/*/pipeline.yaml"),
                text(", or list them under "),
                code("report.examples"),
                text("): NO"),
            ],
            ok: Some(false),
        });
    }
    for e in &examples {
        badges.push(file_row("Reusable", e, "example project"));
    }
    let sum = summary(&verdicts, ran_ok);
    let edits = data_edits(p);
    for e in &edits {
        let ok = e.count == Some(0);
        let what = match (&e.count, &e.error) {
            (Some(0), _) => "no corrections: the results come from the pinned data".to_string(),
            (Some(n), _) => format!(
                "{n} correction(s) applied to the data before the checks: the results come from edited data, not from the pinned data alone"
            ),
            (None, err) => format!("cannot be read: {}", err.as_deref().unwrap_or("")),
        };
        badges.push(Badge {
            badge: "Results Reproduced",
            check: "data as published (no hand corrections)".into(),
            evidence: vec![
                code(e.file.clone()),
                text(format!(" (stage {}): {what}: {}", e.stage, mark(ok))),
            ],
            ok: Some(ok),
        });
    }
    badges.push(Badge {
        badge: "Results Reproduced",
        check: "claims".into(),
        evidence: vec![text(format!(
            "{} of {} checkable claims pass; {} documented mismatch(es); {} unexpected: {}",
            sum.pass,
            sum.checkable,
            sum.documented,
            sum.unexpected,
            mark(sum.unexpected == 0)
        ))],
        ok: Some(sum.unexpected == 0),
    });

    let claims = verdicts
        .iter()
        .map(|v| {
            let claim = claims_by_id.get(v.id.as_str()).copied();
            let (verdict, class) = match (v.status, v.expected_mismatch()) {
                (ClaimStatus::Mismatch, true) => ("MISMATCH (documented)".into(), "documented"),
                (ClaimStatus::Pass, true) => ("PASS (expected mismatch!)".into(), "mismatch"),
                (ClaimStatus::Pass, false) => (v.status.to_string(), "pass"),
                (ClaimStatus::Mismatch, false) => (v.status.to_string(), "mismatch"),
                (ClaimStatus::NeedsInput, _) => (v.status.to_string(), "needs-input"),
            };
            ClaimRow {
                id: v.id.clone(),
                what: claim.map(|c| c.what.clone()).unwrap_or_default(),
                source: v.source.clone(),
                printed: v.printed.clone(),
                computed: v.computed.clone(),
                status: v.status,
                verdict,
                class,
                note: v.note.clone(),
                shown_in: shown_in(p, claim, &figures),
            }
        })
        .collect();
    Ok(Report {
        title: cfg.title.clone(),
        summary: sum,
        edits: edits.into_iter().filter(|e| e.count != Some(0)).collect(),
        badges,
        claims,
        unsupported,
        stages,
        pins,
        versions,
        figures,
        tables: (outputs_of(TableKind::matches, ".tex").into_iter())
            .map(Link::file)
            .collect(),
    })
}

/// The `doi:` of a citation file (CITATION.cff).
fn doi(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().and_then(|t| {
        t.lines().find_map(|l| {
            l.trim()
                .strip_prefix("doi:")
                .map(|d| d.trim().trim_matches('"').to_string())
        })
    })
}

/// Text from the project's files in REPORT.md, in a table cell, a code span or a list item: a
/// `|` would end the cell, a line break the row or item (and could start a heading), and a `<`
/// could open raw HTML, which Markdown viewers render.
fn md_cell(v: &str, _: Kwargs, _: &State) -> String {
    (v.replace('|', "\\|").replace('<', "&lt;")).replace(['\r', '\n'], " ")
}

/// HTML for text that may hold `code` spans (a checklist's `what` and notes come from the
/// project's YAML, where paths and commands are written in backticks): escaped, and each pair
/// of backticks turned into `<code>`.
fn code_spans(v: &str, _: Kwargs, _: &State) -> tera::Value {
    let esc = v
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    let mut out = String::with_capacity(esc.len() + 16);
    let mut parts = esc.split('`').peekable();
    let mut inside = false;
    while let Some(part) = parts.next() {
        if inside && parts.peek().is_some() {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else if inside {
            // An unpaired backtick stays as written.
            out.push('`');
            out.push_str(part);
        } else {
            out.push_str(part);
        }
        inside = !inside;
    }
    tera::Value::safe_string(&out)
}

/// The two templates, with HTML escaping for `report.html` only.
fn templates() -> tera::TeraResult<Tera> {
    let mut t = Tera::new();
    // Escape by suffix: `.html` is HTML-escaped, `.md` printed as is.
    t.autoescape_on([".html"]);
    t.register_filter("md_cell", md_cell);
    t.register_filter("code_spans", code_spans);
    t.add_raw_template("REPORT.md", include_str!("report/REPORT.md.tera"))?;
    t.add_raw_template("report.html", include_str!("report/report.html.tera"))?;
    Ok(t)
}

/// Renders both reports: (Markdown, HTML).
fn render(r: &Report) -> Result<(String, String)> {
    let ctx = Context::from_serialize(r)
        .map_err(|e| anyhow::anyhow!("report: cannot build the template context: {e}"))?;
    let t = templates().map_err(|e| anyhow::anyhow!("report template: {e}"))?;
    let md = t
        .render("REPORT.md", &ctx)
        .map_err(|e| anyhow::anyhow!("report template REPORT.md: {e}"))?;
    let html = t
        .render("report.html", &ctx)
        .map_err(|e| anyhow::anyhow!("report template report.html: {e}"))?;
    Ok((md, html))
}

pub fn run(g: &Global, a: &ReportArgs) -> Result<i32> {
    let p = Project::load(g)?;
    let md_at = target(&p, &a.md, "--md")?;
    let html_at = target(&p, &a.html, "--html")?;
    if md_at == html_at {
        return Err(Error::usage(format!(
            "--md and --html name the same file, {md_at}"
        )));
    }
    let r = gather(&p, &p.report)?;
    let (md, html) = render(&r)?;
    let root = &p.pipeline.root;
    let cache = engine::cache::Cache::new(root);
    for (at, text) in [(&md_at, &md), (&html_at, &html)] {
        // A file there that a report did not write (its first line differs) is kept first.
        let path = root.join(at);
        let first = |t: &str| t.lines().next().map(str::to_string);
        let old = std::fs::read(&path)
            .ok()
            .map(|b| first(&String::from_utf8_lossy(&b)));
        if old.is_some_and(|f| f != first(text)) {
            cache.keep(&path, at, false).map_err(|e| {
                Error::internal(format!(
                    "refusing to replace {at}: cannot keep a copy of it: {e}"
                ))
            })?;
        }
        engine::fsutil::write_atomic(&path, text.as_bytes())?;
    }
    for kept in cache.take_kept() {
        super::output::warn(kept);
    }
    if !g.quiet {
        outln!("report: {} and {}", a.md.display(), a.html.display());
    }
    Ok(exit::OK)
}

/// The project path a report goes to: inside the project, and neither the pipeline file nor a
/// declared input or output (`report --md pipeline.yaml` overwrote the pipeline).
fn target(p: &Project, path: &Path, flag: &str) -> Result<String> {
    let raw = path.to_string_lossy();
    let rel = engine::spec::typed::normalize(&raw)
        .map_err(|why| Error::usage(format!("{flag} {raw:?}: the path {why}")))?;
    let pipeline = p.file.file_name().map(|f| f.to_string_lossy().into_owned());
    let stages = &p.pipeline.stages;
    let made = stages
        .iter()
        .find(|s| s.outputs.iter().any(|o| o.path == rel));
    let read = stages
        .iter()
        .find(|s| s.inputs.iter().any(|i| i.path == rel));
    let (what, stage) = match (made, read) {
        _ if pipeline.as_deref() == Some(rel.as_str()) => ("the pipeline file", None),
        (Some(s), _) => ("an output of stage", Some(s)),
        (None, Some(s)) => ("an input of stage", Some(s)),
        (None, None) => return Ok(rel),
    };
    let stage = stage.map_or(String::new(), |s| format!(" {}", s.name));
    Err(Error::usage(format!("{flag} {rel}: that is {what}{stage}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        let mut t = templates().expect("templates");
        t.add_raw_template("c.md", "| {{ x | md_cell }} |")
            .expect("template");
        let mut ctx = Context::new();
        ctx.insert("x", "a | b\nc <img src=x onerror=alert(1)>");
        let md = t.render("c.md", &ctx).unwrap();
        assert_eq!(md, "| a \\| b c &lt;img src=x onerror=alert(1)> |");
    }

    /// Paths come from the user's YAML; as links they can only name a file beside the report.
    #[test]
    fn file_links_cannot_be_scripts_or_other_hosts() {
        for (path, url) in [
            ("paper-tables/overview.tex", "paper-tables/overview.tex"),
            (
                "figures/Root causes #1.png",
                "figures/Root%20causes%20%231.png",
            ),
            (
                "javascript:alert(1);x.tex",
                "javascript%3Aalert%281%29%3Bx.tex",
            ),
            ("data:text/html,<b>", "data%3Atext/html%2C%3Cb%3E"),
            ("//evil.example/x.tex", ".//evil.example/x.tex"),
            ("\"><script>", "%22%3E%3Cscript%3E"),
        ] {
            assert_eq!(href(path), url, "{path}");
        }
    }

    #[test]
    fn backticks_become_code_in_html_and_everything_else_is_escaped() {
        let mut t = templates().expect("templates");
        t.add_raw_template("c.html", "{{ x | code_spans }}")
            .expect("template");
        for (x, html) in [
            ("run by `make test`", "run by <code>make test</code>"),
            (
                "`a<b>` & `c`",
                "<code>a&lt;b&gt;</code> &amp; <code>c</code>",
            ),
            ("one ` tick", "one ` tick"),
            ("<script>", "&lt;script&gt;"),
        ] {
            let mut ctx = Context::new();
            ctx.insert("x", x);
            assert_eq!(t.render("c.html", &ctx).unwrap(), html, "{x}");
        }
    }

    #[test]
    fn anchors_are_html_ids() {
        assert_eq!(anchor("figures/Root causes.png"), "figures-root-causes-png");
    }
}
