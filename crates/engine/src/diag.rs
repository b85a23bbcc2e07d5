//! User-facing diagnostics: a problem at a place in a file (line and column, 1-based),
//! collected and reported together, sorted.

use std::fmt;

/// A position in a source file, 1-based. `line == 0` means "the file as a whole".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub const fn new(line: u32, col: u32) -> Self {
        Loc { line, col }
    }
}

/// One problem found in a file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub loc: Loc,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<String>, loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            loc,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.loc.line == 0 {
            write!(f, "{}: error: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, self.loc.line, self.loc.col, self.message
            )
        }
    }
}

/// A sorted, de-duplicated list of diagnostics, displayed one per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn sorted(mut v: Vec<Diagnostic>) -> Self {
        v.sort();
        v.dedup();
        Diagnostics(v)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
