//! `artifact` as a library: the command line ([`cli`]) and the built-in stage kinds
//! ([`stages`]). The `artifact` binary (`src/main.rs`) is a thin wrapper around
//! [`cli::main`]; the integration tests (`tests/it/`) use the kinds through this crate instead
//! of compiling their source files a second time.

pub mod cli;
pub mod stages;
