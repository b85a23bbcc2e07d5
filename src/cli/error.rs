//! The command line's one error type: every way a subcommand fails, mapped to its documented
//! exit code ([`engine::exit`]) in [`Error::code`] and written (with its `error:` prefix) by
//! [`super::main`] only, so that call sites say what went wrong and nothing else.

use std::path::PathBuf;

use engine::exit;

/// What a subcommand returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline file is malformed or invalid: every problem (each already located as
    /// `file:line:column: error: ...`), then how many there are.
    #[error("{problems}\n{count} problem{} in {}", if *.count == 1 { "" } else { "s" }, .file.display())]
    Invalid {
        problems: String,
        count: usize,
        file: PathBuf,
    },
    /// The stage graph has a cycle.
    #[error("{}: error: {source}", .file.display())]
    Cycle {
        file: PathBuf,
        source: engine::plan::CycleError,
    },
    /// A stage named on the command line does not exist; `hint` lists close names.
    #[error("error: no stage named {name:?}{hint}")]
    UnknownStage { name: String, hint: String },
    /// A matrix stage's name where the command needs one copy (`why`).
    #[error("error: {name:?} is a matrix stage of {} copies; name one: {}", .copies.len(), .copies.join(", "))]
    AmbiguousStage { name: String, copies: Vec<String> },
    /// `check` on a pipeline without a `claims` stage.
    #[error("error: the pipeline has no stage of kind `claims`")]
    NoClaimsStage,
    /// A mistake on the command line or in the user config (`file`, when it is in a file).
    #[error("{}error: {message}", .file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Usage {
        file: Option<PathBuf>,
        message: String,
    },
    /// A stage's cache key cannot be built (an input is missing or unreadable).
    #[error("{stage}: {source}")]
    KeyUnknown {
        stage: String,
        source: engine::exec::InputError,
    },
    /// A stage the command needs did not succeed (`why`: its failure, or why it was skipped).
    #[error("error: stage {stage} did not succeed: {why}\n(`artifact run` shows every stage)")]
    StageFailed { stage: String, why: String },
    /// Another run holds the project lock and the command does not wait (`what`: how to
    /// proceed).
    #[error("error: another artifact run holds the lock on this project{what}")]
    Busy { what: String },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// Anything else: an I/O failure outside any stage, a bug.
    #[error("error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// A failure outside any stage (exit 1), said in a sentence.
    pub fn internal(message: impl std::fmt::Display) -> Error {
        Error::Internal(anyhow::Error::msg(message.to_string()))
    }

    /// Taking the project lock failed: busy (exit 7) when another run holds it, with `hint`
    /// (how to proceed) after the message; else an internal error.
    pub fn lock(e: std::io::Error, hint: &str) -> Error {
        match e.kind() {
            std::io::ErrorKind::WouldBlock => Error::Busy {
                what: format!(" ({hint})"),
            },
            _ => Error::internal(format!("cannot lock the project: {e}")),
        }
    }

    /// A command-line mistake (exit 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage {
            file: None,
            message: message.into(),
        }
    }

    /// The exit code: the one place where failures meet the documented codes.
    pub fn code(&self) -> i32 {
        match self {
            Error::Invalid { .. } => exit::INVALID,
            Error::Cycle { .. }
            | Error::UnknownStage { .. }
            | Error::AmbiguousStage { .. }
            | Error::NoClaimsStage => exit::PLAN,
            Error::Usage { .. } => exit::USAGE,
            Error::KeyUnknown { .. } | Error::StageFailed { .. } => exit::STAGE_FAILED,
            Error::Busy { .. } => exit::BUSY,
            Error::Interrupted => exit::INTERRUPTED,
            Error::Internal(_) => exit::INTERNAL,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Internal(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_documented_code_and_one_error_prefix() {
        let cases: Vec<(Error, i32, &str)> = vec![
            (
                Error::Invalid {
                    problems: "p.yaml:1:1: error: x".into(),
                    count: 1,
                    file: "p.yaml".into(),
                },
                3,
                "p.yaml:1:1: error: x\n1 problem in p.yaml",
            ),
            (
                Error::UnknownStage {
                    name: "b".into(),
                    hint: String::new(),
                },
                4,
                "error: no stage named \"b\"",
            ),
            (
                Error::AmbiguousStage {
                    name: "f".into(),
                    copies: vec!["f@e=a".into(), "f@e=b".into()],
                },
                4,
                "error: \"f\" is a matrix stage of 2 copies; name one: f@e=a, f@e=b",
            ),
            (Error::usage("bad"), 2, "error: bad"),
            (
                Error::Busy {
                    what: " (try again when it ends)".into(),
                },
                7,
                "error: another artifact run holds the lock on this project (try again when it ends)",
            ),
            (
                Error::Usage {
                    file: Some("c.toml".into()),
                    message: "bad".into(),
                },
                2,
                "c.toml: error: bad",
            ),
            (
                Error::KeyUnknown {
                    stage: "a".into(),
                    source: engine::exec::InputError::Missing("x.csv".into()),
                },
                5,
                "a: input x.csv is missing",
            ),
            (Error::Interrupted, 130, "interrupted"),
            (
                Error::internal("cannot write x"),
                1,
                "error: cannot write x",
            ),
            (
                std::io::Error::other("disk full").into(),
                1,
                "error: disk full",
            ),
        ];
        for (e, code, text) in cases {
            assert_eq!((e.code(), e.to_string()), (code, text.to_string()));
        }
    }
}
