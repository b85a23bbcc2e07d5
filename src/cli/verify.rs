//! `artifact verify`: re-hashes every output listed in `pipeline.lock` (no stat cache) and
//! names each file that is missing or differs (exit 6).

use engine::exit;
use engine::lockfile::LockFile;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;

pub fn run(g: &Global) -> Result<i32> {
    let p = Project::load(g)?;
    let lock_path = p.lock_path();
    let lock = LockFile::read(&lock_path)
        .map_err(|e| {
            Error::internal(format!(
                "{e}\n(run `artifact run` to regenerate it from the recorded runs)"
            ))
        })?
        .ok_or_else(|| {
            Error::internal(format!(
                "no lock file at {} (run `artifact run` first)",
                lock_path.display()
            ))
        })?;
    let mut bad = Vec::new();
    let mut n = 0;
    for (stage, st) in &lock.stages {
        for (path, want) in &st.outputs {
            n += 1;
            match engine::hash::sha256_file(&p.pipeline.root.join(path)) {
                Ok(got) if &got == want => {}
                Ok(got) => bad.push(format!(
                    "{path} (stage {stage}): sha256 {got}, lock says {want}"
                )),
                Err(e) => bad.push(format!("{path} (stage {stage}): {e}")),
            }
        }
    }
    for b in &bad {
        outln!("MISMATCH {b}");
    }
    if !g.quiet {
        outln!(
            "verify: {} of {n} outputs match {}",
            n - bad.len(),
            lock_path.display()
        );
    }
    Ok(if bad.is_empty() {
        exit::OK
    } else {
        exit::MISMATCH
    })
}
