//! The `fetch` kind: mirror folders, a real download from an HTTP server on 127.0.0.1 started
//! by the test, hash mismatches and the offline error.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::util::Project;

const BODY: &str = "URL,repo\nhttps://github.com/x/y/issues/1,vllm\n";

fn sha(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `body` to up to `n` requests; returns the port.
fn serve(body: &'static str, n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in l.incoming().take(n) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn pipeline(url: &str, sha: &str) -> String {
    format!(
        "version: 1\nstages:\n  get:\n    kind: fetch\n    outputs: [data/raw/dataset.csv]\n    with:\n      url: {url}\n      sha256: {sha}\n"
    )
}

#[test]
fn downloads_verifies_and_caches() {
    let port = serve(BODY, 1);
    let p = Project::new(&pipeline(
        &format!("http://127.0.0.1:{port}/dataset.csv"),
        &sha(BODY),
    ));
    p.run(&["run"]).code(0);
    assert_eq!(p.read("data/raw/dataset.csv"), BODY);
    // Second run: cached, no request made (the server accepted only one).
    let r = p.run(&["run"]);
    r.code(0);
    r.says("cached    get");
    // A hand edit of the pinned file is undone from the cache (no request), and the note
    // points at the corrections file.
    p.write("data/raw/dataset.csv", "edited\n");
    let r = p.run(&["run"]);
    r.code(0);
    assert_eq!(p.read("data/raw/dataset.csv"), BODY);
    assert!(
        r.stderr.contains("A fetched file is pinned by its sha256: to correct its data, list the edits in a corrections file"),
        "{}",
        r.stderr
    );
}

#[test]
fn hash_mismatch_is_a_clear_error() {
    let port = serve("tampered\n", 1);
    let want = sha(BODY);
    let p = Project::new(&pipeline(
        &format!("http://127.0.0.1:{port}/dataset.csv"),
        &want,
    ));
    let r = p.run(&["run"]);
    r.code(5);
    assert!(
        r.stderr.contains(&format!(
            "has sha256 {}, expected {want}",
            sha("tampered\n")
        )),
        "{}",
        r.stderr
    );
    assert!(!p.path("data/raw/dataset.csv").exists());
}

#[test]
fn mirror_first_and_offline_errors() {
    let want = sha(BODY);
    // Port 9 (discard) on loopback: nothing listens, so any download attempt fails.
    let p = Project::new(&pipeline("http://127.0.0.1:9/dataset.csv", &want));
    let r = p.run(&["run", "--offline"]);
    r.code(5);
    assert!(
        r.stderr
            .contains("offline mode and no mirror holds the pinned file"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--mirror DIR"), "{}", r.stderr);
    let mirror = tempfile::tempdir().unwrap();
    std::fs::write(mirror.path().join("dataset.csv"), "wrong\n").unwrap();
    let r = p.run(&[
        "run",
        "--offline",
        "--mirror",
        mirror.path().to_str().unwrap(),
    ]);
    r.code(5);
    assert!(
        r.stderr.contains(&format!(
            "dataset.csv has sha256 {}, expected {want}",
            sha("wrong\n")
        )),
        "{}",
        r.stderr
    );
    // Refused: nothing was put in place.
    assert!(!p.path("data/raw/dataset.csv").exists());
    std::fs::write(mirror.path().join("dataset.csv"), BODY).unwrap();
    let r = p
        .cmd(&["run", "--offline"])
        .env("ARTIFACT_MIRROR", mirror.path())
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(p.read("data/raw/dataset.csv"), BODY);
}

#[test]
fn non_https_url_is_rejected_at_validation() {
    let p = Project::new(&pipeline("http://example.org/dataset.csv", &sha(BODY)));
    let r = p.run(&["plan"]);
    r.code(3);
    assert!(
        r.stderr.contains("`url` must start with https://"),
        "{}",
        r.stderr
    );
}
