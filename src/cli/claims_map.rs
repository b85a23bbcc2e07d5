//! `artifact claims-map`: the README's map from each paper claim to the output that checks it,
//! generated from the claims files of the pipeline's `claims` stages so it cannot drift.
//! `--update FILE` rewrites the section between `<!-- claims-map:begin -->` and
//! `<!-- claims-map:end -->`; `--check FILE` exits 6 when that section is out of date.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use engine::exit;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;
use crate::stages::claims::Query;

const BEGIN: &str = "<!-- claims-map:begin -->";
const END: &str = "<!-- claims-map:end -->";

#[derive(Args, Debug)]
pub struct ClaimsMapArgs {
    /// Rewrite the marked section of this file.
    #[arg(long, conflicts_with = "check")]
    pub update: Option<PathBuf>,
    /// Fail (exit 6) if the marked section of this file is out of date.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

fn describe(q: &Query) -> String {
    let mut s = format!("`{}`", q.file.as_deref().unwrap_or("(same file)"));
    if !q.filter.is_empty() {
        let _ = write!(s, " where {}", crate::stages::claims::describe(&q.filter));
    }
    let agg = format!("{:?}", q.agg).to_lowercase();
    match (&q.column, agg.as_str()) {
        (Some(c), "value") => {
            let _ = write!(s, ", column `{c}`");
        }
        (Some(c), a) => {
            let _ = write!(s, ", {a} of `{c}`");
        }
        (None, a) => {
            let _ = write!(s, ", {a} of rows");
        }
    }
    if let Some(d) = &q.percent_of {
        let _ = write!(s, ", as % of {}", describe(d));
    }
    s
}

/// The Markdown table.
pub fn render(p: &Project) -> Result<String> {
    let mut s = String::from(
        "| claim | printed | where printed | checked against | rule |\n|---|---|---|---|---|\n",
    );
    for claims in super::check::claims_files(p)? {
        for c in &claims.claims {
            let (target, rule) = match (&c.result, &c.needs) {
                (Some(q), _) => {
                    let rule = match (c.rule, c.expect) {
                        (_, crate::stages::claims::Expect::Mismatch) => {
                            "documented mismatch".to_string()
                        }
                        (crate::stages::claims::Rule::Exact, _) => "exact".to_string(),
                        (crate::stages::claims::Rule::Rounded, _) => {
                            "rounded to printed precision".to_string()
                        }
                        (crate::stages::claims::Rule::Truncated, _) => {
                            "truncated to printed precision".to_string()
                        }
                        (crate::stages::claims::Rule::Tolerance, _) => {
                            format!("within {}", c.tolerance.unwrap_or(0.0))
                        }
                    };
                    (describe(q), rule)
                }
                (None, Some(n)) => (format!("needs input: {n}"), "-".to_string()),
                (None, None) => (String::new(), String::new()),
            };
            let what = if c.what.is_empty() {
                c.id.clone()
            } else {
                format!("{} (`{}`)", c.what, c.id)
            };
            let _ = writeln!(
                s,
                "| {what} | {} | {} | {target} | {rule} |",
                c.printed, c.source
            );
        }
        for u in &claims.unsupported {
            let _ = writeln!(
                s,
                "| {} | - | {} | needs input: {} | - |",
                u.what, u.source, u.needs
            );
        }
    }
    Ok(s)
}

fn splice(text: &str, map: &str) -> Option<String> {
    let b = text.find(BEGIN)?;
    let e = text.find(END)?;
    if e < b {
        return None;
    }
    Some(format!("{}{BEGIN}\n{map}{}", &text[..b], &text[e..]))
}

pub fn run(g: &Global, a: &ClaimsMapArgs) -> Result<i32> {
    let p = Project::load(g)?;
    let map = render(&p)?;
    let target = a.update.as_ref().or(a.check.as_ref());
    let Some(path) = target else {
        out!("{map}");
        return Ok(exit::OK);
    };
    let text = std::fs::read_to_string(path)?;
    let new = splice(&text, &map).ok_or_else(|| {
        Error::internal(format!(
            "{} has no `{BEGIN}` ... `{END}` section",
            path.display()
        ))
    })?;
    if a.update.is_some() {
        engine::fsutil::write_if_changed(path, new.as_bytes())?;
        return Ok(exit::OK);
    }
    if new == text {
        Ok(exit::OK)
    } else {
        eprintln!(
            "{}: the claims map is out of date; run `artifact claims-map --update {}`",
            path.display(),
            path.display()
        );
        Ok(exit::MISMATCH)
    }
}
