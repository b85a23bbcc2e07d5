//! The remote cache against a real nginx (see `scaleout.rs`): a second clone of the paper
//! pipeline executes nothing, and every fault (tampered blob, server down, 401, 5xx, concurrent
//! writers, truncated upload) ends in a correct local run with a warning, never a failure.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use super::scaleout::{Nginx, PASSWORD, USER, free_port};
use super::util::{Project, Run, mirror_dir, paper_project};

/// A clone of the paper: the real pipeline, its data and templates.
fn paper_clone() -> Project {
    let repo = env!("CARGO_MANIFEST_DIR");
    paper_project(&std::fs::read_to_string(format!("{repo}/pipeline.yaml")).unwrap())
}

fn mirror() -> String {
    let m = mirror_dir().display().to_string();
    assert!(
        Path::new(&m).join("dataset.csv").is_file(),
        "{m}/dataset.csv is missing: set ARTIFACT_MIRROR (this test never skips)"
    );
    m
}

/// A small pipeline of command stages: quick, and shows which stages executed.
const SMALL: &str = r#"version: 1
stages:
  upper:
    kind: command
    inputs: [in.txt]
    outputs: [out/upper.txt]
    with: { run: "mkdir -p out && tr a-z A-Z < in.txt > out/upper.txt" }
  count:
    kind: command
    inputs: [out/upper.txt]
    outputs: [out/count.txt]
    with: { run: "wc -c < out/upper.txt > out/count.txt" }
"#;

fn small() -> Project {
    let p = Project::new(SMALL);
    p.write("in.txt", "hello remote\n");
    p
}

/// `artifact ARGS` in `p` with an empty home (no user config, no netrc) and no remote settings
/// from the environment; `creds`: pass the writer's credentials as a token.
fn art(p: &Project, home: &Path, creds: bool, args: &[&str]) -> Run {
    let mut c: Command = p.cmd(args);
    super::util::as_user(&mut c, home);
    if creds {
        c.env("ARTIFACT_REMOTE_TOKEN", format!("{USER}:{PASSWORD}"));
    }
    Run::from(c.output().expect("spawn artifact"))
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("home")
}

/// A new clone of the small pipeline, with an empty home (no credentials), runs against
/// `url` and executes nothing: both stages come from the remote.
#[track_caller]
fn a_new_clone_fetches_both_stages(url: &str) {
    let anon = home();
    let r = art(&small(), anon.path(), false, &["run", "--remote", url]);
    r.code(0);
    assert!(
        r.stdout
            .contains("0 ran, 2 restored (2 fetched from remote)"),
        "{}",
        r.stdout
    );
}

/// A fresh nginx, and the small pipeline run once with writes on, so the server holds both
/// stages' results. Returns the server, its URL and the (empty) home the run used.
fn small_run_and_pushed() -> (Nginx, String, tempfile::TempDir) {
    let nginx = Nginx::start();
    let url = nginx.url();
    let h = home();
    art(
        &small(),
        h.path(),
        true,
        &["run", "--remote", &url, "--remote-write"],
    )
    .code(0);
    (nginx, url, h)
}

#[test]
fn a_second_clone_of_the_paper_executes_no_stage() {
    let nginx = Nginx::start();
    let url = nginx.url();
    let h = home();
    let m = mirror();
    let a = paper_clone();
    let r = art(
        &a,
        h.path(),
        true,
        &["run", "--mirror", &m, "--remote", &url, "--remote-write"],
    );
    r.code(0);
    assert!(
        r.stderr.is_empty() || !r.stderr.contains("warning"),
        "{}",
        r.stderr
    );
    let total = r.stages().len();
    assert!(total >= 30, "{}", r.stdout);
    assert!(!nginx.objects("ac").is_empty());

    // Clone B: empty local cache, no credentials (reads are anonymous), no mirror needed.
    let b = paper_clone();
    let r = art(&b, h.path(), false, &["run", "--offline", "--remote", &url]);
    r.code(0);
    r.says(&format!(
        "{total} stages: 0 ran, {total} restored ({total} fetched from remote), 0 cached"
    ));
    let fetched = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("restored") && l.ends_with("; fetched from remote"))
        .count();
    assert_eq!(fetched, total, "{}", r.stdout);
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    for dir in ["results", "figures", "paper-tables"] {
        let mut files: Vec<_> = std::fs::read_dir(a.path(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        files.sort();
        assert!(!files.is_empty());
        for f in files {
            let rel = format!("{dir}/{}", f.to_string_lossy());
            assert_eq!(
                std::fs::read(a.path(&rel)).unwrap(),
                std::fs::read(b.path(&rel)).unwrap(),
                "{rel} differs between clone A and clone B"
            );
        }
    }

    // The same in JSON mode, and `status --check-remote` on a clone that has nothing yet.
    let c = paper_clone();
    let s = art(
        &c,
        h.path(),
        false,
        &["status", "--check-remote", "--remote", &url],
    );
    s.code(0);
    s.says(&format!(", {total} on the remote cache"));
    let r = art(
        &c,
        h.path(),
        false,
        &["--json", "run", "--offline", "--remote", &url],
    );
    r.code(0);
    let finished: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), total);
    assert!(
        finished
            .iter()
            .all(|v| v["status"] == "restored" && v["fetched_from_remote"] == true),
        "{}",
        r.stdout
    );
}

#[test]
fn a_tampered_blob_is_detected_and_the_stage_reruns() {
    let (nginx, url, h) = small_run_and_pushed();
    // The server keeps whatever bytes it is given under a name: overwrite upper's blob.
    let digest = sha256(b"HELLO REMOTE\n");
    let blob = nginx.store().join("cas").join(&digest);
    assert!(blob.is_file(), "blob of out/upper.txt not on the server");
    std::fs::write(&blob, b"evil bytes\n").unwrap();
    let b = small();
    let r = art(&b, h.path(), false, &["run", "--remote", &url]);
    r.code(0);
    r.says("ran       upper");
    assert!(
        r.stdout.contains("; fetched from remote"),
        "count is still fetched: {}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains(&format!("cas/{digest} has content with sha256"))
            && r.stderr.contains("tampered"),
        "{}",
        r.stderr
    );
    assert_eq!(b.read("out/upper.txt"), "HELLO REMOTE\n");
}

#[test]
fn a_server_that_is_down_means_a_local_run_with_one_warning() {
    let h = home();
    let url = format!("http://127.0.0.1:{}", free_port());
    let p = small();
    let r = art(
        &p,
        h.path(),
        true,
        &["run", "--remote", &url, "--remote-write"],
    );
    r.code(0);
    r.says("2 stages: 2 ran");
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(
        warnings[0].contains("unreachable") && warnings[0].contains("continuing without"),
        "{}",
        r.stderr
    );
    // `push` to it is an error, not a silent success.
    let r = art(&p, h.path(), true, &["push", "--remote", &url]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn a_write_without_credentials_gets_401_and_reads_still_work() {
    let nginx = Nginx::start();
    let url = nginx.url();
    let h = home();
    let a = small();
    let r = art(
        &a,
        h.path(),
        false,
        &["run", "--remote", &url, "--remote-write"],
    );
    r.code(0);
    assert!(r.stderr.contains("401 Unauthorized"), "{}", r.stderr);
    assert!(nginx.objects("ac").is_empty() && nginx.objects("cas").is_empty());
    let r = art(&a, h.path(), false, &["push", "--remote", &url]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // With credentials from ~/.netrc, the push goes through.
    std::fs::write(
        h.path().join(".netrc"),
        format!("machine 127.0.0.1 login {USER} password {PASSWORD}\n"),
    )
    .unwrap();
    let r = art(&a, h.path(), false, &["push", "--remote", &url]);
    r.code(0);
    r.says("pushed 2 stage(s)");
    // Readers need no credentials.
    a_new_clone_fetches_both_stages(&url);
}

#[test]
fn server_errors_are_misses_with_a_warning() {
    let nginx = Nginx::start();
    let url = format!("{}/broken", nginx.url());
    let h = home();
    let p = small();
    let r = art(
        &p,
        h.path(),
        true,
        &["run", "--remote", &url, "--remote-write"],
    );
    r.code(0);
    r.says("2 stages: 2 ran");
    assert!(r.stderr.contains("HTTP status 500"), "{}", r.stderr);
}

#[test]
fn the_user_config_and_its_errors() {
    let nginx = Nginx::start();
    let h = home();
    let cfg = h.path().join(".config/artifact/config.yaml");
    std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
    std::fs::write(
        &cfg,
        format!("remote:\n  url: {}\n  write: true\n", nginx.url()),
    )
    .unwrap();
    let a = small();
    art(&a, h.path(), true, &["run"]).code(0);
    assert_eq!(nginx.objects("ac").len(), 2, "writes on from the config");
    let b = small();
    let r = art(&b, h.path(), false, &["run"]);
    r.code(0);
    r.says("(2 fetched from remote)");
    // `--no-remote` wins over the config.
    let c = small();
    let r = art(&c, h.path(), false, &["run", "--no-remote"]);
    r.says("2 stages: 2 ran");
    // A misspelt key is a usage error naming the file.
    std::fs::write(&cfg, "remote:\n  ulr: http://x\n").unwrap();
    let r = art(&small(), h.path(), false, &["run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&cfg.display().to_string()) && r.stderr.contains("ulr"),
        "{}",
        r.stderr
    );
}

#[test]
fn concurrent_writers_to_the_same_key_leave_a_valid_result() {
    let nginx = Nginx::start();
    let url = nginx.url();
    let h = home();
    let clones: Vec<Project> = (0..4).map(|_| small()).collect();
    for c in &clones {
        art(c, h.path(), false, &["run", "--no-remote"]).code(0);
    }
    let runs: Vec<Run> = std::thread::scope(|s| {
        let hs: Vec<_> = clones
            .iter()
            .map(|c| {
                let u = url.clone();
                let hp = h.path().to_path_buf();
                s.spawn(move || art(c, &hp, true, &["push", "--remote", &u]))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &runs {
        r.code(0);
    }
    for m in nginx.objects("ac") {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(m).unwrap())
            .expect("every manifest is whole JSON");
    }
    a_new_clone_fetches_both_stages(&url);
}

#[test]
fn a_truncated_upload_publishes_nothing() {
    let (nginx, url, h) = small_run_and_pushed();
    // Take upper's manifest off the server, then send it again cut short: announced whole,
    // connection closed half-way.
    let acs = nginx.objects("ac");
    let upper = acs
        .iter()
        .find(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).contains("\"upper\""))
        .expect("upper's manifest")
        .clone();
    let body = std::fs::read(&upper).unwrap();
    std::fs::remove_file(&upper).unwrap();
    let name = upper.file_name().unwrap().to_string_lossy().into_owned();
    {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", nginx.port)).unwrap();
        let auth = base64_basic();
        write!(
            s,
            "PUT /ac/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body[..body.len() / 2]).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!upper.exists(), "a partial upload became visible");
    let b = small();
    let r = art(&b, h.path(), false, &["run", "--remote", &url]);
    r.code(0);
    r.says("ran       upper");
    assert!(
        !r.stderr.contains("warning"),
        "a missing manifest is a plain miss: {}",
        r.stderr
    );
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn base64_basic() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
}
