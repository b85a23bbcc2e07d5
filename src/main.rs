//! `artifact`: the command-line front end. Parses arguments, dispatches to a subcommand in
//! [`cli`], prints errors, and exits with a named code from [`engine::exit`].

mod cli;
mod stages;

fn main() {
    exit_quietly_on_broken_pipe();
    std::process::exit(cli::main());
}

/// `artifact status | head` must not panic when `head` closes the pipe: Rust ignores SIGPIPE,
/// so `println!` panics on EPIPE; that one panic becomes a quiet exit 0.
fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(engine::exit::OK);
        }
        default(info);
    }));
}
