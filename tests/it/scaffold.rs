//! `artifact init`, `artifact pin`, `artifact watch`, and the note on an undone hand edit.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::Project;

const BIN: &str = env!("CARGO_BIN_EXE_artifact");

fn make(dir: &std::path::Path, target: &str) -> std::process::Output {
    Command::new("make")
        .arg(target)
        .arg(format!("ARTIFACT={BIN}"))
        .current_dir(dir)
        .env_remove("ARTIFACT_MIRROR")
        .env_remove("MAKEFLAGS")
        .env("NO_COLOR", "1")
        .output()
        .expect("make")
}

#[test]
fn init_then_make_artifact_and_make_test_succeed_in_a_new_folder() {
    let p = Project::new("");
    std::fs::remove_file(p.path("pipeline.yaml")).unwrap();
    p.run(&["init", "study"]).code(0);
    let dir = p.path("study");
    let out = make(&dir, "artifact");
    assert!(
        out.status.success(),
        "make artifact\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let claims = std::fs::read_to_string(dir.join("results/claims.csv")).unwrap();
    assert_eq!(claims.matches(",PASS,").count(), 2, "{claims}");
    for f in [
        "figures/reviews.svg",
        "figures/reviews.png",
        "tables/summary.tex",
        "results/rows.txt",
        "REPORT.md",
        "pipeline.lock",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let out = make(&dir, "test");
    assert!(
        out.status.success(),
        "make test\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_writes_nothing_where_its_files_exist() {
    let p = Project::new("");
    std::fs::remove_file(p.path("pipeline.yaml")).unwrap();
    p.write("study/README.md", "mine\n");
    let r = p.run(&["init", "study"]);
    r.code(2);
    assert!(r.stderr.contains("README.md"), "{}", r.stderr);
    assert_eq!(p.read("study/README.md"), "mine\n");
    assert!(!p.path("study/pipeline.yaml").exists());
}

#[test]
fn pin_prints_a_fetch_stage_that_runs() {
    let p = Project::new("");
    p.write("mirror/survey.csv", "a,b\n1,2\n");
    let r = p.run(&[
        "pin",
        "https://example.org/x/survey.csv",
        "--mirror",
        "mirror",
    ]);
    r.code(0);
    let sha = "sha256: \"".to_string() + &sha256_hex(b"a,b\n1,2\n") + "\"";
    r.says(&sha);
    r.says("outputs: [data/raw/survey.csv]");
    p.write(
        "pipeline.yaml",
        &format!("version: 1\nstages:\n{}", r.stdout),
    );
    p.run(&["run", "--mirror", "mirror"]).code(0);
    assert_eq!(p.read("data/raw/survey.csv"), "a,b\n1,2\n");
}

#[test]
fn pin_refuses_a_plain_http_address() {
    let p = Project::new("");
    let r = p.run(&["pin", "http://example.org/x/survey.csv"]);
    r.code(2);
    assert!(r.stderr.contains("https://"), "{}", r.stderr);
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn restoring_an_edited_output_says_why_and_how_to_make_the_edit_stick() {
    let p = Project::new(
        "version: 1\nstages:\n  s: {kind: command, outputs: [out/a], with: {run: \"mkdir -p out; echo made > out/a\"}}\n",
    );
    p.run(&["run"]).code(0);
    p.write("out/a", "edited\n");
    let r = p.run(&["run"]);
    r.code(0);
    assert_eq!(p.read("out/a"), "made\n");
    assert!(
        r.stderr.contains(
            "note: out/a had been edited by hand, but it is an output of stage s (command)"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("make the file a source"), "{}", r.stderr);
}

/// Lines of a child's stderr, as they come.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `want` (bounded, so a broken watch fails instead of hanging).
fn wait_for(rx: &mpsc::Receiver<String>, want: &str, seen: &mut Vec<String>) {
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                let hit = l.contains(want);
                seen.push(l);
                if hit {
                    return;
                }
            }
            Err(e) => panic!("no line with {want:?} ({e}); saw:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn watch_reruns_after_an_input_is_saved_and_stops_cleanly_on_ctrl_c() {
    let p = Project::new(
        "version: 1\nstages:\n  copy: {kind: command, inputs: [in.txt], outputs: [out.txt], with: {run: \"cat in.txt > out.txt\"}}\n",
    );
    p.write("in.txt", "one\n");
    let mut child = p
        .cmd(&["watch", "--debounce-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let rx = lines_of(&mut child);
    let mut seen = Vec::new();
    wait_for(&rx, "watch: round 1 done", &mut seen);
    assert_eq!(p.read("out.txt"), "one\n");
    p.write("in.txt", "two\n");
    wait_for(&rx, "watch: changed: in.txt", &mut seen);
    wait_for(&rx, "watch: round 2 done", &mut seen);
    assert_eq!(p.read("out.txt"), "two\n");
    // An edit of pipeline.yaml reruns too.
    p.write(
        "pipeline.yaml",
        "version: 1\nstages:\n  copy: {kind: command, inputs: [in.txt], outputs: [out.txt], with: {run: \"cat in.txt in.txt > out.txt\"}}\n",
    );
    wait_for(&rx, "watch: round 3 done", &mut seen);
    assert_eq!(p.read("out.txt"), "two\ntwo\n");
    // An input deleted (the pipeline no longer loads), then saved again (as `git checkout`
    // and some editors do): still watched, so it reruns (it was dropped from the watch list).
    std::fs::remove_file(p.path("in.txt")).expect("rm");
    wait_for(&rx, "watch: round 4 done", &mut seen);
    p.write("in.txt", "three\n");
    wait_for(&rx, "watch: round 5 done", &mut seen);
    assert_eq!(p.read("out.txt"), "three\nthree\n");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    wait_for(&rx, "watch: stopped after 5 round(s)", &mut seen);
    let code = child.wait().expect("wait").code();
    assert_eq!(code, Some(0), "{}", seen.join("\n"));
}
