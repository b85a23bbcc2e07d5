//! Ctrl-C, SIGTERM and SIGHUP (all handled alike): the first one sets [`CANCEL`] (no new stage
//! starts, running commands get SIGTERM and, if they ignore it, SIGKILL a few seconds later,
//! in-place outputs are put back, exit 130); a second one kills running commands' process
//! groups (SIGKILL) and exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

use engine::exit;

/// Set by the first Ctrl-C; every engine of this process watches it.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if CANCEL.swap(true, Ordering::SeqCst) {
                engine::exec::kill_running_commands();
                std::process::exit(exit::INTERRUPTED);
            }
            eprintln!(
                "\ninterrupted: stopping running stages, starting no new ones (Ctrl-C again to kill them and quit now)"
            );
        });
    });
}

pub fn cancelled() -> bool {
    CANCEL.load(Ordering::SeqCst)
}
