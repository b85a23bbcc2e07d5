//! `artifact push` and `artifact pull`: move results between the local cache and the shared
//! remote cache without running anything (see `engine::remote`).

use clap::Args;
use engine::exec::RunEnv;
use engine::exit;
use engine::remote::Transfer;

use super::Global;
use super::error::{Error, Result};
use super::project::Project;
use super::remote::{RemoteArgs, load_config, remote_cache};

#[derive(Args, Debug)]
pub struct TransferArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `push` uploads what the local cache holds for the current pipeline (blobs first, each
/// manifest last); `pull` fills the local cache from the remote, so that the next `run`
/// restores instead of running.
pub fn run(g: &Global, a: &TransferArgs, push: bool) -> Result<i32> {
    let cfg = load_config()?;
    let p = Project::load(g)?;
    let mut engine = p.engine(RunEnv::default());
    let Some(mut remote) = remote_cache(&a.remote, &cfg, push)? else {
        return Err(Error::usage(
            "no remote cache configured (use --remote URL, ARTIFACT_REMOTE, or `remote: {url: ...}` in the user config)",
        ));
    };
    if !g.json {
        remote.on_warning = Some(super::output::warning_printer());
    }
    let url = remote.describe();
    engine.remote = Some(remote);
    let _lock = engine
        .cache
        .lock(true, || {
            if !g.quiet && !g.json {
                eprintln!("waiting for another artifact run on this project to finish...");
            }
        })
        .map_err(|e| Error::internal(format!("cannot lock the cache folder: {e}")))?;
    let t: Transfer = if push { engine.push() } else { engine.pull() };
    let remote = engine.remote.as_ref().expect("set above");
    let verb = if push { "pushed" } else { "pulled" };
    if g.json {
        outln!(
            "{}",
            serde_json::json!({
                "event": if push { "push" } else { "pull" },
                "remote": url,
                "done": t.done, "present": t.present,
                "skipped": t.skipped.iter().map(|(s, w)| serde_json::json!({"stage": s, "why": w})).collect::<Vec<_>>(),
                "blobs": t.blobs, "bytes": t.bytes,
                "warnings": remote.warnings(),
            })
        );
    } else if !g.quiet {
        for (s, why) in &t.skipped {
            outln!("skipped {s}: {why}");
        }
        outln!(
            "{verb} {} stage(s) ({} blob(s), {} bytes) {} {url}; {} already there, {} skipped",
            t.done.len(),
            t.blobs,
            t.bytes,
            if push { "to" } else { "from" },
            t.present.len(),
            t.skipped.len()
        );
    }
    // Transfers that failed because of the remote are an error for these explicit commands;
    // stages that are simply not built (push) or not on the remote (pull) are not.
    Ok(
        if remote.is_down() || (push && !remote.warnings().is_empty()) {
            exit::INTERNAL
        } else {
            exit::OK
        },
    )
}
