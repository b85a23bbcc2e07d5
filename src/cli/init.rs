//! `artifact init [DIR]`: scaffolds a new study in DIR (default: the current folder): a
//! `pipeline.yaml` with a stage of each general-purpose kind (fetch, aggregate, plot, table,
//! claims, command), a made-up dataset pinned by SHA-256 in `mirror/`, a table template, a
//! claims file, a Makefile with `make artifact` and `make test`, a README skeleton and a
//! `.gitignore`. `make artifact` then succeeds in DIR as it is. Never overwrites: when any of
//! these files exists, nothing is written and the existing ones are listed.
//!
//! The `clean` kind is left out: it validates this repository's paper's schema only.

use std::path::{Path, PathBuf};

use clap::Args;
use engine::exit;

use super::Global;
use super::error::{Error, Result};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Folder to scaffold (created when missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

const DATASET: &str = include_str!("../../assets/init/mirror/dataset.csv");

/// The scaffold: (path in the new project, content). `@SHA256@` in the pipeline is the dataset's
/// digest, so the pin holds.
fn files() -> Vec<(&'static str, String)> {
    let sha = engine::hash::sha256_bytes(DATASET.as_bytes());
    vec![
        (
            "pipeline.yaml",
            include_str!("../../assets/init/pipeline.yaml").replace("@SHA256@", &sha),
        ),
        ("mirror/dataset.csv", DATASET.to_string()),
        (
            "templates/summary.tex",
            include_str!("../../assets/init/templates/summary.tex").into(),
        ),
        (
            "claims.yaml",
            include_str!("../../assets/init/claims.yaml").into(),
        ),
        (
            "Makefile",
            include_str!("../../assets/init/Makefile").into(),
        ),
        (
            "README.md",
            include_str!("../../assets/init/README.md").into(),
        ),
        (
            ".gitignore",
            include_str!("../../assets/init/gitignore").into(),
        ),
    ]
}

pub fn run(g: &Global, a: &InitArgs) -> Result<i32> {
    let files = files();
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| a.dir.join(rel))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        return Err(Error::usage(format!(
            "init writes nothing into a folder that already has its files; found: {}",
            existing.join(", ")
        )));
    }
    for (rel, content) in &files {
        write_new(&a.dir.join(rel), content.as_bytes())
            .map_err(|e| Error::internal(format!("cannot write {rel}: {e}")))?;
    }
    if !g.quiet {
        outln!(
            "initialised a study in {}: {} files. Next: `make artifact` there (ARTIFACT=path/to/artifact if it is not on PATH).",
            a.dir.display(),
            files.len()
        );
    }
    Ok(exit::OK)
}

/// Creates `path` (and its folders); fails if it exists, so a file created meanwhile is kept.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
