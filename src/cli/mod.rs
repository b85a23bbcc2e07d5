//! The command line: argument definitions (clap), dispatch to one file per subcommand, and
//! the mapping of errors to the named exit codes of [`engine::exit`].

/// `println!` for command output, through [`output::write_line`] (a closed pipe ends the
/// process with exit 0 instead of a panic).
macro_rules! outln {
    () => {
        $crate::cli::output::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(format_args!($($arg)*))
    };
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(format_args!($($arg)*), false)
    };
}

mod check;
mod claims_map;
mod clean;
mod dag;
mod error;
mod gc;
mod init;
mod interrupt;
mod output;
mod pin;
mod plan;
mod project;
mod push;
mod records;
mod remote;
mod report;
mod run;
mod status;
mod synth;
mod verify;
mod watch;
mod why;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use engine::exit;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    internal error (I/O outside a stage, a bug)
  2    usage error
  3    pipeline.yaml is malformed or invalid (every problem is listed with file:line:column)
  4    plan error: a cycle among stages, or an unknown stage name
  5    a stage failed (its dependents were skipped; independent stages finished)
  6    verify: outputs differ from pipeline.lock; run --check: a stage is not deterministic;
       check: a claim mismatches the paper without a documented reason
  7    another run holds the project's lock (run --no-wait, clean, gc)
  130  interrupted (Ctrl-C); no half-written output is left behind";

/// Content-addressed, cached, parallel pipeline runner for reproducible research artifacts:
/// the stages of pipeline.yaml, the paper's numbers checked against the results, and a
/// reviewer report.
#[derive(Parser, Debug)]
#[command(name = "artifact", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The pipeline file; its folder is the project root.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "pipeline.yaml"
    )]
    pub file: PathBuf,
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print machine-readable JSON lines instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the stale stages (all, or the named ones and what they read from).
    Run(run::RunArgs),
    /// Run, then rerun whenever pipeline.yaml or a source file it declares is saved.
    Watch(watch::WatchArgs),
    /// Dry run: each stage and why it would run.
    Plan(plan::PlanArgs),
    /// Show how a stage's cache key differs from its last successful run.
    Why(why::WhyArgs),
    /// Print the stage graph as Graphviz DOT or Mermaid.
    Dag(dag::DagArgs),
    /// One line per stage: up to date, or stale and why (`--check-remote`: and whether the
    /// remote cache has it).
    Status(status::StatusArgs),
    /// Re-hash every output listed in the lock file and compare.
    Verify,
    /// Delete the declared outputs the cache can restore (any other is kept and listed with the
    /// reason); `--cache` also drops the cache.
    Clean(clean::CleanArgs),
    /// Delete cached objects no stage record refers to, and stale temporary files.
    Gc(gc::GcArgs),
    /// Upload the results the local cache holds for this pipeline to the remote cache.
    Push(push::TransferArgs),
    /// Fill the local cache from the remote cache without running anything.
    Pull(push::TransferArgs),
    /// Check the paper's claims against the results (runs the claims stages first).
    Check,
    /// Write the reviewer report (REPORT.md and report.html) from the last run.
    Report(report::ReportArgs),
    /// Print (or update in README.md) the map from each paper claim to its output.
    ClaimsMap(claims_map::ClaimsMapArgs),
    /// Scaffold a new study: pipeline.yaml with a stage of each kind, data, a template, a claims
    /// file, a Makefile (make artifact, make test) and a README.
    Init(init::InitArgs),
    /// Print the fetch stage that pins a file by URL and SHA-256.
    Pin(pin::PinArgs),
    /// List the stage kinds this binary offers.
    Kinds,
    /// Write a seeded synthetic dataset with the paper's schema (for benchmarks).
    #[command(hide = true)]
    Synth(synth::SynthArgs),
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let res = match &cli.command {
        Command::Run(a) => run::run(&cli.global, a),
        Command::Watch(a) => watch::run(&cli.global, a),
        Command::Init(a) => init::run(&cli.global, a),
        Command::Pin(a) => pin::run(&cli.global, a),
        Command::Plan(a) => plan::run(&cli.global, a),
        Command::Why(a) => why::run(&cli.global, a),
        Command::Dag(a) => dag::run(&cli.global, a),
        Command::Status(a) => status::run(&cli.global, a),
        Command::Push(a) => push::run(&cli.global, a, true),
        Command::Pull(a) => push::run(&cli.global, a, false),
        Command::Verify => verify::run(&cli.global),
        Command::Clean(a) => clean::run(&cli.global, a),
        Command::Gc(a) => gc::run(&cli.global, a),
        Command::Check => check::run(&cli.global),
        Command::Report(a) => report::run(&cli.global, a),
        Command::Synth(a) => synth::run(&cli.global, a),
        Command::ClaimsMap(a) => claims_map::run(&cli.global, a),
        Command::Kinds => {
            for k in crate::stages::registry().iter() {
                outln!("{:<10} v{}  {}", k.name(), k.version(), k.about());
            }
            Ok(exit::OK)
        }
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.code()
        }
    }
}
