//! `artifact`: the command-line front end. Parses arguments, dispatches to a subcommand in
//! [`cli`], prints errors, and exits with a named code from [`engine::exit`].

mod cli;
mod stages;

fn main() {
    std::process::exit(cli::main());
}
