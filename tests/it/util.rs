//! A small builder: write a project into a temp dir, run the binary, capture the result.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Project {
    pub fn new(pipeline: &str) -> Project {
        let p = Project {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        p.write("pipeline.yaml", pipeline);
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> &Project {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_artifact"));
        c.args(args)
            .current_dir(self.root())
            .env_remove("ARTIFACT_MIRROR")
            .env("NO_COLOR", "1")
            .env("CI", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().expect("spawn artifact");
        Run::from(out)
    }
}

/// The folder holding the authors' `dataset.csv`: `ARTIFACT_MIRROR` when set and not empty,
/// else `../shared/upstream/bugs-in-LLM-inference-engines` beside the checkout.
/// Points `c` at `home` as the user's home and removes every variable through which the
/// developer's own artifact configuration (config file, remote, write mode, credentials) could
/// reach it, so a test sees only the configuration it writes.
pub fn as_user<'c>(c: &'c mut Command, home: &Path) -> &'c mut Command {
    c.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("ARTIFACT_CONFIG")
        .env_remove("ARTIFACT_REMOTE")
        .env_remove("ARTIFACT_REMOTE_WRITE")
        .env_remove("ARTIFACT_REMOTE_TOKEN")
}

pub fn mirror_dir() -> PathBuf {
    match std::env::var_os("ARTIFACT_MIRROR") {
        Some(m) if !m.is_empty() => PathBuf::from(m),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/upstream/bugs-in-LLM-inference-engines"),
    }
}

/// A copy of the paper project with `pipeline` as its `pipeline.yaml`: its data files
/// (taxonomy, claims, corrections) and templates.
pub fn paper_project(pipeline: &str) -> Project {
    let repo = env!("CARGO_MANIFEST_DIR");
    let p = Project::new(pipeline);
    for f in [
        "data/taxonomy.yaml",
        "data/claims.yaml",
        "data/corrections.yaml",
    ] {
        p.write(f, &std::fs::read_to_string(format!("{repo}/{f}")).unwrap());
    }
    for e in std::fs::read_dir(format!("{repo}/templates")).unwrap() {
        let e = e.unwrap();
        let name = format!("templates/{}", e.file_name().to_string_lossy());
        p.write(&name, &std::fs::read_to_string(e.path()).unwrap());
    }
    p
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, printing both streams on failure.
    #[track_caller]
    pub fn code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code, want,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stdout contains `text`, printing both streams on failure.
    #[track_caller]
    pub fn says(&self, text: &str) -> &Run {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// A `--json run`'s events: whether the no-op snapshot answered it, and (stage, status) of
    /// every finished stage, sorted.
    #[track_caller]
    pub fn json_finished(&self) -> (bool, Vec<(String, String)>) {
        self.code(0);
        let lines: Vec<serde_json::Value> = self
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        let snapshot = lines[0]["snapshot"] == true;
        let mut st: Vec<(String, String)> = lines
            .iter()
            .filter(|v| v["event"] == "finished")
            .map(|v| {
                (
                    v["stage"].as_str().unwrap().to_string(),
                    v["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        st.sort();
        (snapshot, st)
    }

    /// Stage lines of a plain run (`<status> <stage>...`), without timings.
    pub fn stages(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter(|l| {
                !l.contains(" stages: ") && !l.starts_with("skipped because") && !l.starts_with(' ')
            })
            .map(|l| {
                let mut it = l.split_whitespace();
                format!(
                    "{} {}",
                    it.next().unwrap_or(""),
                    it.next().unwrap_or("").trim_end_matches(':')
                )
            })
            .collect()
    }
}
