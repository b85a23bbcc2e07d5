//! Subcommands (work in progress).

pub fn main() -> i32 {
    let _ = crate::stages::registry();
    0
}
