//! Ctrl-C: the first one sets [`CANCEL`] (no new stage starts, running commands are stopped,
//! in-place outputs are put back, exit 130); a second one stops running commands' process
//! groups and exits at once.

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
                "\ninterrupted: stopping running stages, starting no new ones (Ctrl-C again to quit now)"
            );
        });
    });
}

pub fn cancelled() -> bool {
    CANCEL.load(Ordering::SeqCst)
}
