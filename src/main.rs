//! `artifact`: the command-line front end. Everything but process start-up lives in the
//! library ([`artifact::cli`] parses arguments, dispatches to a subcommand, prints errors and
//! returns a named code from [`engine::exit`]).

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == PDEATHSIG_EXEC) {
        pdeathsig_exec(&args);
    }
    // Where `setpriv` is missing, command stages start through this binary instead, so that
    // they die with the run (PR_SET_PDEATHSIG).
    if let Ok(exe) = std::env::current_exe() {
        engine::exec::procs::set_fallback_launcher(vec![
            exe.into(),
            PDEATHSIG_EXEC.into(),
            std::process::id().to_string().into(),
            "--".into(),
        ]);
    }
    std::process::exit(artifact::cli::main());
}

/// Hidden subcommand: `artifact __pdeathsig-exec PARENT_PID -- PROGRAM ARGS...` runs PROGRAM
/// so that it gets SIGKILL when the thread of PARENT_PID that started it ends.
const PDEATHSIG_EXEC: &str = "__pdeathsig-exec";

fn pdeathsig_exec(args: &[std::ffi::OsString]) -> ! {
    let parent = args
        .get(2)
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rest = args.get(4..).unwrap_or_default();
    let e = engine::exec::procs::pdeathsig_exec(parent, rest);
    eprintln!("artifact: cannot start {:?}: {e}", rest.first());
    std::process::exit(127)
}
