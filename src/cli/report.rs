//! `artifact report`: the reviewer report, `REPORT.md` and a self-contained `report.html`,
//! built from the last run (`.artifact/last-run.json`), the determinism audit
//! (`.artifact/last-audit.json`), the claims verdicts, the lock file and the pipeline itself:
//! badge checklist with evidence, claims table, per-stage time / cache status / memory, input
//! pins, tool and crate versions, the figures and links to the LaTeX tables, and what the
//! public data cannot reproduce.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;
use engine::exit;
use engine::kind::Kind as _;
use engine::spec::StageSpec;

use super::Global;
use super::check::{Verdict, read_verdicts};
use super::project::{Project, fail};
use super::records::{Audit, LastRun};
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

struct StageRow {
    name: String,
    kind: String,
    status: String,
    millis: u64,
    made_millis: u64,
    peak_kib: Option<u64>,
}

struct Pin {
    stage: String,
    url: String,
    sha256: String,
    path: String,
    verified: bool,
}

struct Data {
    verdicts: Vec<Verdict>,
    unsupported: Vec<crate::stages::claims::Unsupported>,
    stages: Vec<StageRow>,
    run_wall_ms: u64,
    audit: Option<(usize, usize, Vec<String>)>,
    pins: Vec<Pin>,
    versions: Vec<(String, String)>,
    figures: Vec<String>,
    tables: Vec<String>,
    files: Vec<(String, bool)>,
}

fn gather(p: &Project) -> anyhow::Result<Data> {
    let root = &p.pipeline.root;
    let cache = engine::cache::Cache::new(root);
    let verdicts = read_verdicts(p)?;
    let unsupported = super::check::claims_files(p)?
        .into_iter()
        .flat_map(|f| f.unsupported)
        .collect();
    let last = LastRun::read(&cache.dir).map_err(|e| {
        fail(
            exit::INTERNAL,
            format!(
                "error: no readable record of the last run ({e}); run `artifact run` to write it"
            ),
        )
    })?;
    let mut stages = Vec::new();
    for s in last.stages {
        let rec = cache.last(&s.stage);
        stages.push(StageRow {
            kind: s.kind,
            status: s.status.as_str().to_string(),
            millis: s.millis,
            made_millis: rec.as_ref().map_or(0, |r| r.millis),
            peak_kib: rec.and_then(|r| r.peak_rss_kib),
            name: s.stage,
        });
    }
    let audit = Audit::read(&cache.dir).ok().map(|a| {
        let bad: Vec<String> = a
            .stages
            .iter()
            .filter(|x| !x.identical)
            .map(|x| x.stage.clone())
            .collect();
        (a.stages.len() - bad.len(), a.stages.len(), bad)
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
        (
            "artifact".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "rustc".to_string(),
            env!("ARTIFACT_RUSTC_VERSION").to_string(),
        ),
    ];
    for kv in env!("ARTIFACT_CRATE_VERSIONS")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        if let Some((k, v)) = kv.split_once('=') {
            versions.push((k.to_string(), v.to_string()));
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
    let files = [
        "LICENSE",
        "data/LICENSE-dataset",
        "CITATION.cff",
        "docs/pipeline.md",
        "examples/minimal/pipeline.yaml",
        "pipeline.lock",
    ]
    .iter()
    .map(|f| (f.to_string(), root.join(f).exists()))
    .collect();
    Ok(Data {
        verdicts,
        unsupported,
        stages,
        run_wall_ms: last.wall_millis,
        audit,
        pins,
        versions,
        figures: outputs_of(PlotKind::matches, ".png"),
        tables: outputs_of(TableKind::matches, ".tex"),
        files,
    })
}

fn mark(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

fn markdown(d: &Data, doi: &str) -> String {
    let mut s = String::new();
    let checkable: Vec<&Verdict> = d
        .verdicts
        .iter()
        .filter(|v| v.status != "NEEDS INPUT")
        .collect();
    let pass = checkable.iter().filter(|v| v.status == "PASS").count();
    let documented = checkable
        .iter()
        .filter(|v| v.status == "MISMATCH" && v.expected_mismatch)
        .count();
    let unexpected = d.verdicts.iter().filter(|v| v.unexpected()).count();
    let needs = d.verdicts.len() - checkable.len();
    let all_ok = d
        .stages
        .iter()
        .all(|r| matches!(r.status.as_str(), "ran" | "cached" | "restored"));
    let file_ok = |f: &str| d.files.iter().any(|(n, e)| n == f && *e);
    let _ = writeln!(s, "# Reviewer report\n");
    let _ = writeln!(
        s,
        "**Verdict: {}.** {pass} of {} checkable claims reproduce exactly as printed; {documented} \
         documented paper-vs-data discrepanc{}; {needs} claim(s) need inputs the public data does not \
         have; {unexpected} unexpected mismatch(es).\n",
        if unexpected == 0 && all_ok {
            "results reproduced"
        } else {
            "NOT reproduced"
        },
        checkable.len(),
        if documented == 1 { "y" } else { "ies" },
    );
    let _ = writeln!(s, "## Badge checklist\n");
    let _ = writeln!(s, "| badge | check | evidence |\n|---|---|---|");
    let pins_ok = !d.pins.is_empty() && d.pins.iter().all(|p| p.verified);
    let _ = writeln!(
        s,
        "| Available | code licence | `LICENSE`: {} |",
        mark(file_ok("LICENSE"))
    );
    let _ = writeln!(
        s,
        "| Available | dataset licence (MIT notice) | `data/LICENSE-dataset`: {} |",
        mark(file_ok("data/LICENSE-dataset"))
    );
    let _ = writeln!(
        s,
        "| Available | data pinned by URL + sha256 and verified | {} pin(s), all verified: {} |",
        d.pins.len(),
        mark(pins_ok)
    );
    let _ = writeln!(
        s,
        "| Available | DOI | {doi} (`CITATION.cff`: {}) |",
        mark(file_ok("CITATION.cff"))
    );
    let _ = writeln!(
        s,
        "| Functional | every stage ran or was cached | {} of {} stages succeeded in the last run that did work ({:.2} s): {} |",
        d.stages
            .iter()
            .filter(|r| matches!(r.status.as_str(), "ran" | "cached" | "restored"))
            .count(),
        d.stages.len(),
        d.run_wall_ms as f64 / 1000.0,
        mark(all_ok)
    );
    let _ = writeln!(
        s,
        "| Functional | test command | `make test` (fmt, clippy, all tests, LaTeX compile, determinism audit) |"
    );
    if let Some((same, n, _)) = &d.audit {
        let _ = writeln!(
            s,
            "| Functional | determinism audit (`artifact run --check`) | {same} of {n} stages reproduce byte for byte: {} |",
            mark(same == n)
        );
    }
    let _ = writeln!(
        s,
        "| Reusable | documented pipeline format | `docs/pipeline.md`: {} |",
        mark(file_ok("docs/pipeline.md"))
    );
    let _ = writeln!(
        s,
        "| Reusable | engine usable for another study | `examples/minimal/pipeline.yaml`, run by `make test`: {} |",
        mark(file_ok("examples/minimal/pipeline.yaml"))
    );
    let _ = writeln!(
        s,
        "| Results Reproduced | claims | {pass} of {} checkable claims pass; {documented} documented mismatch(es); {unexpected} unexpected: {} |",
        checkable.len(),
        mark(unexpected == 0)
    );
    let _ = writeln!(
        s,
        "\n## Claims\n\n| id | where printed | printed | computed | verdict | note |\n|---|---|---|---|---|---|"
    );
    for v in &d.verdicts {
        let verdict = match (v.status.as_str(), v.expected_mismatch) {
            ("MISMATCH", true) => "MISMATCH (documented)".to_string(),
            ("PASS", true) => "PASS (expected mismatch!)".to_string(),
            (x, _) => x.to_string(),
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {verdict} | {} |",
            v.id,
            v.source,
            v.printed,
            v.computed,
            v.note.replace('|', "\\|")
        );
    }
    let _ = writeln!(s, "\n## Not reproducible from the public data\n");
    for v in d.verdicts.iter().filter(|v| v.status == "NEEDS INPUT") {
        let _ = writeln!(
            s,
            "- `{}` ({}, printed {}): {}",
            v.id, v.source, v.printed, v.note
        );
    }
    for u in &d.unsupported {
        let _ = writeln!(s, "- {} ({}): needs {}", u.what, u.source, u.needs);
    }
    let _ = writeln!(
        s,
        "\n## Stages (last run that did any work)\n\n| stage | kind | this run | time this run | time when made | peak RSS when made |\n|---|---|---|---|---|---|"
    );
    for r in &d.stages {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} s | {:.3} s | {} |",
            r.name,
            r.kind,
            r.status,
            r.millis as f64 / 1000.0,
            r.made_millis as f64 / 1000.0,
            r.peak_kib
                .map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
        );
    }
    let _ = writeln!(
        s,
        "\n\"When made\" is the run that produced the current outputs (a cached stage keeps the figures of the run that made it). Peak RSS is the process's high-water mark when the stage finished; with `-j 1` it is the stage's own peak."
    );
    let _ = writeln!(
        s,
        "\n## Input pins\n\n| stage | file | url | sha256 | verified |\n|---|---|---|---|---|"
    );
    for p in &d.pins {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | `{}` | {} |",
            p.stage,
            p.path,
            p.url,
            p.sha256,
            mark(p.verified)
        );
    }
    let _ = writeln!(s, "\n## Versions\n\n| tool / crate | version |\n|---|---|");
    for (n, v) in &d.versions {
        let _ = writeln!(s, "| {n} | {v} |");
    }
    let _ = writeln!(s, "\n## Figures\n");
    for f in &d.figures {
        let _ = writeln!(s, "![{f}]({f})\n");
    }
    let _ = writeln!(s, "## LaTeX tables\n");
    for t in &d.tables {
        let _ = writeln!(s, "- [{t}]({t})");
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// A self-contained HTML page: the Markdown's tables as HTML, figures inlined as data URIs.
fn html(md: &str, root: &Path) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Reviewer report</title>\n<style>\
         body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\
         table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
         th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}figure{margin:1em 0}td{overflow-wrap:anywhere}code{background:#f6f6f6;padding:0 3px}\
         </style></head><body>\n",
    );
    let mut in_table = false;
    let mut in_list = false;
    let mut header = false;
    for line in md.lines() {
        if line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            if line.chars().all(|ch| matches!(ch, '|' | '-' | ':' | ' ')) {
                // The Markdown header separator row.
                continue;
            }
            if !in_table {
                out.push_str("<table>\n");
                in_table = true;
                header = true;
            }
            let tag = if header { "th" } else { "td" };
            header = false;
            out.push_str("<tr>");
            for c in cells {
                let _ = write!(out, "<{tag}>{}</{tag}>", inline(c));
            }
            out.push_str("</tr>\n");
            continue;
        }
        if in_table {
            out.push_str("</table>\n");
            in_table = false;
        }
        let item = line.strip_prefix("- ");
        if in_list && item.is_none() {
            out.push_str("</ul>\n");
            in_list = false;
        }
        if let Some(item) = item {
            if !in_list {
                out.push_str("<ul>\n");
                in_list = true;
            }
            let _ = writeln!(out, "<li>{}</li>", inline(item));
        } else if let Some(h) = line.strip_prefix("## ") {
            let id: String = h
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let _ = writeln!(out, "<h2 id=\"{id}\">{}</h2>", esc(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(out, "<h1>{}</h1>", esc(h));
        } else if let Some(img) = line.strip_prefix("![").and_then(|r| r.split_once("](")) {
            let path = img.1.trim_end_matches(')');
            match std::fs::read(root.join(path)) {
                Ok(bytes) => {
                    let _ = writeln!(
                        out,
                        "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{1}\"><figcaption>{0}</figcaption></figure>",
                        esc(path),
                        base64(&bytes)
                    );
                }
                Err(_) => {
                    let _ = writeln!(out, "<p>missing figure {}</p>", esc(path));
                }
            }
        } else if !line.trim().is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(line));
        }
    }
    if in_table {
        out.push_str("</table>\n");
    }
    if in_list {
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Inline Markdown: `code`, **bold**, [text](link).
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('`')
            && let Some((code, after)) = r.split_once('`')
        {
            let _ = write!(out, "<code>{}</code>", esc(code));
            rest = after;
        } else if let Some(r) = rest.strip_prefix("**")
            && let Some((b, after)) = r.split_once("**")
        {
            let _ = write!(out, "<b>{}</b>", esc(b));
            rest = after;
        } else if let Some(r) = rest.strip_prefix('[')
            && let Some((text, after)) = r.split_once("](")
            && let Some((link, after2)) = after.split_once(')')
        {
            let _ = write!(out, "<a href=\"{}\">{}</a>", esc(link), esc(text));
            rest = after2;
        } else {
            let ch = rest.chars().next().unwrap_or(' ');
            out.push_str(&esc(&ch.to_string()));
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

fn doi(root: &Path) -> String {
    std::fs::read_to_string(root.join("CITATION.cff"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("doi:")
                    .map(|d| d.trim().trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "no DOI in CITATION.cff".into())
}

pub fn run(g: &Global, a: &ReportArgs) -> anyhow::Result<i32> {
    let p = Project::load(g)?;
    let d = gather(&p)?;
    let root = &p.pipeline.root;
    let md = markdown(&d, &doi(root));
    engine::fsutil::write_atomic(&root.join(&a.md), md.as_bytes())?;
    engine::fsutil::write_atomic(&root.join(&a.html), html(&md, root).as_bytes())?;
    if !g.quiet {
        println!("report: {} and {}", a.md.display(), a.html.display());
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn inline_markdown() {
        assert_eq!(
            inline("a `b<c` **d** [e](f.tex)"),
            "a <code>b&lt;c</code> <b>d</b> <a href=\"f.tex\">e</a>"
        );
    }
}
