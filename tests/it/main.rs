//! The one integration-test binary (it links polars, so there is only one): each module
//! drives the real `artifact` binary on a project written into a temporary folder and checks
//! exact output and exit codes.

mod cli;
mod docs;
mod fetch;
mod matrix;
mod noop;
mod paper;
mod remote;
mod reviewer;
mod scaffold;
mod scaleout;
mod slurm;
mod util;
mod validate;
