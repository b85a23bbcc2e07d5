//! `artifact`: the command-line front end. Everything but process start-up lives in the
//! library ([`artifact::cli`] parses arguments, dispatches to a subcommand, prints errors and
//! returns a named code from [`engine::exit`]).

fn main() {
    std::process::exit(artifact::cli::main());
}
